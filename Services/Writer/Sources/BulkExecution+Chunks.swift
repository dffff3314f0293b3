import CSV
import Connectors
import CMalloc
import Foundation
import HTTPClient
import Logging
import Metrics
import Pipeline
import Kafka
import ProviderAccess
import Shared

/// Writing one chunk of a bulk write at the provider, and publishing its changes.
extension BulkExecution {
    // MARK: writing a chunk (async, on the concurrency pool)

    /// What became of a chunk's rows: how many were written (their change events are published), and
    /// the refused ones; the provider calls it took and its Salesforce job.
    struct ChunkResult: Sendable {
        var succeeded = 0
        var failures: [BulkFailure] = []
        var calls = 0
        var jobId: String?
    }

    /// A written row's fields in its change event, as a JSON object: those of `fields(row)`, written
    /// straight from the row in key order (a delete's are none).
    func writeFields(_ row: [String], into writer: inout JSONWriter) {
        guard request.type != .delete else { return writer.object([:]) }
        guard let order = fieldOrder else { return writer.object(fields(row)) }
        writer.raw(byte: UInt8(ascii: "{"))
        var first = true
        for (name, index) in order where index < row.count {
            guard let value = Self.cell(row[index]) else { continue }
            if !first { writer.raw(byte: UInt8(ascii: ",")) }
            first = false
            writer.string(name)
            writer.raw(byte: UInt8(ascii: ":"))
            writer.value(value)
        }
        writer.raw(byte: UInt8(ascii: "}"))
    }

    /// A row's fields to write.
    func fields(_ row: [String]) -> [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        for (name, text) in zip(bulk.header, row) {
            if let value = Self.cell(text) { fields[name] = value }
        }
        return fields
    }

    /// What a cell writes: an empty one leaves its field as it is (nil); `#N/A` empties it.
    static func cell(_ text: String) -> JSONValue? {
        text.isEmpty ? nil : text == "#N/A" ? .null : .string(text)
    }

    /// One provider call through the writer's pacing, token renewal and retries; `calls` counts the
    /// requests it took.
    func call(idempotent: Bool, calls: inout Int, _ send: (Connection) async -> ConnectorResponse) async throws
        -> WriteExecution.ProviderCall
    {
        // A bulk write cannot be held in the middle of its file: it waits in memory, a second at a time,
        // so that a stop (shutdown, its partition taken away) reaches it within a second.
        let deadline = ContinuousClock.now + retryWindow
        var carried = Carried()
        while true {
            if stopped { throw CancellationError() }
            let result = try await execution.callProvider(
                context, provider: request.provider, idempotent: idempotent, deadline: deadline, carried: carried, interrupted: false,
                maxWait: .seconds(1), logger: logger, send: send)
            switch result {
            case .answered(let call):
                calls += call.calls
                return call
            case .hold(.hold(let dueIn, let held, _)):
                carried = held
                try await Task.sleep(for: .milliseconds(Int(min(dueIn, 1) * 1000)))
            case .hold(.completed):
                throw CancellationError()
            }
        }
    }

    /// One step of a bulk job, through `call`: its response and, when applied, what it answered.
    func step<Value: Sendable>(idempotent: Bool, calls: inout Int, _ send: (Connection) async -> BulkStep<Value>) async throws
        -> (call: WriteExecution.ProviderCall, value: Value?)
    {
        var value: Value?
        let call = try await call(idempotent: idempotent, calls: &calls) { connection in
            let step = await send(connection)
            value = step.value
            return step.response
        }
        guard case .applied = call.outcome else { return (call, nil) }
        return (call, value)
    }

    func whole(_ outcome: ConnectorOutcome) -> WriteError {
        switch outcome {
        case .applied: return WriteError(message: "the provider did not answer for each row")
        case .rejected(let error, _), .unauthorized(let error, _): return error
        case .retryable(let error, _, _), .rateLimited(let error, _, _):
            var error = error
            error.message = "retry deadline passed: \(error.message)"
            return error
        }
    }

    func failure(_ row: Row, _ error: WriteError, fields: [String]? = nil) -> BulkFailure {
        BulkFailure(line: row.line, primaryKey: row.key, error: error.message, code: error.code, row: fields ?? row.row)
    }

    func batchChunk(_ rows: [Row]) async throws -> ChunkResult {
        let writes = rows.map { row in
            ConnectorWrite(
                type: request.type, object: providerObject, recordId: request.type == .delete ? row.key : nil,
                fields: request.type == .delete ? [:] : fields(row.row), associations: nil,
                upsertOn: request.type == .upsert ? ConnectorUpsert(field: bulk.primaryKey, values: [row.key]) : nil)
        }
        let connector = execution.connectors.connector(for: request.provider)
        var result = ChunkResult()
        let call = try await call(idempotent: true, calls: &result.calls) { connection in
            await connector.writeBatch(writes, allOrNone: false, connection: connection)
        }
        var changes = ChangeBatch(self)
        for index in rows.indices {
            switch call.items?[index] {
            case .applied(let id, _, let status)?:
                result.succeeded += 1
                try await changes.add(recordId: id, line: rows[index].line, created: status == 201) { writer in
                    writeFields(rows[index].row, into: &writer)
                }
            case .rejected(let error, _)?:
                result.failures.append(failure(rows[index], error))
            default:
                result.failures.append(failure(rows[index], whole(call.outcome)))
            }
        }
        try await changes.send()
        return result
    }

    func salesforceJob(_ csv: [UInt8], rows: [Row]) async throws -> ChunkResult {
        var calls = 0
        var jobId: String?
        var result = try await salesforceJob(csv, rows: rows, calls: &calls, jobId: &jobId)
        result.calls = calls
        result.jobId = jobId
        return result
    }

    func salesforceJob(_ csv: [UInt8], rows: [Row], calls: inout Int, jobId: inout String?) async throws -> ChunkResult {
        let api = execution.connectors.salesforceBulk
        let object = providerObject
        let type = request.type
        let key = bulk.primaryKey
        let this = self
        func failAll(_ error: WriteError) -> ChunkResult {
            let all = this.rowsOf(csv, rows)
            return ChunkResult(succeeded: 0, failures: rows.indices.map { this.failure(rows[$0], error, fields: all[$0]) })
        }
        let created = try await step(idempotent: false, calls: &calls) { connection in
            await api.createJob(object: object, type: type, externalIdField: key, connection: connection)
        }
        guard let job = created.value else { return failAll(whole(created.call.outcome)) }
        jobId = job
        let uploaded = try await call(idempotent: true, calls: &calls) { connection in
            await api.upload(job: job, csv: csv, connection: connection)
        }
        guard case .applied = uploaded.outcome else {
            _ = try? await call(idempotent: true, calls: &calls) { connection in
                await api.setState(job: job, "Aborted", connection: connection)
            }
            return failAll(whole(uploaded.outcome))
        }
        let closed = try await call(idempotent: true, calls: &calls) { connection in
            await api.setState(job: job, "UploadComplete", connection: connection)
        }
        guard case .applied = closed.outcome else { return failAll(whole(closed.outcome)) }
        // Read again after a quarter of the time the job has run so far (from 50 ms, at most
        // WRITER_BULK_POLL_MAX_SECONDS): a job is seen ended at most a quarter of its time late, where
        // doubling waits could leave it ended and unread for as long again as it ran.
        let closedAt = ContinuousClock.now
        var info: BulkJobInfo
        while true {
            let read = try await step(idempotent: true, calls: &calls) { connection in await api.info(job: job, connection: connection) }
            guard let state = read.value else { return failAll(whole(read.call.outcome)) }
            info = state
            if info.ended { break }
            if stopped { throw CancellationError() }
            let ran = ContinuousClock.now - closedAt
            try await Task.sleep(for: min(.milliseconds(Int(execution.configuration.bulkPollMaxSeconds * 1000)), max(.milliseconds(50), ran / 4)))
        }
        logger.debug("bulk job ended", metadata: ["job": "\(job)", "state": "\(info.state)"])
        // Each row is in one of the job's result files, which are read a record at a time; a row in
        // none failed with the job.
        // Each key's rows, the last first (taken from the end, in place).
        var byKey: [String: [Int]] = [:]
        byKey.reserveCapacity(rows.count)
        for (index, row) in rows.enumerated().reversed() { byKey[row.key.lowercased(), default: []].append(index) }
        var answered = [Bool](repeating: false, count: rows.count)
        var result = ChunkResult()
        var changes = ChangeBatch(self)
        for file in ["successfulResults", "failedResults"] {
            let answer = try await step(idempotent: true, calls: &calls) { connection in
                await api.results(job: job, file, connection: connection)
            }
            guard let text = answer.value else { continue }
            var reader = CSVReader(lineEndings: .lfOrCRLF)
            var column: [String: Int]?
            var records: [[String]] = []
            let take = { (record: [String], _: Int) in
                if column == nil { column = Dictionary(record.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first }) }
                else { records.append(record) }
            }
            var bytes = text[...]
            while !bytes.isEmpty || !records.isEmpty {
                // A slice of the file at a time, so that its rows are not all held at once.
                let piece = bytes.prefix(1 << 20)
                bytes = bytes.dropFirst(piece.count)
                try? reader.feed(piece, emit: take)
                if bytes.isEmpty { try? reader.finish(emit: take) }
                // The columns' places, found once for the file's rows.
                let headerAt = bulk.header.map { column?[$0] }
                let (idAt, sfIdAt, keyAt) = (column?["Id"], column?["sf__Id"], column?[key])
                let (createdAt, errorAt) = (column?["sf__Created"], column?["sf__Error"])
                for record in records {
                    let value = { (at: Int?) in at.flatMap { $0 < record.count ? record[$0] : nil } ?? "" }
                    let rowKey = type == .delete ? (value(idAt).isEmpty ? value(sfIdAt) : value(idAt)) : value(keyAt)
                    guard let index = byKey[rowKey.lowercased()]?.popLast() else { continue }
                    answered[index] = true
                    let original = headerAt.map(value)
                    if file == "successfulResults" {
                        result.succeeded += 1
                        try await changes.add(recordId: value(sfIdAt), line: rows[index].line, created: value(createdAt) == "true") { writer in
                            writeFields(original, into: &writer)
                        }
                    } else {
                        let message = value(errorAt)
                        result.failures.append(failure(rows[index], WriteError(message: message, code: message.split(separator: ":").first.map(String.init)),
                                                       fields: original))
                    }
                }
                records.removeAll(keepingCapacity: true)
            }
        }
        try await changes.send()
        if answered.contains(false) {
            let reason = info.errorMessage ?? "the job ended \(info.state) without a result for it"
            let all = rowsOf(csv, rows)
            for index in answered.indices where !answered[index] {
                result.failures.append(failure(rows[index], WriteError(message: "not processed: \(reason)", code: "NOT_PROCESSED"),
                                               fields: all[index]))
            }
        }
        return result
    }

    /// The rows of a job as they were read, from the job's CSV. (A delete's job holds the id column
    /// only; the other columns come back empty.)
    func rowsOf(_ csv: [UInt8], _ rows: [Row]) -> [[String]] {
        var parsed: [[String]] = []
        var reader = CSVReader()
        try? reader.feed(csv) { record, _ in parsed.append(record) }
        try? reader.finish { record, _ in parsed.append(record) }
        let keyIndex = self.keyIndex
        return rows.enumerated().map { offset, row in
            request.type == .delete
                ? bulk.header.indices.map { $0 == keyIndex ? row.key : "" }
                : parsed.count > offset + 1 ? parsed[offset + 1] : []
        }
    }

    /// The change events of written rows, sent a group at a time so that the producer's queue (and the
    /// memory of the events in flight) stays bounded; each group returns once the broker has it.
    struct ChangeBatch {
        let producer: KafkaProducer
        let logger: Logger
        let events: ChangeEvent.Writer
        var pending: [(key: String, bytes: [UInt8])] = []

        init(_ execution: BulkExecution) {
            producer = execution.execution.producer
            logger = execution.logger
            events = ChangeEvent.Writer(result: WriteResultMessage(
                request: execution.request, success: true, recordId: nil, data: nil, error: nil, providerStatus: 200,
                possiblyDuplicated: false, attempts: 0, completedAt: Timestamp.now(), version: Timestamp.microsNow()))
        }

        /// A written row's change event; `fields` writes its fields as a JSON object.
        mutating func add(recordId: String, line: Int, created: Bool, fields: (inout JSONWriter) -> Void) async throws {
            guard !recordId.isEmpty else { return }
            pending.append((events.routingKey(recordId: recordId),
                            events.bytes(recordId: recordId, index: line, line: line, created: created, fields: fields)))
            if pending.count >= BulkExecution.changesInFlight { try await send() }
        }

        mutating func send() async throws {
            let group = pending
            pending = []
            guard !group.isEmpty else { return }
            let producer = self.producer
            let messages = group.map { KafkaOutgoing(topic: Topics.recordChanges, key: $0.key, value: $0.bytes) }
            try await untilSucceeded("publishing change events", logger: logger) { try await producer.send(messages) }
        }
    }
}

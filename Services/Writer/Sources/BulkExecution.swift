import CSV
import Connectors
import CMalloc
import Foundation
import HTTPClient
import Logging
import Metrics
import Pipeline
import Postgres
import ProviderAccess
import Shared

/// The CSVs of bulk writes sent as `recordsCSV`, held in the control database until their write ends.
struct BulkUploads: Sendable {
    let database: PostgresPool
    /// Bytes read at a time.
    static let piece = 1 << 20

    /// The stored CSV's bytes from `offset` (0-based), at most `piece` of them; nil when nothing is held
    /// for the operation; empty past the end.
    func piece(_ operationId: String, from offset: Int) async throws -> [UInt8]? {
        let row = try await database.query(
            "SELECT encode(substring(csv FROM $2::int FOR $3::int), 'hex') AS part FROM bulk_uploads WHERE operation_id = $1::uuid",
            [operationId, String(offset + 1), String(Self.piece)]
        ).first
        guard let row else { return nil }
        return Self.unhex(row["part"] ?? "")
    }

    func remove(_ operationId: String) async throws {
        try await database.query("DELETE FROM bulk_uploads WHERE operation_id = $1::uuid", [operationId])
    }

    static func unhex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count / 2)
        var high: UInt8?
        for character in text.utf8 {
            let value: UInt8
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = character - UInt8(ascii: "a") + 10
            default: continue
            }
            if let first = high {
                bytes.append(first << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        return bytes
    }
}

/// One reading of a bulk write's CSV, from its first byte to its end, on a thread of its own: the CSV
/// streams in (from the control database or the `recordsURL`), rows gather into chunks — a Salesforce
/// Bulk API 2.0 job of up to `WRITER_BULK_JOB_MAX_BYTES`, a HubSpot batch of 100 — and each chunk is
/// written before more is read, so memory holds one chunk whatever the size of the file. Rows written
/// become change events; refused rows, with their line and primary key, go to `bulk-progress` with the
/// counts so far.
final class BulkExecution: @unchecked Sendable {
    static let hubspotChunkRows = 100
    /// Change events sent at once, at most.
    static let changesInFlight = 5000
    /// Refused rows sent in one progress message, at most.
    static let failuresPerMessage = 500

    let execution: WriteExecution
    let request: WriteRequestMessage
    let bulk: BulkWrite
    let context: InstallationContext
    let logger: Logger
    let run: Int
    /// How long each provider call may be retried for a passing failure: the write's retry deadline
    /// counts from each chunk, since a large file legitimately takes longer than one write's deadline.
    let retryWindow: Duration
    private let keyIndex: Int
    private let providerObject: String

    private var reader = CSVReader()
    private var headerRead = false
    /// The rows read and not yet written: their line, primary key and fields (HubSpot), or, for Salesforce,
    /// their line and key with the rows already in `jobCSV`.
    private var pending: [(line: Int, key: String, row: [String])] = []
    private var jobCSV: [UInt8] = []
    private var processed = 0
    private var succeeded = 0
    private var failed = 0
    private var calls = 0
    private var jobIds: [String] = []
    private var unreported: [BulkFailure] = []
    private var lastReport = ContinuousClock.now
    private var fatal: WriteError?
    /// What stopped the reading that is not the CSV's fault (shutdown).
    private var thrown: (any Error)?

    /// Set when the write must stop (shutdown, its partition taken away): the reading stops before the
    /// next chunk, and the write is left for redelivery.
    let stopFlag: StopFlag?

    init(execution: WriteExecution, request: WriteRequestMessage, bulk: BulkWrite, context: InstallationContext, stop: StopFlag?,
         logger: Logger)
    {
        self.execution = execution
        stopFlag = stop
        self.request = request
        self.bulk = bulk
        self.context = context
        self.logger = logger
        let seconds = request.retryDeadlineHours.map { Double($0) * 3600 } ?? execution.configuration.retryDeadline
        retryWindow = .milliseconds(Int(seconds * 1000))
        run = Int(Timestamp.microsNow() / 1000)
        keyIndex = bulk.header.firstIndex(of: bulk.primaryKey) ?? 0
        providerObject = request.provider.providerObject(for: request.objectName)
    }

    /// Reads and writes the whole CSV; answers the write's result.
    func write() async throws -> WriteResultMessage {
        let started = ContinuousClock.now
        try await onThread { try self.readAll() }
        let elapsed = ContinuousClock.now - started
        logger.info("bulk write read to its end", metadata: [
            "rows": "\(processed)", "succeeded": "\(succeeded)", "failed": "\(failed)", "jobs": "\(jobIds.count)",
            "seconds": "\(elapsed.components.seconds)",
        ])
        Counter(label: "writeback_bulk_rows_total", dimensions: [("provider", request.provider.rawValue), ("outcome", "written")])
            .increment(by: succeeded)
        Counter(label: "writeback_bulk_rows_total", dimensions: [("provider", request.provider.rawValue), ("outcome", "failed")])
            .increment(by: failed)
        var error = fatal
        if error == nil && failed > 0 {
            error = WriteError(message: "\(failed) of \(processed) rows were not written; download them from the operation's failedRecordsURL",
                               code: "ROWS_FAILED")
        }
        return WriteResultMessage(
            request: request, success: error == nil, recordId: nil,
            data: ["processed": .number(Double(processed)), "succeeded": .number(Double(succeeded)),
                   "failed": .number(Double(failed)), "jobIds": .array(jobIds.map(JSONValue.string))],
            error: error, providerStatus: nil, possiblyDuplicated: false, attempts: calls, completedAt: Timestamp.now(),
            version: Timestamp.microsNow())
    }

    // MARK: reading (on the bulk write's own thread)

    private func readAll() throws {
        do {
            if let url = bulk.recordsURL {
                do {
                    try execution.configuration.recordsURL.fetch(url) { chunk in self.take(chunk) }
                } catch {
                    if fatal == nil && thrown == nil {
                        fatal = WriteError(message: error.message, code: error.refused ? "URL_REFUSED" : "URL_FAILED")
                    }
                }
            } else {
                var offset = 0
                while fatal == nil && thrown == nil {
                    let uploads = execution.bulkUploads
                    let operationId = request.operationId
                    let at = offset
                    let logger = self.logger
                    guard let piece = try blocking({
                        try await untilSucceeded("reading the uploaded CSV", logger: logger) { try await uploads?.piece(operationId, from: at) }
                    }) else {
                        fatal = WriteError(message: "the write's recordsCSV is no longer held", code: "CSV_MISSING")
                        break
                    }
                    if piece.isEmpty { break }
                    offset += piece.count
                    _ = take(piece)
                }
            }
            if fatal == nil && thrown == nil {
                try reader.finish { record, line in try self.row(record, line: line) }
            }
        } catch {
            stop(error)
        }
        // Stopped by shutdown: nothing more is written, and the write comes back to a writer.
        if let thrown { throw thrown }
        // Rows read before a problem with the CSV are written still.
        try flush()
        try report(final: true)
    }

    /// Feeds a chunk of the CSV; false stops the reading.
    private func take(_ chunk: [UInt8]) -> Bool {
        if stopFlag?.isSet == true {
            stop(CancellationError())
            return false
        }
        do {
            try reader.feed(chunk) { record, line in try self.row(record, line: line) }
        } catch {
            stop(error)
        }
        return fatal == nil && thrown == nil
    }

    /// Ends the reading: a problem with the CSV fails the write at its line; anything else (shutdown)
    /// is thrown once the reading has stopped.
    private func stop(_ error: any Error) {
        switch error {
        case let error as CSVError:
            fatal = WriteError(message: "the CSV cannot be read past line \(error.line): \(error.message)", code: "CSV_INVALID")
        case let error as BulkStop:
            fatal = error.error
        default:
            thrown = error
        }
    }

    private struct BulkStop: Error {
        let error: WriteError
    }

    private func row(_ record: [String], line: Int) throws {
        guard headerRead else {
            guard record.map({ $0.lowercased() }) == bulk.header.map({ $0.lowercased() }) else {
                throw BulkStop(error: WriteError(
                    message: "the CSV's header is now \(record.joined(separator: ",")), not the \(bulk.header.joined(separator: ",")) "
                        + "it had when the write was accepted", code: "CSV_CHANGED"))
            }
            headerRead = true
            return
        }
        if record.count == 1 && record[0].isEmpty { return }  // a blank line
        guard record.count == bulk.header.count else {
            processed += 1
            failed += 1
            unreported.append(BulkFailure(
                line: line, primaryKey: record.count > keyIndex ? record[keyIndex] : "",
                error: "line \(line) has \(record.count) fields; the header has \(bulk.header.count)", code: "ROW_INVALID", row: record))
            return
        }
        let key = record[keyIndex]
        switch request.provider {
        case .salesforce:
            let text = Array(CSVFormat.row(jobColumns(record)).utf8)
            if !jobCSV.isEmpty && jobCSV.count + text.count > execution.configuration.bulkJobMaxBytes && !pending.isEmpty {
                try flush()
            }
            if jobCSV.isEmpty {
                // Room for the whole job at once: growing by doubling would hold up to twice as much.
                jobCSV.reserveCapacity(execution.configuration.bulkJobMaxBytes + text.count)
                jobCSV += Array(CSVFormat.row(jobColumns(bulk.header)).utf8)
            }
            jobCSV += text
            pending.append((line, key, []))
        case .hubspot:
            pending.append((line, key, record))
            if pending.count >= Self.hubspotChunkRows { try flush() }
        }
    }

    /// A delete job's CSV holds the record id only.
    private func jobColumns(_ fields: [String]) -> [String] {
        request.type == .delete ? [fields[keyIndex]] : fields
    }

    /// Writes the rows read so far, then reports progress when it is time.
    private func flush() throws {
        guard !pending.isEmpty else { return }
        try writeChunk()
        // The chunk's memory goes back to the system now, so that the next chunk starts from the same place.
        _ = wb_malloc_trim()
    }

    private func writeChunk() throws {
        if stopFlag?.isSet == true { throw CancellationError() }
        let rows = pending
        let csv = jobCSV
        pending = []
        jobCSV = []
        let result = try blocking { [self] in
            switch request.provider {
            case .salesforce: return try await salesforceJob(csv, rows: rows)
            case .hubspot: return try await hubspotBatch(rows)
            }
        }
        processed += result.succeeded + result.failures.count
        succeeded += result.succeeded
        failed += result.failures.count
        unreported += result.failures
        try report(final: false)
    }

    /// Publishes the counts and the refused rows not yet published: at the end, every second, or when
    /// enough refused rows wait.
    private func report(final: Bool) throws {
        guard final || unreported.count >= Self.failuresPerMessage || ContinuousClock.now - lastReport >= .seconds(1) else { return }
        lastReport = .now
        var failures = unreported
        unreported = []
        repeat {
            let part = Array(failures.prefix(Self.failuresPerMessage))
            failures.removeFirst(part.count)
            let message = BulkProgressMessage(
                request: request, run: run, processed: processed, succeeded: succeeded, failed: failed,
                total: final && failures.isEmpty && fatal == nil ? processed : nil, jobIds: jobIds, failures: part, time: Timestamp.now())
            let bytes = try JSONCoding.encode(message)
            let producer = execution.producer
            let key = request.routingKey
            let logger = self.logger
            try blocking {
                try await untilSucceeded("publishing the progress", logger: logger) {
                    try await producer.send(topic: Topics.bulkProgress, key: key, value: bytes)
                }
            }
        } while !failures.isEmpty
    }

    // MARK: writing a chunk (async, on the concurrency pool)

    /// What became of a chunk's rows: how many were written (their change events are published), and
    /// the refused ones.
    struct ChunkResult: Sendable {
        var succeeded = 0
        var failures: [BulkFailure] = []
    }

    /// A row's fields to write: empty cells leave a field as it is; `#N/A` empties it.
    private func fields(_ row: [String]) -> [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        for (name, value) in zip(bulk.header, row) where !value.isEmpty {
            fields[name] = value == "#N/A" ? .null : .string(value)
        }
        return fields
    }

    /// One provider call through the writer's pacing, token renewal and retries.
    private func call(idempotent: Bool, _ send: @escaping @Sendable (Connection) async -> ConnectorResponse) async throws
        -> WriteExecution.ProviderCall
    {
        // A bulk write cannot be held in the middle of its file: it waits in memory, a second at a time,
        // so that a stop (shutdown, its partition taken away) reaches it within a second.
        let deadline = ContinuousClock.now + retryWindow
        var carried = Carried()
        while true {
            if stopFlag?.isSet == true { throw CancellationError() }
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

    private func whole(_ outcome: ConnectorOutcome) -> WriteError {
        switch outcome {
        case .applied: return WriteError(message: "the provider did not answer for each row")
        case .rejected(let error, _), .unauthorized(let error, _): return error
        case .retryable(let error, _, _), .rateLimited(let error, _, _):
            var error = error
            error.message = "retry deadline passed: \(error.message)"
            return error
        }
    }

    private func failure(_ row: (line: Int, key: String, row: [String]), _ error: WriteError, fields: [String]? = nil) -> BulkFailure {
        BulkFailure(line: row.line, primaryKey: row.key, error: error.message, code: error.code, row: fields ?? row.row)
    }

    private func hubspotBatch(_ rows: [(line: Int, key: String, row: [String])]) async throws -> ChunkResult {
        let writes = rows.map { row in
            ConnectorWrite(
                type: request.type, object: providerObject, recordId: request.type == .delete ? row.key : nil,
                fields: request.type == .delete ? [:] : fields(row.row), associations: nil,
                upsertOn: request.type == .upsert ? ConnectorUpsert(field: bulk.primaryKey, values: [row.key]) : nil)
        }
        let connector = execution.connectors.connector(for: .hubspot)
        let call = try await call(idempotent: true) { connection in
            await connector.writeBatch(writes, allOrNone: false, connection: connection)
        }
        var result = ChunkResult()
        let changes = ChangeBatch(self)
        for index in rows.indices {
            switch call.items?[index] {
            case .applied(let id, _, let status)?:
                result.succeeded += 1
                try await changes.add(recordId: id, line: rows[index].line, created: status == 201,
                                      fields: request.type == .delete ? [:] : fields(rows[index].row))
            case .rejected(let error, _)?:
                result.failures.append(failure(rows[index], error))
            default:
                result.failures.append(failure(rows[index], whole(call.outcome)))
            }
        }
        try await changes.send()
        return result
    }

    private func salesforceJob(_ csv: [UInt8], rows: [(line: Int, key: String, row: [String])]) async throws -> ChunkResult {
        let api = execution.connectors.salesforceBulk
        let object = providerObject
        let type = request.type
        let key = bulk.primaryKey
        let failAll = { (error: WriteError) -> ChunkResult in
            let all = self.rowsOf(csv, rows)
            return ChunkResult(succeeded: 0, failures: rows.indices.map { self.failure(rows[$0], error, fields: all[$0]) })
        }
        let created = try await call(idempotent: false) { connection in
            await api.createJob(object: object, type: type, externalIdField: key, connection: connection)
        }
        guard case .applied(let job, _, _) = created.outcome else { return failAll(whole(created.outcome)) }
        jobIds.append(job)
        let uploaded = try await call(idempotent: true) { connection in await api.upload(job: job, csv: csv, connection: connection) }
        guard case .applied = uploaded.outcome else {
            _ = try? await call(idempotent: true) { connection in await api.setState(job: job, "Aborted", connection: connection) }
            return failAll(whole(uploaded.outcome))
        }
        let closed = try await call(idempotent: true) { connection in
            await api.setState(job: job, "UploadComplete", connection: connection)
        }
        guard case .applied = closed.outcome else { return failAll(whole(closed.outcome)) }
        var wait = 0.05
        var info: [String: JSONValue] = [:]
        while true {
            let read = try await call(idempotent: true) { connection in await api.info(job: job, connection: connection) }
            guard case .applied(_, let data, _) = read.outcome else { return failAll(whole(read.outcome)) }
            info = data
            let state = info["state"]?.stringValue ?? ""
            if ["JobComplete", "Failed", "Aborted"].contains(state) { break }
            if stopFlag?.isSet == true { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(Int(wait * 1000)))
            wait = min(wait * 2, execution.configuration.bulkPollMaxSeconds)
        }
        logger.debug("bulk job ended", metadata: ["job": "\(job)", "state": "\(info["state"]?.stringValue ?? "")"])
        // Each row is in one of the job's result files, which are read a record at a time; a row in
        // none failed with the job.
        var byKey: [String: [Int]] = [:]
        for (index, row) in rows.enumerated() { byKey[row.key.lowercased(), default: []].append(index) }
        var answered = [Bool](repeating: false, count: rows.count)
        var result = ChunkResult()
        let changes = ChangeBatch(self)
        for file in ["successfulResults", "failedResults"] {
            let answer = try await call(idempotent: true) { connection in await api.results(job: job, file, connection: connection) }
            guard case .applied(_, let data, _) = answer.outcome, let text = data["csv"]?.stringValue else { continue }
            var reader = CSVReader(lineEndings: .lfOrCRLF)
            var column: [String: Int]?
            var records: [[String]] = []
            let take = { (record: [String], _: Int) in
                if column == nil { column = Dictionary(record.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first }) }
                else { records.append(record) }
            }
            var utf8 = text.utf8[...]
            while !utf8.isEmpty || !records.isEmpty {
                // A slice of the file at a time, so that its rows are not all held at once.
                let piece = utf8.prefix(1 << 20)
                utf8 = utf8.dropFirst(piece.count)
                try? reader.feed(piece, emit: take)
                if utf8.isEmpty { try? reader.finish(emit: take) }
                for record in records {
                    let value = { (name: String) in column?[name].flatMap { $0 < record.count ? record[$0] : nil } ?? "" }
                    let rowKey = type == .delete ? (value("Id").isEmpty ? value("sf__Id") : value("Id")) : value(key)
                    guard var indices = byKey[rowKey.lowercased()], !indices.isEmpty else { continue }
                    let index = indices.removeFirst()
                    byKey[rowKey.lowercased()] = indices
                    answered[index] = true
                    let original = bulk.header.map(value)
                    if file == "successfulResults" {
                        result.succeeded += 1
                        try await changes.add(recordId: value("sf__Id"), line: rows[index].line, created: value("sf__Created") == "true",
                                              fields: type == .delete ? [:] : fields(original))
                    } else {
                        let message = value("sf__Error")
                        result.failures.append(failure(rows[index], WriteError(message: message, code: message.split(separator: ":").first.map(String.init)),
                                                       fields: original))
                    }
                }
                records.removeAll(keepingCapacity: true)
            }
        }
        try await changes.send()
        if answered.contains(false) {
            let reason = info["errorMessage"]?.stringValue ?? "the job ended \(info["state"]?.stringValue ?? "") without a result for it"
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
    private func rowsOf(_ csv: [UInt8], _ rows: [(line: Int, key: String, row: [String])]) -> [[String]] {
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
    final class ChangeBatch {
        let execution: BulkExecution
        let base: WriteResultMessage
        var pending: [(key: String, bytes: [UInt8])] = []

        init(_ execution: BulkExecution) {
            self.execution = execution
            base = WriteResultMessage(
                request: execution.request, success: true, recordId: nil, data: nil, error: nil, providerStatus: 200,
                possiblyDuplicated: false, attempts: 0, completedAt: Timestamp.now(), version: Timestamp.microsNow())
        }

        func add(recordId: String, line: Int, created: Bool, fields: [String: JSONValue]) async throws {
            guard !recordId.isEmpty else { return }
            var event = ChangeEvent(result: base, recordId: recordId, fields: fields, index: line, line: line)
            if base.type == .upsert { event.type = "com.writeback.record.\(created ? "created" : "updated")" }
            pending.append((event.routingKey, try JSONCoding.encode(event)))
            if pending.count >= BulkExecution.changesInFlight { try await send() }
        }

        func send() async throws {
            let group = pending
            pending = []
            guard !group.isEmpty else { return }
            let producer = execution.execution.producer
            try await untilSucceeded("publishing change events", logger: execution.logger) {
                try await withThrowingTaskGroup(of: Void.self) { tasks in
                    for (key, bytes) in group {
                        tasks.addTask { try await producer.send(topic: Topics.recordChanges, key: key, value: bytes) }
                    }
                    try await tasks.waitForAll()
                }
            }
        }
    }
}

/// Waits on this (non-pool) thread for async work.
private func blocking<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) throws -> T {
    let box = WaitBox<T>()
    Task {
        do { box.result = .success(try await work()) } catch { box.result = .failure(error) }
        box.done.signal()
    }
    box.done.wait()
    return try box.result!.get()
}

private final class WaitBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
    let done = DispatchSemaphore(value: 0)
}

/// Runs blocking work on a thread of its own, so that it never holds a thread of the concurrency pool.
private func onThread(_ body: @escaping @Sendable () throws -> Void) async throws {
    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
        let thread = Thread {
            do {
                try body()
                continuation.resume()
            } catch {
                continuation.resume(throwing: error)
            }
        }
        thread.stackSize = 8 << 20
        thread.start()
    }
}

import CSV
import Connectors
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
    /// Refused rows sent in one progress message, at most.
    static let failuresPerMessage = 500

    let execution: WriteExecution
    let request: WriteRequestMessage
    let bulk: BulkWrite
    let context: InstallationContext
    let logger: Logger
    let run: Int
    let deadline: ContinuousClock.Instant
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

    init(execution: WriteExecution, request: WriteRequestMessage, bulk: BulkWrite, context: InstallationContext, logger: Logger,
         deadline: ContinuousClock.Instant)
    {
        self.execution = execution
        self.request = request
        self.bulk = bulk
        self.context = context
        self.logger = logger
        self.deadline = deadline
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
                    if fatal == nil { fatal = WriteError(message: error.message, code: error.refused ? "URL_REFUSED" : "URL_FAILED") }
                }
            } else {
                var offset = 0
                while fatal == nil {
                    let uploads = execution.bulkUploads
                    let operationId = request.operationId
                    let at = offset
                    guard let piece = try blocking({ try await uploads?.piece(operationId, from: at) }) else {
                        fatal = WriteError(message: "the write's recordsCSV is no longer held", code: "CSV_MISSING")
                        break
                    }
                    if piece.isEmpty { break }
                    offset += piece.count
                    _ = take(piece)
                }
            }
            if fatal == nil {
                try reader.finish { record, line in try self.row(record, line: line) }
            }
        } catch let error as CSVError {
            fatal = WriteError(message: "the CSV cannot be read past line \(error.line): \(error.message)", code: "CSV_INVALID")
        } catch let error as BulkStop {
            fatal = error.error
        }
        // Rows read before a problem are written still.
        try flush()
        try report(final: true)
    }

    /// Feeds a chunk of the CSV; false stops the reading (a problem was found).
    private func take(_ chunk: [UInt8]) -> Bool {
        do {
            try reader.feed(chunk) { record, line in try self.row(record, line: line) }
        } catch let error as CSVError {
            fatal = WriteError(message: "the CSV cannot be read past line \(error.line): \(error.message)", code: "CSV_INVALID")
        } catch let error as BulkStop {
            fatal = error.error
        } catch {
            fatal = WriteError(message: "reading the CSV stopped: \(error)")
        }
        return fatal == nil
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
            if jobCSV.isEmpty { jobCSV = Array(CSVFormat.row(jobColumns(bulk.header)).utf8) }
            let text = Array(CSVFormat.row(jobColumns(record)).utf8)
            if jobCSV.count + text.count > execution.configuration.bulkJobMaxBytes && !pending.isEmpty {
                try flush()
                jobCSV = Array(CSVFormat.row(jobColumns(bulk.header)).utf8)
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
        let rows = pending
        let csv = jobCSV
        pending = []
        jobCSV = []
        let outcomes = try blocking { [self] in
            switch request.provider {
            case .salesforce: return try await salesforceJob(csv, rows: rows)
            case .hubspot: return try await hubspotBatch(rows)
            }
        }
        try blocking { [self] in try await publishChanges(outcomes) }
        for outcome in outcomes {
            processed += 1
            if let error = outcome.error {
                failed += 1
                unreported.append(BulkFailure(line: outcome.line, primaryKey: outcome.key, error: error.message, code: error.code,
                                              row: outcome.row))
            } else {
                succeeded += 1
            }
        }
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
            try blocking { try await producer.send(topic: Topics.bulkProgress, key: key, value: bytes) }
        } while !failures.isEmpty
    }

    // MARK: writing a chunk (async, on the concurrency pool)

    /// What became of one row.
    struct RowOutcome: Sendable {
        var line: Int
        var key: String
        var row: [String]
        var recordId: String?
        var created = false
        var fields: [String: JSONValue] = [:]
        var error: WriteError?
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
        let call = try await execution.callProvider(
            context, provider: request.provider, idempotent: idempotent, deadline: deadline, interrupted: false, logger: logger,
            send: send)
        calls += call.calls
        return call
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

    private func hubspotBatch(_ rows: [(line: Int, key: String, row: [String])]) async throws -> [RowOutcome] {
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
        return rows.indices.map { index in
            var outcome = RowOutcome(line: rows[index].line, key: rows[index].key, row: rows[index].row)
            switch call.items?[index] {
            case .applied(let id, _, let status)?:
                outcome.recordId = id
                outcome.created = status == 201
                outcome.fields = request.type == .delete ? [:] : fields(rows[index].row)
            case .rejected(let error, _)?:
                outcome.error = error
            default:
                outcome.error = whole(call.outcome)
            }
            return outcome
        }
    }

    private func salesforceJob(_ csv: [UInt8], rows: [(line: Int, key: String, row: [String])]) async throws -> [RowOutcome] {
        let api = execution.connectors.salesforceBulk
        let object = providerObject
        let type = request.type
        let key = bulk.primaryKey
        let failAll = { (error: WriteError) -> [RowOutcome] in
            self.rowsOf(csv, rows).map { var row = $0; row.error = error; return row }
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
            try await Task.sleep(for: .milliseconds(Int(wait * 1000)))
            wait = min(wait * 2, execution.configuration.bulkPollMaxSeconds)
        }
        logger.debug("bulk job ended", metadata: ["job": "\(job)", "state": "\(info["state"]?.stringValue ?? "")"])
        // Each row is in one of the job's result files; a row in none failed with the job.
        var byKey: [String: [Int]] = [:]
        for (index, row) in rows.enumerated() { byKey[row.key.lowercased(), default: []].append(index) }
        var outcomes = [RowOutcome?](repeating: nil, count: rows.count)
        for file in ["successfulResults", "failedResults"] {
            let answer = try await call(idempotent: true) { connection in await api.results(job: job, file, connection: connection) }
            guard case .applied(_, let data, _) = answer.outcome, let text = data["csv"]?.stringValue else { continue }
            try? resultRows(text) { header, record in
                let column = Dictionary(header.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
                let value = { (name: String) in column[name].flatMap { $0 < record.count ? record[$0] : nil } ?? "" }
                let rowKey = type == .delete ? value("Id").isEmpty ? value("sf__Id") : value("Id") : value(key)
                guard var indices = byKey[rowKey.lowercased()], !indices.isEmpty else { return }
                let index = indices.removeFirst()
                byKey[rowKey.lowercased()] = indices
                let original = bulk.header.map(value)
                var outcome = RowOutcome(line: rows[index].line, key: rows[index].key, row: original)
                if file == "successfulResults" {
                    outcome.recordId = value("sf__Id")
                    outcome.created = value("sf__Created") == "true"
                    outcome.fields = type == .delete ? [:] : fields(original)
                } else {
                    let message = value("sf__Error")
                    let code = message.split(separator: ":").first.map(String.init)
                    outcome.error = WriteError(message: message, code: code)
                }
                outcomes[index] = outcome
            }
        }
        if outcomes.contains(where: { $0 == nil }) {
            let reason = info["errorMessage"]?.stringValue ?? "the job ended \(info["state"]?.stringValue ?? "") without a result for it"
            let all = rowsOf(csv, rows)
            for index in outcomes.indices where outcomes[index] == nil {
                var outcome = all[index]
                outcome.error = WriteError(message: "not processed: \(reason)", code: "NOT_PROCESSED")
                outcomes[index] = outcome
            }
        }
        return outcomes.map { $0! }
    }

    /// The rows of a job as outcomes without a result yet, their fields read back from the job's CSV.
    /// (A delete's job holds the id column only; the other columns come back empty.)
    private func rowsOf(_ csv: [UInt8], _ rows: [(line: Int, key: String, row: [String])]) -> [RowOutcome] {
        var parsed: [[String]] = []
        var reader = CSVReader()
        try? reader.feed(csv) { record, _ in parsed.append(record) }
        try? reader.finish { record, _ in parsed.append(record) }
        let keyIndex = self.keyIndex
        return rows.enumerated().map { offset, row in
            let fields = request.type == .delete
                ? bulk.header.indices.map { $0 == keyIndex ? row.key : "" }
                : parsed.count > offset + 1 ? parsed[offset + 1] : []
            return RowOutcome(line: row.line, key: row.key, row: fields)
        }
    }

    /// The records of a result file after its header, with the header.
    private func resultRows(_ text: String, _ each: ([String], [String]) -> Void) throws {
        var reader = CSVReader(lineEndings: .lfOrCRLF)
        var header: [String]?
        let take = { (record: [String], _: Int) in
            if let header { each(header, record) } else { header = record }
        }
        try reader.feed(text.utf8, emit: take)
        try reader.finish(emit: take)
    }

    /// A change event per row written, sent together; returns once the broker has them all.
    private func publishChanges(_ outcomes: [RowOutcome]) async throws {
        let base = WriteResultMessage(
            request: request, success: true, recordId: nil, data: nil, error: nil, providerStatus: 200, possiblyDuplicated: false,
            attempts: 0, completedAt: Timestamp.now(), version: Timestamp.microsNow())
        let producer = execution.producer
        try await withThrowingTaskGroup(of: Void.self) { group in
            for outcome in outcomes where outcome.error == nil {
                guard let id = outcome.recordId, !id.isEmpty else { continue }
                var event = ChangeEvent(result: base, recordId: id, fields: outcome.fields, index: outcome.line, line: outcome.line)
                if request.type == .upsert { event.type = "com.writeback.record.\(outcome.created ? "created" : "updated")" }
                let bytes = try JSONCoding.encode(event)
                let key = event.routingKey
                group.addTask { try await producer.send(topic: Topics.recordChanges, key: key, value: bytes) }
            }
            try await group.waitForAll()
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

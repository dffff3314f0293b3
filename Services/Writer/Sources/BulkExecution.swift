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


/// One reading of a bulk write's CSV, from its first byte to its end, on a thread of its own: the CSV
/// streams in (from the control database or the `recordsURL`), rows gather into chunks — a Salesforce
/// Bulk API 2.0 job of up to `WRITER_BULK_JOB_MAX_BYTES`, a HubSpot batch of 100 — and each chunk is
/// written before more is read, so memory holds one chunk whatever the size of the file. Rows written
/// become change events; refused rows, with their line and primary key, go to `bulk-progress` with the
/// counts so far.
final class BulkExecution: @unchecked Sendable {
    static let batchChunkRows = 100
    /// Whether the provider takes the file as bulk jobs (Salesforce); otherwise it is written in batches
    /// of `batchChunkRows` through the connector's batch write.
    let usesJobs: Bool
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
    let keyIndex: Int
    let providerObject: String

    var reader = CSVReader()
    var headerRead = false
    /// The rows read and not yet written: their line, primary key and fields (HubSpot), or, for Salesforce,
    /// their line and key with the rows already in `jobCSV`.
    var pending: [(line: Int, key: String, row: [String])] = []
    var jobCSV: [UInt8] = []
    var processed = 0
    var succeeded = 0
    var failed = 0
    var calls = 0
    var jobIds: [String] = []
    var unreported: [BulkFailure] = []
    var lastReport = ContinuousClock.now
    var fatal: WriteError?
    /// What stopped the reading that is not the CSV's fault (shutdown).
    var thrown: (any Error)?

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
        let profile = request.provider.profile
        providerObject = profile.objectName(for: request.objectName)
        usesJobs = profile.bulkJobs
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
                   "failed": .number(Double(failed)), "jobIds": .array(jobIds.map(JSONValue.string)), "run": .number(Double(run)),
                   // Every row was read: the total is known (a file that could not be read to its end has none).
                   "total": fatal == nil ? .number(Double(processed)) : .null],
            error: error, providerStatus: nil, possiblyDuplicated: false, attempts: calls, completedAt: Timestamp.now(),
            version: Timestamp.microsNow())
    }

    // MARK: reading (on the bulk write's own thread)

    func readAll() throws {
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
    func take(_ chunk: [UInt8]) -> Bool {
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
    func stop(_ error: any Error) {
        switch error {
        case let error as CSVError:
            fatal = WriteError(message: "the CSV cannot be read past line \(error.line): \(error.message)", code: "CSV_INVALID")
        case let error as BulkStop:
            fatal = error.error
        default:
            thrown = error
        }
    }

    struct BulkStop: Error {
        let error: WriteError
    }

    func row(_ record: [String], line: Int) throws {
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
        if usesJobs {
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
        } else {
            pending.append((line, key, record))
            if pending.count >= Self.batchChunkRows { try flush() }
        }
    }

    /// A delete job's CSV holds the record id only.
    func jobColumns(_ fields: [String]) -> [String] {
        request.type == .delete ? [fields[keyIndex]] : fields
    }

    /// Writes the rows read so far, then reports progress when it is time.
    func flush() throws {
        guard !pending.isEmpty else { return }
        try writeChunk()
        // The chunk's memory goes back to the system now, so that the next chunk starts from the same place.
        _ = wb_malloc_trim()
    }

    func writeChunk() throws {
        if stopFlag?.isSet == true { throw CancellationError() }
        let rows = pending
        let csv = jobCSV
        pending = []
        jobCSV = []
        let result = try blocking { [self] in
            usesJobs ? try await salesforceJob(csv, rows: rows) : try await batchChunk(rows)
        }
        processed += result.succeeded + result.failures.count
        succeeded += result.succeeded
        failed += result.failures.count
        unreported += result.failures
        try report(final: false)
    }

    /// Publishes the counts and the refused rows not yet published: at the end, every second, or when
    /// enough refused rows wait.
    func report(final: Bool) throws {
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

}

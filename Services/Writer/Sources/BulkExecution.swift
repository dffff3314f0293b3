import CSV
import Connectors
import CMalloc
import Foundation
import HTTPClient
import Logging
import Metrics
import Pipeline
import ProviderAccess
import Shared

/// One reading of a bulk write's CSV, from its first byte to its end, as a pipeline in the write's own
/// task: the CSV's pieces (`BulkExecution.source`: the stored upload, or the `recordsURL` as it
/// downloads) → rows → chunks (a Salesforce Bulk API 2.0 job of up to `WRITER_BULK_JOB_MAX_BYTES`, a
/// batch of 100 elsewhere), up to `WRITER_BULK_CHUNKS_IN_FLIGHT` of them at the provider at once: with
/// one, each is written before more is read; with more, the next is read while the others run, and a
/// chunk holding a key of a running one waits for it and every older one, so a record's rows reach the
/// provider in the file's order. Memory holds that many chunks (and their result files) whatever the
/// size of the file → change events for the rows written, and `bulk-progress` with the counts and the
/// refused rows (their line and primary key), a chunk's once the chunks before it are counted.
/// Cancelling the task, or the write's stop flag (shutdown, its partition taken away), stops it at the
/// next piece or chunk, and its running chunks at their next step (their waits and retries are cut
/// short): nothing more is written, and the write is left for redelivery.
struct BulkExecution {
    static let batchChunkRows = 100
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
    /// Whether the provider takes the file as bulk jobs (Salesforce); otherwise it is written in batches
    /// of `batchChunkRows` through the connector's batch write.
    let usesJobs: Bool
    /// How long each provider call may be retried for a passing failure: the write's retry deadline
    /// counts from each chunk, since a large file legitimately takes longer than one write's deadline.
    let retryWindow: Duration
    let keyIndex: Int
    let providerObject: String
    /// The header's columns in the key order of a JSON object (nil when a name is repeated: the row's
    /// fields are then gathered by name first).
    let fieldOrder: [(name: String, index: Int)]?
    let stopFlag: StopFlag?
    /// Set when the write's task is cancelled: its chunks, which run in tasks of their own, stop too.
    let cancelled = StopFlag()

    /// A row read and not yet written: its line, primary key and fields (the fields are in `jobCSV`
    /// for a bulk job).
    typealias Row = (line: Int, key: String, row: [String])

    var reader = CSVReader()
    var headerRead = false
    var pending: [Row] = []
    var jobCSV: [UInt8] = []
    var counts = BulkCounts()
    var jobIds: [String] = []
    var unreported: [BulkFailure] = []
    var lastReport = ContinuousClock.now
    /// What failed the write for good (the CSV, the URL); the rows before it are written still.
    var fatal: WriteError?
    /// The chunks at the provider, with their rows' keys (lowercased, as the provider matches them).
    var inFlight: ChunkWindow<Task<ChunkResult, any Error>>

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
        let columns = bulk.header.enumerated().map { (name: $0.element, index: $0.offset) }
        fieldOrder = Set(bulk.header).count == bulk.header.count ? columns.sorted { JSONWriter.before($0.name, $1.name) } : nil
        usesJobs = profile.bulkJobs
        inFlight = ChunkWindow(limit: execution.configuration.bulkChunksInFlight)
    }

    /// Reads and writes the whole CSV; answers the write's result.
    mutating func write() async throws -> WriteResultMessage {
        let started = ContinuousClock.now
        // The chunks' memory goes back to the system once the file is written or left. Not after each
        // chunk: the next one would fault the same pages in again (zeroed by the kernel), a fifth of the
        // writer's CPU in a bulk write, for the same peak.
        defer { _ = wb_malloc_trim() }
        do {
            try await withTaskCancellationHandler { try await readAll() } onCancel: { [cancelled] in cancelled.set() }
        } catch {
            // No chunk goes on writing once the write is left: each is cancelled (a provider call in
            // progress finishes; its waits and retries end) and stops at its next step, and the write
            // waits for them.
            cancelled.set()
            for (chunk, _) in inFlight.chunks { chunk.cancel() }
            for (chunk, _) in inFlight.chunks { _ = try? await chunk.value }
            inFlight = ChunkWindow(limit: inFlight.limit)
            throw error
        }
        let elapsed = ContinuousClock.now - started
        logger.info("bulk write read to its end", metadata: [
            "rows": "\(counts.processed)", "succeeded": "\(counts.succeeded)", "failed": "\(counts.failed)", "jobs": "\(jobIds.count)",
            "seconds": "\(elapsed.components.seconds)",
        ])
        Meters.counter("writeback_bulk_rows_total", [("provider", request.provider.rawValue), ("outcome", "written")])
            .increment(by: counts.succeeded)
        Meters.counter("writeback_bulk_rows_total", [("provider", request.provider.rawValue), ("outcome", "failed")])
            .increment(by: counts.failed)
        var error = fatal
        if error == nil && counts.failed > 0 {
            error = WriteError(
                message: "\(counts.failed) of \(counts.processed) rows were not written; download them from the operation's failedRecordsURL",
                code: "ROWS_FAILED")
        }
        return WriteResultMessage(
            request: request, success: error == nil, recordId: nil,
            data: ["processed": .number(Double(counts.processed)), "succeeded": .number(Double(counts.succeeded)),
                   "failed": .number(Double(counts.failed)), "jobIds": .array(jobIds.map(JSONValue.string)), "run": .number(Double(run)),
                   // Every row was read: the total is known (a file that could not be read to its end has none).
                   "total": fatal == nil ? .number(Double(counts.processed)) : .null],
            error: error, providerStatus: nil, possiblyDuplicated: false, attempts: counts.calls, completedAt: Timestamp.now(),
            version: Timestamp.microsNow())
    }

    /// Whether the write must stop now: its task was cancelled or its stop flag set.
    var stopped: Bool { Task.isCancelled || stopFlag?.isSet == true || cancelled.isSet }

    /// The CSV's pieces, then its end: each piece's rows are written (a chunk at a time) before the next
    /// piece is read. A problem with the CSV or the URL fails the write at that point; a stop throws.
    mutating func readAll() async throws {
        do {
            for try await piece in source() {
                if stopped { throw CancellationError() }
                try await take { reader, emit in try reader.feed(piece, emit: emit) }
                if fatal != nil { break }
            }
            if fatal == nil { try await take { reader, emit in try reader.finish(emit: emit) } }
        } catch let failure as GuardedDownload.Failure {
            fatal = WriteError(message: failure.message, code: failure.refused ? "URL_REFUSED" : "URL_FAILED")
        } catch let missing as MissingUpload {
            fatal = missing.error
        }
        // Rows read before a problem with the CSV are written still.
        try await flush()
        while !inFlight.isEmpty { try await settleOldest() }
        try await report(final: true)
    }

    /// Takes the rows `read` gets from the reader: those before a problem with the CSV are taken, and
    /// the problem then fails the write at its line.
    mutating func take(_ read: (inout CSVReader, (_ record: [String], _ line: Int) -> Void) throws -> Void) async throws {
        var rows: [(record: [String], line: Int)] = []
        var problem: CSVError?
        do {
            try read(&reader) { record, line in rows.append((record, line)) }
        } catch let error as CSVError {
            problem = error
        }
        for (record, line) in rows where fatal == nil { try await take(record, line: line) }
        if let problem, fatal == nil {
            fatal = WriteError(message: "the CSV cannot be read past line \(problem.line): \(problem.message)", code: "CSV_INVALID")
        }
    }

    /// The CSV's bytes, a piece at a time.
    func source() -> BulkSource {
        if let url = bulk.recordsURL { return .download(execution.configuration.recordsURL.pieces(url)) }
        return .stored(execution.bulkUploads, operationId: request.operationId, logger: logger)
    }

    /// One row of the CSV: the header is checked against the one the write was accepted with; a row of
    /// the wrong width fails alone; the others gather into the next chunk, which is written when full.
    mutating func take(_ record: [String], line: Int) async throws {
        guard headerRead else {
            guard record.map({ $0.lowercased() }) == bulk.header.map({ $0.lowercased() }) else {
                fatal = WriteError(
                    message: "the CSV's header is now \(record.joined(separator: ",")), not the \(bulk.header.joined(separator: ",")) "
                        + "it had when the write was accepted", code: "CSV_CHANGED")
                return
            }
            headerRead = true
            return
        }
        if record.count == 1 && record[0].isEmpty { return }  // a blank line
        guard record.count == bulk.header.count else {
            counts.processed += 1
            counts.failed += 1
            unreported.append(BulkFailure(
                line: line, primaryKey: record.count > keyIndex ? record[keyIndex] : "",
                error: "line \(line) has \(record.count) fields; the header has \(bulk.header.count)", code: "ROW_INVALID", row: record))
            return
        }
        let key = record[keyIndex]
        if usesJobs {
            let text = Array(CSVFormat.row(jobColumns(record)).utf8)
            if !jobCSV.isEmpty && jobCSV.count + text.count > execution.configuration.bulkJobMaxBytes && !pending.isEmpty {
                try await flush()
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
            if pending.count >= Self.batchChunkRows { try await flush() }
        }
    }

    /// A delete job's CSV holds the record id only.
    func jobColumns(_ fields: [String]) -> [String] {
        request.type == .delete ? [fields[keyIndex]] : fields
    }

    /// Sends the rows read so far to the provider as a chunk, once there is room for it
    /// (`ChunkWindow.mustEnd`).
    mutating func flush() async throws {
        guard !pending.isEmpty else { return }
        if stopped { throw CancellationError() }
        let rows = pending
        let csv = jobCSV
        pending = []
        jobCSV = []
        var keys = Set<String>()
        if inFlight.needsKeys {
            keys.reserveCapacity(rows.count)
            for row in rows { keys.insert(row.key.lowercased()) }
        }
        for _ in 0..<inFlight.mustEnd(before: keys) { try await settleOldest() }
        // The chunk's task holds what writing it needs, not the write's other chunks or refused rows.
        var this = self
        this.inFlight = ChunkWindow(limit: inFlight.limit)
        this.unreported = []
        this.jobIds = []
        inFlight.add(Task { [this] in this.usesJobs ? try await this.salesforceJob(csv, rows: rows) : try await this.batchChunk(rows) },
                     keys: keys)
        // While the next chunk is read, fewer than the limit run (one at a time: none, as the chunk is
        // written before more is read).
        while inFlight.chunks.count >= inFlight.limit { try await settleOldest() }
    }

    /// Waits for the oldest chunk at the provider and counts what became of its rows, then reports
    /// progress when it is time.
    mutating func settleOldest() async throws {
        guard let oldest = inFlight.oldest else { return }
        let result = try await withTaskCancellationHandler { try await oldest.value } onCancel: { oldest.cancel() }
        inFlight.removeOldest()
        counts.processed += result.succeeded + result.failures.count
        counts.succeeded += result.succeeded
        counts.failed += result.failures.count
        counts.calls += result.calls
        if let job = result.jobId { jobIds.append(job) }
        unreported += result.failures
        try await report(final: false)
    }

    /// Publishes the counts and the refused rows not yet published: at the end, every second, or when
    /// enough refused rows wait.
    mutating func report(final: Bool) async throws {
        guard final || unreported.count >= Self.failuresPerMessage || ContinuousClock.now - lastReport >= .seconds(1) else { return }
        lastReport = .now
        var failures = unreported
        unreported = []
        repeat {
            let part = Array(failures.prefix(Self.failuresPerMessage))
            failures.removeFirst(part.count)
            let message = BulkProgressMessage(
                request: request, run: run, processed: counts.processed, succeeded: counts.succeeded, failed: counts.failed,
                total: final && failures.isEmpty && fatal == nil ? counts.processed : nil, jobIds: jobIds, failures: part,
                time: Timestamp.now())
            // A row of the file or a provider's error may hold NUL, which the operations tables cannot store.
            let bytes = try JSONCoding.encode(message).storableJSON()
            let producer = execution.producer
            let key = request.routingKey
            try await untilSucceeded("publishing the progress", logger: logger) {
                try await producer.send(topic: Topics.bulkProgress, key: key, value: bytes)
            }
        } while !failures.isEmpty
    }
}

/// A bulk write's counts so far.
struct BulkCounts {
    var processed = 0
    var succeeded = 0
    var failed = 0
    /// Provider calls made.
    var calls = 0
}

/// Where a bulk write's CSV comes from, as an async sequence of pieces: the `recordsURL` as it downloads,
/// or the stored upload, read from the control database a megabyte at a time.
enum BulkSource: AsyncSequence {
    case download(DownloadPieces)
    case stored(BulkUploads?, operationId: String, logger: Logger)

    struct AsyncIterator: AsyncIteratorProtocol {
        enum Place {
            case download(DownloadPieces.AsyncIterator)
            case stored(BulkUploads?, operationId: String, logger: Logger, offset: Int)
        }
        var place: Place

        mutating func next() async throws -> [UInt8]? {
            switch place {
            case .download(var pieces):
                let piece = try await pieces.next()
                place = .download(pieces)
                return piece
            case .stored(let uploads, let operationId, let logger, let offset):
                guard let piece = try await untilSucceeded("reading the uploaded CSV", logger: logger, {
                    try await uploads?.piece(operationId, from: offset)
                }) else { throw MissingUpload() }
                place = .stored(uploads, operationId: operationId, logger: logger, offset: offset + piece.count)
                return piece.isEmpty ? nil : piece
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        switch self {
        case .download(let pieces): AsyncIterator(place: .download(pieces.makeAsyncIterator()))
        case .stored(let uploads, let operationId, let logger): AsyncIterator(place: .stored(uploads, operationId: operationId, logger: logger, offset: 0))
        }
    }
}

/// The stored upload was removed before the write read it.
struct MissingUpload: Error {
    let error = WriteError(message: "the write's recordsCSV is no longer held", code: "CSV_MISSING")
}

/// A bulk CSV write, as the api accepted it: its rows are in the control database (`recordsCSV`) or
/// at a URL (`recordsURL`), one record per row, each row identified by its `primaryKey` column.
public struct BulkWrite: Codable, Sendable, Equatable {
    /// The column that identifies a row: the provider's external id field for an upsert, its record id
    /// for a delete.
    public var primaryKey: String
    /// The CSV's header, as read when the write was accepted.
    public var header: [String]
    /// Where to read the CSV; nil when it was sent as `recordsCSV` and is held in `bulk_uploads`.
    public var recordsURL: String?
    /// The CSV's size in bytes, where known.
    public var bytes: Int?

    public init(primaryKey: String, header: [String], recordsURL: String?, bytes: Int?) {
        self.primaryKey = primaryKey
        self.header = header
        self.recordsURL = recordsURL
        self.bytes = bytes
    }
}

/// How far a bulk write has come, as the writer publishes it to `bulk-progress` after each chunk of
/// rows: counts so far (not increments, so a repeated message changes nothing), the provider jobs
/// made, and the rows refused since the previous message.
public struct BulkProgressMessage: OperationMessage, Sendable, Equatable {
    public var identity: OperationIdentity
    public var content: Progress

    public struct Progress: Codable, Sendable, Equatable {
        /// Which reading of the CSV this is: a write redelivered after a writer stopped reads it again from
        /// its start, and its counts replace the earlier reading's.
        public var run: Int
        public var processed: Int
        public var succeeded: Int
        public var failed: Int
        /// The number of rows, once the whole CSV has been read.
        public var total: Int?
        /// The provider's job ids so far (Salesforce Bulk API 2.0 ingest jobs).
        public var jobIds: [String]
        public var failures: [BulkFailure]
        public var time: String
    }

    public init(identity: OperationIdentity, content: Progress) {
        self.identity = identity
        self.content = content
    }

    public init(request: WriteRequestMessage, run: Int, processed: Int, succeeded: Int, failed: Int, total: Int?,
                jobIds: [String], failures: [BulkFailure], time: String)
    {
        identity = request.identity
        content = Progress(run: run, processed: processed, succeeded: succeeded, failed: failed, total: total, jobIds: jobIds,
                           failures: failures, time: time)
    }
}

/// A CSV row the provider refused (or that could not be read), to fix and send again.
public struct BulkFailure: Codable, Sendable, Equatable {
    /// The row's line in the CSV (the header is line 1).
    public var line: Int
    public var primaryKey: String
    public var error: String
    public var code: String?
    /// The row's fields, in the header's order.
    public var row: [String]

    public init(line: Int, primaryKey: String, error: String, code: String?, row: [String]) {
        self.line = line
        self.primaryKey = primaryKey
        self.error = error
        self.code = code
        self.row = row
    }
}

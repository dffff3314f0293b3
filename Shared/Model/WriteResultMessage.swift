/// The provider's answer to one write, as the writer publishes it to `write-results`.
public struct WriteResultMessage: OperationMessage, Sendable, Equatable {
    public var identity: OperationIdentity
    public var content: Outcome

    /// What the provider answered.
    public struct Outcome: Codable, Sendable, Equatable {
        public var provider: Provider
        public var mode: WriteMode
        public var success: Bool
        public var recordId: String?
        /// What the provider answered about the record (fields), where it answered with any.
        public var data: [String: JSONValue]?
        /// Why it failed: the provider's own message where there is one.
        public var error: WriteError?
        /// The provider's HTTP status, where it answered.
        public var providerStatus: Int?
        /// The write was sent again after a crash while its first call was in flight, so the provider may
        /// have applied it twice.
        public var possiblyDuplicated: Bool
        /// Provider calls made for this write.
        public var attempts: Int
        public var replyTo: String?
        public var completedAt: String
        /// Microseconds since the epoch when the provider answered: the version of the record's state.
        public var version: Int64
        /// A batch write's result per record, in request order (`success` is then true when every record
        /// succeeded).
        public var results: [BatchItemResult]?
    }

    public init(identity: OperationIdentity, content: Outcome) {
        self.identity = identity
        self.content = content
    }

    public var successCount: Int { content.results?.filter(\.success).count ?? (content.success ? 1 : 0) }
    public var failureCount: Int { content.results?.filter { !$0.success }.count ?? (content.success ? 0 : 1) }

    /// The records the write changed at the provider, each with its fields and its place in a batch.
    public var changedRecords: [(index: Int?, recordId: String, fields: [String: JSONValue])] {
        if let results = content.results {
            return results.enumerated().compactMap { index, item in
                guard item.success, let id = item.recordId else { return nil }
                return (index, id, item.data ?? [:])
            }
        }
        guard content.success, let recordId = content.recordId else { return [] }
        return [(nil, recordId, content.data ?? [:])]
    }

    public init(
        request: WriteRequestMessage, success: Bool, recordId: String?, data: [String: JSONValue]?, error: WriteError?,
        providerStatus: Int?, possiblyDuplicated: Bool, attempts: Int, completedAt: String, version: Int64
    ) {
        identity = request.identity
        content = Outcome(
            provider: request.provider, mode: request.mode, success: success, recordId: recordId, data: data, error: error,
            providerStatus: providerStatus, possiblyDuplicated: possiblyDuplicated, attempts: attempts, replyTo: request.replyTo,
            completedAt: completedAt, version: version)
    }
}

/// One record of a batch write, as the provider answered it.
public struct BatchItemResult: Codable, Sendable, Equatable {
    public var success: Bool
    public var recordId: String?
    public var data: [String: JSONValue]?
    public var error: WriteError?

    public init(success: Bool, recordId: String?, data: [String: JSONValue]?, error: WriteError?) {
        self.success = success
        self.recordId = recordId
        self.data = data
        self.error = error
    }
}

/// A failed write's reason.
public struct WriteError: Codable, Sendable, Equatable, Error {
    /// The provider's own message, or ours where the provider was never reached.
    public var message: String
    /// The provider's error code (e.g. REQUIRED_FIELD_MISSING, VALIDATION_ERROR).
    public var code: String?
    /// The provider's raw response body.
    public var raw: String?
    /// True where the provider never accepted or rejected the write (unreachable, dead-lettered).
    public var deadLettered: Bool
    /// The record that already holds the unique value a create conflicted with (HubSpot 409).
    public var existingRecordId: String?

    public init(message: String, code: String? = nil, raw: String? = nil, deadLettered: Bool = false,
                existingRecordId: String? = nil)
    {
        self.message = message
        self.code = code
        self.raw = raw
        self.deadLettered = deadLettered
        self.existingRecordId = existingRecordId
    }
}

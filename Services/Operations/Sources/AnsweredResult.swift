import Shared

/// What the operations tables keep of a write's result: its identity, the provider's answer, and the
/// record data and per-record results as the JSON text the writer published (they go to jsonb columns
/// as they are), with of each record only what its log line names. Read a member at a time from the
/// message's bytes, so that a batch's records are passed over rather than read into values and written
/// out again.
struct AnsweredResult: Sendable, Equatable {
    /// One record of a batch result, as its log line names it.
    struct Item: Sendable, Equatable {
        var success: Bool
        var recordId: String?
        var error: WriteError?

        init(success: Bool, recordId: String?, error: WriteError?) {
            (self.success, self.recordId, self.error) = (success, recordId, error)
        }

        /// Reads one `BatchItemResult` of a result's `results`, its data checked for form only.
        init(_ scanner: inout JSONScanner) throws {
            var success: Bool?, recordId: String?, error: WriteError?
            try scanner.members(type: "BatchItemResult") { field in
                switch field.key {
                case "success": success = try field.orNil { try $0.bool() }
                case "recordId": recordId = try field.orNil { try $0.string() }
                case "error": error = try field.orNil { try $0.nested(WriteError.self) }
                case "data": _ = try field.orNil { try $0.object() }
                default: break
                }
            }
            self.init(success: try JSONRequired("BatchItemResult")(success, "success"), recordId: recordId, error: error)
        }
    }

    var identity: OperationIdentity
    var provider: Provider
    var mode: WriteMode
    var success: Bool
    var recordId: String?
    /// `data`, an object, as JSON text.
    var data: String?
    /// A bulk result's `data` read into values (its counts, jobs and reading), read once; nil for others.
    var counts: [String: JSONValue]?
    var error: WriteError?
    var providerStatus: Int?
    var possiblyDuplicated: Bool
    var attempts: Int
    var completedAt: String
    /// `results`, a batch's per-record results, as JSON text, and each one's outcome.
    var results: String?
    var items: [Item]?
    /// How many distinct records the write changed at the provider.
    var changed: Int

    var operationId: String { identity.operationId }
    /// The answer to a single-record write (not a batch's, not a bulk write's).
    var isSingle: Bool { mode != .bulk && items == nil }
    var type: WriteType { identity.type }
    var successCount: Int { items?.filter(\.success).count ?? (success ? 1 : 0) }
    var failureCount: Int { items?.filter { !$0.success }.count ?? (success ? 0 : 1) }


    /// The summary of a result in hand.
    init(_ result: WriteResultMessage) {
        identity = result.identity
        provider = result.provider
        mode = result.mode
        success = result.success
        recordId = result.recordId
        data = result.data.flatMap { try? JSONCoding.encodeString($0) }
        counts = result.mode == .bulk ? result.data : nil
        error = result.error
        providerStatus = result.providerStatus
        possiblyDuplicated = result.possiblyDuplicated
        attempts = result.attempts
        completedAt = result.completedAt
        results = result.results.flatMap { try? JSONCoding.encodeString($0) }
        items = result.results?.map { Item(success: $0.success, recordId: $0.recordId, error: $0.error) }
        changed = Set(result.changedRecords.map(\.recordId)).count
    }

    /// Reads a `write-results` message. It refuses what the whole read (`JSONCoding.decode` of a
    /// `WriteResultMessage`) refuses in the members it keeps; a record's data is checked for form only.
    init(message bytes: [UInt8]) throws {
        let type = "WriteResultMessage"
        var members = OperationMembers(time: "completedAt", of: type)
        var success: Bool?, possiblyDuplicated: Bool?, attempts: Int?, version: Int64?, providerStatus: Int?
        var recordId: String?, data: String?, error: WriteError?
        var results: String?, items: [Item]?
        // A null is as good as absent (and, repeated, the last of a key counts, as in the whole read).
        try JSONScanner.members(of: bytes, type: type) { member in
            if try members.read(&member) { return }
            switch member.key {
            case "success": success = try member.orNil { try $0.bool() }
            case "possiblyDuplicated": possiblyDuplicated = try member.orNil { try $0.bool() }
            case "attempts": attempts = try member.orNil { try $0.integer() }
            case "version": version = try member.orNil { try $0.integer() }
            case "providerStatus": providerStatus = try member.orNil { try $0.integer() }
            case "recordId": recordId = try member.orNil { try $0.string() }
            case "replyTo": _ = try member.orNil { try $0.string() }
            case "data": data = try member.orNil { try $0.object() }
            case "error": error = try member.orNil { try $0.nested(WriteError.self) }
            case "results":
                var read: [Item] = []
                results = try member.orNil { list in
                    try list.elements { element in read.append(try Item(&element)) }
                }
                items = results == nil ? nil : read
            default: break
            }
        }
        let required = JSONRequired(type)
        completedAt = try members.time()
        _ = try required(version, "version")
        identity = try members.identity(required)
        provider = try required(members.provider, "provider")
        mode = try required(members.mode, "mode")
        self.success = try required(success, "success")
        self.recordId = recordId
        self.data = data
        counts = self.mode == .bulk ? data.flatMap { try? JSONCoding.decode(JSONValue.self, from: Array($0.utf8)).objectValue } : nil
        self.error = error
        self.providerStatus = providerStatus
        self.possiblyDuplicated = try required(possiblyDuplicated, "possiblyDuplicated")
        self.attempts = try required(attempts, "attempts")
        self.results = results
        self.items = items
        // As `WriteResultMessage.changedRecords` counts them: a batch's records that succeeded with an id,
        // or the single record when the write succeeded.
        if let items {
            changed = Set(items.compactMap { $0.success ? $0.recordId : nil }).count
        } else {
            changed = self.success && recordId != nil ? 1 : 0
        }
    }
}

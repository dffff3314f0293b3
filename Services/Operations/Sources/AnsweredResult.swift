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
    }

    var identity: OperationIdentity
    var provider: Provider
    var mode: WriteMode
    var success: Bool
    var recordId: String?
    /// `data`, an object, as JSON text.
    var data: String?
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
    var type: WriteType { identity.type }
    var successCount: Int { items?.filter(\.success).count ?? (success ? 1 : 0) }
    var failureCount: Int { items?.filter { !$0.success }.count ?? (success ? 0 : 1) }

    /// `data` read into values (a bulk result's counts), nil when absent or unreadable.
    var dataObject: [String: JSONValue]? {
        data.flatMap { try? JSONCoding.decode(JSONValue.self, from: Array($0.utf8)).objectValue }
    }

    /// The summary of a result in hand.
    init(_ result: WriteResultMessage) {
        identity = result.identity
        provider = result.provider
        mode = result.mode
        success = result.success
        recordId = result.recordId
        data = result.data.flatMap { try? JSONCoding.encodeString($0) }
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
        var strings = JSONRequiredStrings(OperationIdentity.stringMembers + ["completedAt"], type: type)
        var writeType: WriteType?, provider: Provider?, mode: WriteMode?
        var success: Bool?, possiblyDuplicated: Bool?, attempts: Int?, version: Int64?, providerStatus: Int?
        var recordId: String?, data: String?, error: WriteError?
        var results: String?, items: [Item]?
        try JSONScanner.members(of: bytes, type: type) { member in
            if try strings.read(&member) { return }
            // A null is as good as absent (and, repeated, the last of a key counts, as in the whole read).
            if try member.null() {
                switch member.key {
                case "type": writeType = nil
                case "provider": provider = nil
                case "mode": mode = nil
                case "success": success = nil
                case "possiblyDuplicated": possiblyDuplicated = nil
                case "attempts": attempts = nil
                case "version": version = nil
                case "providerStatus": providerStatus = nil
                case "recordId": recordId = nil
                case "data": data = nil
                case "error": error = nil
                case "results": (results, items) = (nil, nil)
                default: break
                }
                return
            }
            switch member.key {
            case "type": writeType = try member.raw(WriteType.self)
            case "provider": provider = try member.raw(Provider.self)
            case "mode": mode = try member.raw(WriteMode.self)
            case "success": success = try member.bool()
            case "possiblyDuplicated": possiblyDuplicated = try member.bool()
            case "attempts": attempts = try member.integer()
            case "version": version = try member.integer()
            case "providerStatus": providerStatus = try member.integer()
            case "recordId": recordId = try member.string()
            case "replyTo": _ = try member.string()
            case "data": data = try member.object()
            case "error": error = try member.nested(WriteError.self)
            case "results":
                var read: [Item] = []
                results = try member.elements { element in
                    var item = (success: Bool?.none, recordId: String?.none, error: WriteError?.none)
                    try element.members(type: "BatchItemResult") { field in
                        if try field.null() {
                            switch field.key {
                            case "success": item.success = nil
                            case "recordId": item.recordId = nil
                            case "error": item.error = nil
                            default: break
                            }
                            return
                        }
                        switch field.key {
                        case "success": item.success = try field.bool()
                        case "recordId": item.recordId = try field.string()
                        case "error": item.error = try field.nested(WriteError.self)
                        case "data": _ = try field.object()
                        default: break
                        }
                    }
                    guard let flag = item.success else { throw JSONFieldError(type: "BatchItemResult", key: "success", problem: "is missing") }
                    read.append(Item(success: flag, recordId: item.recordId, error: item.error))
                }
                items = read
            default: break
            }
        }
        let required = JSONRequired(type)
        let values = try strings.all()
        _ = try required(version, "version")
        identity = OperationIdentity(strings: values, type: try required(writeType, "type"))
        self.provider = try required(provider, "provider")
        self.mode = try required(mode, "mode")
        self.success = try required(success, "success")
        self.recordId = recordId
        self.data = data
        self.error = error
        self.providerStatus = providerStatus
        self.possiblyDuplicated = try required(possiblyDuplicated, "possiblyDuplicated")
        self.attempts = try required(attempts, "attempts")
        completedAt = values[6]
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

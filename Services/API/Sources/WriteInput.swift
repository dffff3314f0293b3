import Shared

/// A write request body, checked: every way it can be wrong is a 400 naming the field.
struct WriteInput: Sendable {
    var groupRef: String
    var type: WriteType
    var mode: WriteMode
    var record: [String: JSONValue]
    var recordId: String?
    var associations: JSONValue?
    /// `retryPolicy.deadlineHours`: how long after acceptance a failing write is tried again.
    var retryDeadlineHours: Int?
    /// A batch write's records (then `record` is empty), and `batchPolicy.allOrNone`.
    var batch: [BatchRecord]?
    var allOrNone = false
    /// `autoBatchPolicy.maxDelayMinutes`, in seconds.
    var autoBatchDelaySeconds: Double?

    /// The most records one batch write takes.
    static let maxBatch = 100

    /// `retryPolicy.deadlineHours` of a request, if it has one.
    static func retryPolicyHours(_ object: [String: JSONValue]) throws(Problem) -> Int? {
        guard let policy = object["retryPolicy"], policy != .null else { return nil }
        guard let fields = policy.objectValue else { throw .badRequest("retryPolicy must be an object", name: "retryPolicy") }
        return try hours(fields["deadlineHours"], name: "retryPolicy.deadlineHours")
    }

    /// A retry deadline in whole hours, 1 to 48.
    private static func hours(_ value: JSONValue?, name: String) throws(Problem) -> Int? {
        guard let value, value != .null else { return nil }
        guard case .number(let number) = value, number == number.rounded(), (1...48).contains(number) else {
            throw .badRequest("\(name) must be a whole number of hours from 1 to 48", name: name)
        }
        return Int(number)
    }

    static func parse(_ bytes: [UInt8]) throws(Problem) -> WriteInput {
        try parse(jsonBodyObject(bytes))
    }

    static func parse(_ object: [String: JSONValue]) throws(Problem) -> WriteInput {
        guard let groupRefValue = object["groupRef"] else { throw .badRequest("groupRef is required", name: "groupRef") }
        guard let groupRef = groupRefValue.stringValue, !groupRef.isEmpty else {
            throw .badRequest("groupRef must be a non-empty string", name: "groupRef")
        }
        let type: WriteType
        switch object["type"] {
        case nil, .null: type = .create
        case .string(let text)?:
            guard let known = WriteType(rawValue: text), known != .upsert else {
                throw .badRequest("type '\(text)' is not one of create, update, delete", name: "type")
            }
            type = known
        default: throw .badRequest("type must be one of create, update, delete", name: "type")
        }
        let mode: WriteMode
        switch object["mode"] {
        case nil, .null: mode = .synchronous
        case .string(let text)?:
            guard let known = WriteMode(rawValue: text) else {
                throw .badRequest("mode '\(text)' is not one of synchronous, asynchronous", name: "mode")
            }
            mode = known
        default: throw .badRequest("mode must be one of synchronous, asynchronous", name: "mode")
        }
        var retryDeadlineHours: Int?
        var autoBatchDelaySeconds: Double?
        if let policy = object["autoBatchPolicy"], policy != .null {
            guard let fields = policy.objectValue else { throw .badRequest("autoBatchPolicy must be an object", name: "autoBatchPolicy") }
            guard mode == .asynchronous else {
                throw .badRequest("autoBatchPolicy is for asynchronous writes; send mode asynchronous", name: "autoBatchPolicy")
            }
            guard type != .delete else { throw .badRequest("autoBatchPolicy batches creates and updates", name: "autoBatchPolicy") }
            guard object["batch"] == nil else {
                throw .badRequest("autoBatchPolicy is for single-record writes; send record, not batch", name: "autoBatchPolicy")
            }
            guard case .number(let minutes)? = fields["maxDelayMinutes"], minutes == minutes.rounded(), (1...1440).contains(minutes) else {
                throw .badRequest("autoBatchPolicy.maxDelayMinutes is required: a whole number of minutes from 1 to 1440",
                                  name: "autoBatchPolicy.maxDelayMinutes")
            }
            autoBatchDelaySeconds = minutes * 60
            retryDeadlineHours = try hours(fields["retryDeadlineHours"], name: "autoBatchPolicy.retryDeadlineHours")
        } else {
            retryDeadlineHours = try retryPolicyHours(object)
        }
        if let batchValue = object["batch"], batchValue != .null {
            guard object["record"] == nil else {
                throw .badRequest("send either record (one record) or batch (several), not both", name: "batch")
            }
            guard type != .delete else { throw .badRequest("batch writes create or update records; delete them one by one", name: "type") }
            guard case .array(let entries) = batchValue, (1...maxBatch).contains(entries.count) else {
                throw .badRequest("batch must be an array of 1 to \(maxBatch) entries", name: "batch")
            }
            var records: [BatchRecord] = []
            for (index, entry) in entries.enumerated() {
                guard let fields = entry["record"] else { throw .badRequest("batch[\(index)].record is required", name: "batch[\(index)].record") }
                let (recordId, record) = try checkedRecord(fields, type: type, name: "batch[\(index)].record")
                var associations = entry["associations"]
                if associations == .null { associations = nil }
                if let associations, associations.arrayValue == nil {
                    throw .badRequest("batch[\(index)].associations must be an array", name: "batch[\(index)].associations")
                }
                records.append(BatchRecord(record: record, recordId: recordId, associations: associations))
            }
            var allOrNone = false
            if let policy = object["batchPolicy"], policy != .null {
                guard policy.objectValue != nil, case .bool(let flag) = policy["allOrNone"] ?? .bool(false) else {
                    throw .badRequest("batchPolicy.allOrNone must be true or false", name: "batchPolicy.allOrNone")
                }
                allOrNone = flag
            }
            return WriteInput(
                groupRef: groupRef, type: type, mode: mode, record: [:], recordId: nil, associations: nil,
                retryDeadlineHours: retryDeadlineHours, batch: records, allOrNone: allOrNone)
        }
        if object["batchPolicy"] != nil { throw .badRequest("batchPolicy applies to batch writes only", name: "batchPolicy") }
        guard let recordValue = object["record"] else { throw .badRequest("record is required", name: "record") }
        let (recordId, record) = try checkedRecord(recordValue, type: type, name: "record")
        var associations = object["associations"]
        if associations == .null { associations = nil }
        if let associations {
            guard case .array = associations else { throw .badRequest("associations must be an array", name: "associations") }
        }
        return WriteInput(
            groupRef: groupRef, type: type, mode: mode, record: type == .delete ? [:] : record, recordId: recordId,
            associations: associations, retryDeadlineHours: retryDeadlineHours, autoBatchDelaySeconds: autoBatchDelaySeconds)
    }

    /// A record's id (required to update or delete, refused on create) and its other fields.
    private static func checkedRecord(_ value: JSONValue, type: WriteType, name: String) throws(Problem)
        -> (String?, [String: JSONValue])
    {
        guard var record = value.objectValue else { throw .badRequest("\(name) must be a JSON object", name: name) }
        let idValue = record["id"] ?? record["Id"]
        let recordId = idValue?.scalarText.flatMap { $0.isEmpty ? nil : $0 }
        if idValue != nil && recordId == nil {
            throw .badRequest("\(name).id must be a non-empty string", name: "\(name).id")
        }
        if type != .create && recordId == nil {
            throw .badRequest("\(type.rawValue) needs the provider's record id in \(name).id", name: "\(name).id")
        }
        if type == .create && recordId != nil {
            throw .badRequest("create takes no \(name).id; the provider assigns it (use update to change a record)",
                              name: "\(name).id")
        }
        record["id"] = nil
        record["Id"] = nil
        if type == .update && record.isEmpty {
            throw .badRequest("update needs at least one field besides the id", name: name)
        }
        return (recordId, record)
    }
}

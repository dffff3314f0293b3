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

    static func parse(_ bytes: [UInt8]) throws(Problem) -> WriteInput {
        guard !bytes.isEmpty else { throw .badRequest("the request body is empty; send a JSON object", name: "body") }
        let body: JSONValue
        do {
            body = try JSONCoding.decode(JSONValue.self, from: bytes)
        } catch {
            throw .badRequest("the request body is not valid JSON", name: "body")
        }
        guard let object = body.objectValue else { throw .badRequest("the request body must be a JSON object", name: "body") }
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
        if object["batch"] != nil {
            throw .badRequest("batch writes are not served yet; send one record in `record`", name: "batch")
        }
        if object["autoBatchPolicy"] != nil {
            throw .badRequest("autoBatchPolicy is not served yet; send the write without it", name: "autoBatchPolicy")
        }
        var retryDeadlineHours: Int?
        if let policy = object["retryPolicy"], policy != .null {
            guard let fields = policy.objectValue else { throw .badRequest("retryPolicy must be an object", name: "retryPolicy") }
            if let hours = fields["deadlineHours"], hours != .null {
                guard case .number(let number) = hours, number == number.rounded(), (1...48).contains(number) else {
                    throw .badRequest("retryPolicy.deadlineHours must be a whole number of hours from 1 to 48",
                                      name: "retryPolicy.deadlineHours")
                }
                retryDeadlineHours = Int(number)
            }
        }
        guard let recordValue = object["record"] else { throw .badRequest("record is required", name: "record") }
        guard var record = recordValue.objectValue else { throw .badRequest("record must be a JSON object", name: "record") }
        let idValue = record["id"] ?? record["Id"]
        let recordId = idValue?.scalarText.flatMap { $0.isEmpty ? nil : $0 }
        if idValue != nil && recordId == nil {
            throw .badRequest("record.id must be a non-empty string", name: "record.id")
        }
        if type != .create && recordId == nil {
            throw .badRequest("\(type.rawValue) needs the provider's record id in record.id", name: "record.id")
        }
        if type == .create && recordId != nil {
            throw .badRequest("create takes no record.id; the provider assigns it (use update to change a record)",
                              name: "record.id")
        }
        record["id"] = nil
        record["Id"] = nil
        if type == .update && record.isEmpty {
            throw .badRequest("update needs at least one field besides the id", name: "record")
        }
        var associations = object["associations"]
        if associations == .null { associations = nil }
        if let associations {
            guard case .array = associations else { throw .badRequest("associations must be an array", name: "associations") }
        }
        return WriteInput(
            groupRef: groupRef, type: type, mode: mode, record: type == .delete ? [:] : record, recordId: recordId,
            associations: associations, retryDeadlineHours: retryDeadlineHours)
    }
}

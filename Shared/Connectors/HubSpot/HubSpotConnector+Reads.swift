import HTTPClient
import Shared

/// Reads of CRM objects (`GET /crm/v3/objects/{type}[/{id}]`, `POST …/search`) and their properties
/// (`GET /crm/v3/properties/{type}`).
extension HubSpotConnector {
    private func headers(_ connection: Connection, json: Bool = false) -> [(String, String)] {
        authorized([("Accept", "application/json")] + (json ? [("Content-Type", "application/json")] : []), connection: connection)
    }

    func read(_ read: RecordRead, connection: Connection, allFields: @Sendable () async -> [String]) async -> ProviderAnswer<JSONValue> {
        let request: HTTPRequest
        switch read {
        case .get(let object, let id, let fields):
            let query = fields.isEmpty ? [] : [("properties", fields.joined(separator: ","))]
            request = HTTPRequest(method: "GET", url: "\(connection.baseURL)/crm/v3/objects/\(object)/\(pathSegment(id))" + queryText(query),
                                  headers: headers(connection), timeout: timeout)
        case .list(let object, let fields, let limit, let after):
            var query: [(String, String)] = fields.isEmpty ? [] : [("properties", fields.joined(separator: ","))]
            query.append(("limit", String(limit)))
            if let after { query.append(("after", after)) }
            request = HTTPRequest(method: "GET", url: "\(connection.baseURL)/crm/v3/objects/\(object)" + queryText(query),
                                  headers: headers(connection), timeout: timeout)
        case .search(let object, let equals, let fields, let limit, let after):
            let filters: [JSONValue] = equals.map {
                ["propertyName": .string($0.field), "operator": "EQ", "value": .string($0.value.scalarText ?? "")]
            }
            var body: [String: JSONValue] = ["limit": .number(Double(limit)), "filterGroups": [["filters": .array(filters)]]]
            if !fields.isEmpty { body["properties"] = .array(fields.map { .string($0) }) }
            if let after { body["after"] = .string(after) }
            request = HTTPRequest(method: "POST", url: "\(connection.baseURL)/crm/v3/objects/\(object)/search",
                                  headers: headers(connection, json: true), body: jsonBody(body), timeout: timeout)
        }
        return await answer(request) { $0 }
    }

    func records(in answer: JSONValue) -> (records: [RecordSummary], cursor: String?) {
        ((answer["results"]?.arrayValue ?? []).map(record), answer["paging"]?["next"]?["after"]?.scalarText)
    }

    func record(_ answer: JSONValue) -> RecordSummary {
        RecordSummary(id: answer["id"]?.scalarText ?? "", fields: answer["properties"]?.objectValue ?? [:],
                      createdTime: answer["createdAt"], updatedTime: answer["updatedAt"])
    }

    /// HubSpot's object: `{id, properties, createdAt, updatedAt, archived}`, or `{id, archived}` for a delete.
    func nativeAnswer(_ type: WriteType, recordId: String, data: [String: JSONValue]) -> JSONValue {
        let now = JSONValue.string(Timestamp.now())
        switch type {
        case .create: return ["id": .string(recordId), "properties": .object(data), "createdAt": now, "updatedAt": now, "archived": false]
        case .update, .upsert: return ["id": .string(recordId), "properties": .object(data), "updatedAt": now, "archived": false]
        case .delete: return ["id": .string(recordId), "archived": true]
        }
    }

    func describe(_ object: String, connection: Connection) async -> ProviderAnswer<ObjectMetadata> {
        let request = HTTPRequest(method: "GET", url: "\(connection.baseURL)/crm/v3/properties/\(object)", headers: headers(connection),
                                  timeout: timeout)
        return await answer(request) { body in
            var fields: [String: FieldMetadata] = [:]
            for property in body["results"]?.arrayValue ?? [] {
                guard let name = property["name"]?.stringValue else { continue }
                let type = property["type"]?.stringValue ?? "string"
                fields[name] = FieldMetadata(
                    fieldName: name, displayName: property["label"]?.stringValue ?? name, providerType: type,
                    valueType: Self.valueType(type, fieldType: property["fieldType"]?.stringValue ?? ""),
                    readOnly: property["modificationMetadata"]?["readOnlyValue"] == .bool(true),
                    isCustom: property["hubspotDefined"] != .bool(true), isRequired: false, values: FieldValue.options(property["options"], value: "value"))
            }
            return ObjectMetadata(displayName: object, fields: fields)
        }
    }

    static func valueType(_ type: String, fieldType: String) -> String {
        switch (type, fieldType) {
        case ("bool", _), (_, "booleancheckbox"): return "boolean"
        case ("enumeration", "checkbox"): return "multiSelect"
        case ("enumeration", _): return "singleSelect"
        case ("date", _): return "date"
        case ("datetime", _): return "datetime"
        case ("number", _): return "float"
        case ("string", _), ("phone_number", _): return "string"
        default: return "other"
        }
    }
}

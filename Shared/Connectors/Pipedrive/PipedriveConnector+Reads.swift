import HTTPClient
import Shared

/// Reads of items (`GET /api/v2/{type}[/{id}]`, `GET …/search`) and their fields (`GET /api/v2/personFields`,
/// `organizationFields`, `dealFields`).
extension PipedriveConnector {
    func read(_ read: RecordRead, connection: Connection, allFields: @Sendable () async -> [String]) async -> ProviderAnswer<JSONValue> {
        let url: String
        switch read {
        case .get(let object, let id, _):
            url = "\(connection.baseURL)/api/v2/\(object)/\(pathSegment(id))"
        case .list(let object, _, let limit, let after):
            var query = [("limit", String(min(500, limit)))]
            if let after { query.append(("cursor", after)) }
            url = "\(connection.baseURL)/api/v2/\(object)" + queryText(query)
        case .search(let object, let equals, _, let limit, let after):
            // Pipedrive searches one term; the first filter is the term, in the field it names.
            let first = equals.first
            let field = ["email", "phone", "name"].contains(first?.field ?? "") ? first!.field : "custom_fields"
            var query = [("term", first?.value.scalarText ?? ""), ("fields", field), ("exact_match", "true"), ("limit", String(min(500, limit)))]
            if let after { query.append(("cursor", after)) }
            url = "\(connection.baseURL)/api/v2/\(object)/search" + queryText(query)
        }
        return await answer(HTTPRequest(method: "GET", url: url, headers: headers(connection), timeout: timeout)) { $0 }
    }

    /// A list answers `data: [item]`, a search `data: {items: [{item}]}`; the cursor is
    /// `additional_data.next_cursor`.
    func records(in answer: JSONValue) -> (records: [RecordSummary], cursor: String?) {
        let items = answer["data"]?.arrayValue ?? (answer["data"]?["items"]?.arrayValue ?? []).compactMap { $0["item"] }
        return (items.map(summary), answer["additional_data"]?["next_cursor"]?.stringValue)
    }

    func record(_ answer: JSONValue) -> RecordSummary { summary(answer["data"] ?? answer) }

    private func summary(_ item: JSONValue) -> RecordSummary {
        RecordSummary(id: item["id"]?.scalarText ?? "", fields: Self.flattened(item.objectValue ?? [:]), createdTime: item["add_time"],
                      updatedTime: item["update_time"])
    }

    /// Pipedrive's own answer: `{success: true, data: {id, …}}`.
    func nativeAnswer(_ type: WriteType, recordId: String, data: [String: JSONValue]) -> JSONValue {
        var item = data
        item["id"] = .number(Double(recordId) ?? 0)
        return ["success": true, "data": type == .delete ? ["id": .number(Double(recordId) ?? 0)] : .object(item)]
    }

    func describe(_ object: String, connection: Connection) async -> ProviderAnswer<ObjectMetadata> {
        guard let path = PipedriveProfile.fieldsPaths[object] else {
            return .refused(status: 404, body: ["success": false, "error": .string("Unknown item type \(object)")], rateLimited: false)
        }
        let request = HTTPRequest(method: "GET", url: "\(connection.baseURL)/api/v2/\(path)", headers: headers(connection), timeout: timeout)
        return await answer(request) { body in
            var fields: [String: FieldMetadata] = [:]
            for field in body["data"]?.arrayValue ?? [] {
                guard let code = field["field_code"]?.stringValue else { continue }
                let type = field["field_type"]?.stringValue ?? "varchar"
                fields[code] = FieldMetadata(
                    fieldName: code, displayName: field["field_name"]?.stringValue ?? code, providerType: type,
                    valueType: Self.valueType(type), readOnly: false, isCustom: field["is_custom_field"] == .bool(true),
                    isRequired: field["required_fields"]?["enabled"] == .bool(true), values: FieldValue.options(field["options"], value: "id"))
            }
            // The primary email and phone can be written as plain values (`email`, `phone`), as a CSV column holds them.
            for (list, single, label) in [("emails", "email", "Primary email"), ("phones", "phone", "Primary phone")] where fields[list] != nil {
                fields[single] = FieldMetadata(fieldName: single, displayName: label, providerType: "varchar", valueType: "string",
                                               readOnly: false, isCustom: false, isRequired: false)
            }
            return ObjectMetadata(displayName: PipedriveProfile.displayNames[object] ?? object, fields: fields)
        }
    }

    static func valueType(_ type: String) -> String {
        switch type {
        case "enum", "status": return "singleSelect"
        case "set": return "multiSelect"
        case "date": return "date"
        case "int", "double", "monetary": return "float"
        case "user", "org", "people", "stage": return "reference"
        case "varchar", "text", "varchar_auto", "phone", "address": return "string"
        default: return "other"
        }
    }
}

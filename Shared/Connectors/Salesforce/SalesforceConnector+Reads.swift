import HTTPClient
import Shared

/// Reads by id (`GET /sobjects/{SObject}/{id}`), lists and searches by SOQL (`GET /query?q=`), and
/// `describe` for an object's fields.
extension SalesforceConnector {
    private func data(_ connection: Connection) -> String { "\(connection.baseURL)/services/data/\(Self.apiVersion)" }

    private func headers(_ connection: Connection) -> [(String, String)] {
        authorized([("Accept", "application/json")], connection: connection)
    }

    func read(_ read: RecordRead, connection: Connection, allFields: @Sendable () async -> [String]) async -> ProviderAnswer<JSONValue> {
        let object: String, wanted: [String], limit: Int
        var equals: [(field: String, value: JSONValue)] = []
        switch read {
        case .get(let name, let id, let fields):
            let query = fields.isEmpty ? [] : [("fields", fields.joined(separator: ","))]
            let url = "\(data(connection))/sobjects/\(name)/\(pathSegment(id))" + queryText(query)
            return await answer(HTTPRequest(method: "GET", url: url, headers: headers(connection), timeout: timeout), limited: isLimited) { $0 }
        case .list(let name, let fields, let count, _):
            (object, wanted, limit) = (name, fields, count)
        case .search(let name, let filters, let fields, let count, _):
            (object, wanted, limit, equals) = (name, fields, count, filters)
        }
        var fields = wanted.isEmpty ? await allFields() : wanted
        fields = ["Id"] + fields.filter { $0.lowercased() != "id" }
        var soql = "SELECT \(fields.joined(separator: ", ")) FROM \(object)"
        if !equals.isEmpty {
            soql += " WHERE " + equals.map { "\($0.field) = \(Self.soqlLiteral($0.value))" }.joined(separator: " AND ")
        }
        soql += " LIMIT \(limit)"
        let url = "\(data(connection))/query" + queryText([("q", soql)])
        return await answer(HTTPRequest(method: "GET", url: url, headers: headers(connection), timeout: timeout), limited: isLimited) { $0 }
    }

    /// Salesforce answers its limit with 403 REQUEST_LIMIT_EXCEEDED.
    private func isLimited(_ response: HTTPResponse) -> Bool {
        response.status == 429 || (response.status == 403 && response.text.contains("REQUEST_LIMIT_EXCEEDED"))
    }

    /// A SOQL literal: booleans and numbers bare, text quoted with `\` and `'` escaped.
    static func soqlLiteral(_ value: JSONValue) -> String {
        switch value {
        case .bool, .number: return value.scalarText ?? "null"
        default:
            let text = (value.scalarText ?? "").replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "'", with: "\\'")
            return "'\(text)'"
        }
    }

    func records(in answer: JSONValue) -> (records: [RecordSummary], cursor: String?) {
        ((answer["records"]?.arrayValue ?? []).map(record), nil)
    }

    func record(_ answer: JSONValue) -> RecordSummary {
        var fields = answer.objectValue ?? [:]
        fields["attributes"] = nil
        let created = fields["CreatedDate"].flatMap { $0 == .null ? nil : $0 }
        let updated = fields["LastModifiedDate"].flatMap { $0 == .null ? nil : $0 }
        return RecordSummary(id: fields["Id"]?.scalarText ?? "", fields: fields, createdTime: created, updatedTime: updated)
    }

    func nativeAnswer(_ type: WriteType, recordId: String, data: [String: JSONValue]) -> JSONValue {
        ["id": .string(recordId), "success": true, "errors": []]
    }

    /// `GET /sobjects/{SObject}/describe`.
    func describe(_ object: String, connection: Connection) async -> ProviderAnswer<ObjectMetadata> {
        let request = HTTPRequest(method: "GET", url: "\(data(connection))/sobjects/\(object)/describe", headers: headers(connection),
                                  timeout: timeout)
        return await answer(request, limited: isLimited) { body in
            var fields: [String: FieldMetadata] = [:]
            for field in body["fields"]?.arrayValue ?? [] {
                guard let name = field["name"]?.stringValue else { continue }
                let type = field["type"]?.stringValue ?? "string"
                let references = (field["referenceTo"]?.arrayValue ?? []).compactMap(\.stringValue)
                fields[name] = FieldMetadata(
                    fieldName: name, displayName: field["label"]?.stringValue ?? name, providerType: type,
                    valueType: Self.valueType(type),
                    readOnly: field["createable"] == .bool(false) && field["updateable"] == .bool(false),
                    isCustom: field["custom"].map { $0 == .bool(true) } ?? name.hasSuffix("__c"),
                    isRequired: field["nillable"] == .bool(false) && field["defaultedOnCreate"] != .bool(true)
                        && field["createable"] == .bool(true),
                    values: FieldValue.options(field["picklistValues"], value: "value"), referenceTo: references.isEmpty ? nil : references)
            }
            return ObjectMetadata(displayName: body["label"]?.stringValue ?? object, fields: fields)
        }
    }

    static func valueType(_ type: String) -> String {
        switch type {
        case "boolean": return "boolean"
        case "picklist": return "singleSelect"
        case "multipicklist": return "multiSelect"
        case "date": return "date"
        case "datetime": return "datetime"
        case "int": return "int"
        case "double", "currency", "percent": return "float"
        case "reference": return "reference"
        case "string", "textarea", "email", "phone", "url", "id": return "string"
        default: return "other"
        }
    }
}

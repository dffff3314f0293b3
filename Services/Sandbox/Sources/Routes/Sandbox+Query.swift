import Foundation
import Hummingbird
import Shared

/// Finding records: Salesforce SOQL (`GET /services/data/vXX.X/query?q=`, the subset `SELECT fields FROM
/// Object [WHERE field = 'v' | field IN ('a', …) [AND …]] [LIMIT n]`) and HubSpot's CRM search
/// (`POST /crm/v3/objects/{type}/search`, filter groups of EQ, NEQ, IN, HAS_PROPERTY, NOT_HAS_PROPERTY).
extension Sandbox {
    func addQueryRoutes(to router: Router<BasicRequestContext>) {
        router.get("services/data/:version/query") { request, context in
            let text = request.uri.queryParameters.get("q") ?? ""
            return try await self.salesforce(request, context, object: "query", recordId: nil, body: nil, method: "GET") { state in
                guard let query = SOQLQuery(text) else {
                    return (400, [SalesforceError(message: "unexpected token in query: \(text)", errorCode: "MALFORMED_QUERY")], nil)
                }
                let version = context.parameters.get("version") ?? "v60.0"
                var records: [JSONValue] = []
                for (id, record) in state.salesforce.sorted(by: { $0.key < $1.key })
                where !record.deleted && record.object.lowercased() == query.object.lowercased() && query.matches(id, record.fields) {
                    var row: [String: JSONValue] = [
                        "attributes": ["type": .string(record.object), "url": .string("/services/data/\(version)/sobjects/\(record.object)/\(id)")],
                    ]
                    for field in query.fields {
                        row[field] = field.lowercased() == "id" ? .string(id) : query.value(field, in: record.fields) ?? .null
                    }
                    records.append(.object(row))
                    if let limit = query.limit, records.count >= limit { break }
                }
                let answer: JSONValue = ["totalSize": .number(Double(records.count)), "done": true, "records": .array(records)]
                return (200, answer, nil)
            }
        }
        router.post("crm/v3/objects/:type/search") { request, context in
            var request = request
            let body = await jsonBody(&request)
            return try await self.hubspot(request, type: context.parameters.get("type") ?? "", id: nil, body: body, method: "POST") {
                state, type in
                let groups = body?["filterGroups"]?.items ?? []
                let limit = min(200, Int(body?["limit"]?.scalarText ?? "") ?? 10)
                let after = Int(body?["after"]?.scalarText ?? "") ?? 0
                let wanted = body?["properties"]?.arrayValue?.compactMap(\.stringValue)
                let found = (state.hubspot[type] ?? [:]).filter { id, object in
                    !object.archived && (groups.isEmpty || groups.contains { group in
                        (group["filters"]?.items ?? []).allSatisfy { Self.matches($0, id: id, object.properties) }
                    })
                }.sorted { (Int($0.key) ?? 0) < (Int($1.key) ?? 0) }
                let page = found.dropFirst(after).prefix(limit)
                let results: [JSONValue] = page.map { id, object in
                    var properties = object.properties
                    if let wanted { properties = properties.filter { wanted.contains($0.key) } }
                    properties["hs_object_id"] = .string(id)
                    return ["id": .string(id), "properties": .object(properties), "createdAt": .string(object.createdAt),
                            "updatedAt": .string(object.updatedAt), "archived": false]
                }
                var answer: [String: JSONValue] = ["total": .number(Double(found.count)), "results": .array(results)]
                if after + limit < found.count { answer["paging"] = ["next": ["after": .string(String(after + limit))]] }
                return (200, JSONValue.object(answer), nil)
            }
        }
    }

    /// One HubSpot search filter against an object's properties (string values compare without case).
    static func matches(_ filter: JSONValue, id: String, _ properties: [String: JSONValue]) -> Bool {
        guard let name = filter["propertyName"]?.stringValue else { return false }
        let value = name == "hs_object_id" ? id : properties[name]?.scalarText
        let wanted = (filter["values"]?.arrayValue?.compactMap(\.scalarText) ?? []) + [filter["value"]?.scalarText].compactMap { $0 }
        switch filter["operator"]?.stringValue ?? "EQ" {
        case "EQ": return value.map { text in wanted.contains { $0.lowercased() == text.lowercased() } } ?? false
        case "NEQ": return !(value.map { text in wanted.contains { $0.lowercased() == text.lowercased() } } ?? false)
        case "IN": return value.map { text in wanted.contains { $0.lowercased() == text.lowercased() } } ?? false
        case "NOT_IN": return !(value.map { text in wanted.contains { $0.lowercased() == text.lowercased() } } ?? false)
        case "HAS_PROPERTY": return !(value ?? "").isEmpty
        case "NOT_HAS_PROPERTY": return (value ?? "").isEmpty
        default: return false
        }
    }
}

/// The SOQL this sandbox answers.
struct SOQLQuery {
    var fields: [String]
    var object: String
    /// Each condition: a field and the values any of which it must equal (nil: `= null`).
    var conditions: [(field: String, values: [String]?)]
    var limit: Int?

    init?(_ text: String) {
        var scanner = SOQLScanner(text)
        guard scanner.keyword("SELECT") else { return nil }
        var fields: [String] = []
        repeat {
            guard let field = scanner.identifier() else { return nil }
            fields.append(field)
        } while scanner.symbol(",")
        guard scanner.keyword("FROM"), let object = scanner.identifier() else { return nil }
        var conditions: [(String, [String]?)] = []
        if scanner.keyword("WHERE") {
            repeat {
                guard let field = scanner.identifier() else { return nil }
                if scanner.symbol("=") {
                    if scanner.keyword("null") {
                        conditions.append((field, nil))
                    } else {
                        guard let value = scanner.literal() else { return nil }
                        conditions.append((field, [value]))
                    }
                } else if scanner.keyword("IN"), scanner.symbol("(") {
                    var values: [String] = []
                    repeat {
                        guard let value = scanner.literal() else { return nil }
                        values.append(value)
                    } while scanner.symbol(",")
                    guard scanner.symbol(")") else { return nil }
                    conditions.append((field, values))
                } else {
                    return nil
                }
            } while scanner.keyword("AND")
        }
        var limit: Int?
        if scanner.keyword("LIMIT") {
            guard let text = scanner.identifier(), let number = Int(text) else { return nil }
            limit = number
        }
        guard scanner.atEnd else { return nil }
        self.fields = fields
        self.object = object
        self.conditions = conditions
        self.limit = limit
    }

    /// A field's value, its name compared without case as Salesforce does.
    func value(_ field: String, in fields: [String: JSONValue]) -> JSONValue? {
        fields.first { $0.key.lowercased() == field.lowercased() }?.value
    }

    func matches(_ id: String, _ fields: [String: JSONValue]) -> Bool {
        conditions.allSatisfy { condition in
            let text = condition.field.lowercased() == "id" ? id : value(condition.field, in: fields)?.scalarText
            guard let values = condition.values else { return text == nil }
            return text.map { text in values.contains { $0.lowercased() == text.lowercased() } } ?? false
        }
    }
}

struct SOQLScanner {
    private let characters: [Character]
    private var index = 0

    init(_ text: String) { characters = Array(text) }

    var atEnd: Bool {
        mutating get {
            skipSpaces()
            return index == characters.count
        }
    }

    private mutating func skipSpaces() {
        while index < characters.count, characters[index].isWhitespace { index += 1 }
    }

    mutating func keyword(_ word: String) -> Bool {
        skipSpaces()
        let end = index + word.count
        guard end <= characters.count, String(characters[index..<end]).lowercased() == word.lowercased(),
              end == characters.count || !(characters[end].isLetter || characters[end].isNumber || characters[end] == "_")
        else { return false }
        index = end
        return true
    }

    mutating func symbol(_ symbol: Character) -> Bool {
        skipSpaces()
        guard index < characters.count, characters[index] == symbol else { return false }
        index += 1
        return true
    }

    mutating func identifier() -> String? {
        skipSpaces()
        let start = index
        while index < characters.count, characters[index].isLetter || characters[index].isNumber || "_.".contains(characters[index]) {
            index += 1
        }
        return index > start ? String(characters[start..<index]) : nil
    }

    /// A quoted string with `\'` and `\\` escapes, or a bare number or boolean.
    mutating func literal() -> String? {
        skipSpaces()
        guard index < characters.count else { return nil }
        if characters[index] != "'" {
            guard let bare = identifier(), bare.lowercased() == "true" || bare.lowercased() == "false" || Double(bare) != nil else { return nil }
            return bare.lowercased()
        }
        index += 1
        var text = ""
        while index < characters.count {
            let character = characters[index]
            index += 1
            if character == "\\", index < characters.count {
                text.append(characters[index])
                index += 1
            } else if character == "'" {
                return text
            } else {
                text.append(character)
            }
        }
        return nil
    }
}

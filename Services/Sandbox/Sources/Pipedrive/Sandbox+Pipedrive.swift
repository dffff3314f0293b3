import Foundation
import Hummingbird
import Shared

/// Pipedrive's API v2 for persons, organizations and deals (`/api/v2/{type}`: add, list with a cursor,
/// get, update, delete, search), their fields (`/api/v2/personFields`, …), and its OAuth server
/// (`/pipedrive-oauth/oauth/authorize`, `/pipedrive-oauth/oauth/token`, standing for
/// oauth.pipedrive.com). Calls authenticate with `x-api-token`, `?api_token=` or an OAuth bearer token.
extension Sandbox {
    static let pipedriveTypes = ["persons": "Person", "organizations": "Organization", "deals": "Deal"]

    func addPipedriveRoutes(to router: Router<BasicRequestContext>) {
        let api = router.group("api/v2")
        for (type, noun) in Self.pipedriveTypes {
            api.post(RouterPath(stringLiteral: type)) { request, _ in
                var request = request
                let body = await jsonBody(&request)
                return try await self.pipedrive(request, type: type, id: nil, body: body, method: "POST") { store in
                    let fields = body?.objectValue ?? [:]
                    if let problem = PipedriveStore.problem(fields, type: type, creating: true) { return Self.pipedriveError(400, problem) }
                    let (id, item) = store.create(type, fields)
                    return (200, Self.pipedriveData(PipedriveStore.json(id, item)), String(id))
                }
            }
            api.get(RouterPath(stringLiteral: type)) { request, _ in
                try await self.pipedrive(request, type: type, id: nil, body: nil, method: "GET") { store in
                    let query = request.uri.queryParameters
                    let limit = max(1, min(500, Int(query.get("limit") ?? "") ?? 100))
                    let after = Int(query.get("cursor") ?? "") ?? 0
                    let all = (store.items[type] ?? [:]).sorted { $0.key < $1.key }.filter { $0.key > after }
                    let page = all.prefix(limit)
                    var additional: [String: JSONValue] = ["next_cursor": .null]
                    if all.count > limit, let last = page.last { additional["next_cursor"] = .string(String(last.key)) }
                    let answer: JSONValue = ["success": true, "data": .array(page.map { PipedriveStore.json($0.key, $0.value) }),
                                             "additional_data": .object(additional)]
                    return (200, answer, nil)
                }
            }
            api.get(RouterPath(stringLiteral: "\(type)/search")) { request, _ in
                try await self.pipedrive(request, type: type, id: nil, body: nil, method: "GET") { store in
                    let query = request.uri.queryParameters
                    guard let term = query.get("term"), !term.isEmpty else { return Self.pipedriveError(400, "term is required") }
                    let fields = (query.get("fields") ?? "name,email,custom_fields").split(separator: ",").map(String.init)
                    let items: [JSONValue] = store.search(type, term: term, fields: fields).map { id, item in
                        var found: [String: JSONValue] = ["id": .number(Double(id)), "type": .string(String(type.dropLast()))]
                        found["name"] = item.fields["name"] ?? item.fields["title"] ?? .null
                        found["emails"] = .array((item.fields["emails"]?.arrayValue ?? []).compactMap { $0["value"] })
                        found["custom_fields"] = .array((item.fields["custom_fields"]?.objectValue ?? [:]).values.map { $0 })
                        return ["result_score": 1, "item": .object(found)]
                    }
                    let answer: JSONValue = ["success": true, "data": ["items": .array(items)], "additional_data": ["next_cursor": .null]]
                    return (200, answer, nil)
                }
            }
            for method in [HTTPRequest.Method.get, .patch, .delete] {
                api.on(RouterPath(stringLiteral: "\(type)/:id"), method: method) { request, context in
                    var request = request
                    let body = method == .patch ? await jsonBody(&request) : nil
                    let text = context.parameters.get("id") ?? ""
                    return try await self.pipedrive(request, type: type, id: text, body: body, method: method.rawValue) { store in
                        guard let id = Int(text) else { return Self.pipedriveError(400, "Validation failed: id: must be an integer") }
                        switch method {
                        case .patch:
                            let fields = body?.objectValue ?? [:]
                            if let problem = PipedriveStore.problem(fields, type: type, creating: false) {
                                return Self.pipedriveError(400, problem)
                            }
                            guard let item = store.update(type, id, fields) else { return Self.pipedriveError(404, "\(noun) not found") }
                            return (200, Self.pipedriveData(PipedriveStore.json(id, item)), nil)
                        case .delete:
                            guard store.delete(type, id) else { return Self.pipedriveError(404, "\(noun) not found") }
                            return (200, Self.pipedriveData(["id": .number(Double(id))]), nil)
                        default:
                            guard let item = store.items[type]?[id] else { return Self.pipedriveError(404, "\(noun) not found") }
                            return (200, Self.pipedriveData(PipedriveStore.json(id, item)), nil)
                        }
                    }
                }
            }
        }
        for (type, path) in [("persons", "personFields"), ("organizations", "organizationFields"), ("deals", "dealFields")] {
            api.get(RouterPath(stringLiteral: path)) { request, _ in
                try await self.pipedrive(request, type: type, id: nil, body: nil, method: "GET") { _ in
                    (200, JSONValue.object(["success": true, "data": .array(Self.pipedriveFields(type))]), nil)
                }
            }
        }
        addPipedriveOAuthRoutes(to: router)
    }

    /// A call on a type's items: through the gate, then `answer` under the state's lock.
    func pipedrive(
        _ request: Request, type: String, id: String?, body: JSONValue?, method: String,
        answer: @escaping (inout PipedriveStore) -> (Int, any Encodable, String?)
    ) async throws -> Response {
        try await answerCall(request, provider: "pipedrive", object: type, recordId: id, body: body, method: method) { _ in
            state.withLock { answer(&$0.pipedrive) }
        }
    }

    static func pipedriveData(_ data: JSONValue) -> JSONValue { ["success": true, "data": data] }

    /// Pipedrive's error body: `{success: false, error, error_info, data: null}`.
    static func pipedriveError(_ status: Int, _ message: String) -> (Int, any Encodable, String?) {
        (status, pipedriveErrorBody(message), nil)
    }

    static func pipedriveErrorBody(_ message: String, code: String? = nil) -> JSONValue {
        var body: [String: JSONValue] = [
            "success": false, "error": .string(message),
            "error_info": "Please check developers.pipedrive.com for more information about Pipedrive API.", "data": .null,
            "additional_data": .null,
        ]
        if let code { body["code"] = .string(code) }
        return .object(body)
    }

    /// A type's fields as `/api/v2/{type}Fields` lists them.
    static func pipedriveFields(_ type: String) -> [JSONValue] {
        let labels: [String: String] = [
            "name": "Name", "title": "Title", "owner_id": "Owner", "org_id": "Organization", "person_id": "Contact person",
            "emails": "Email", "phones": "Phone", "value": "Value", "currency": "Currency", "stage_id": "Stage", "status": "Status",
            "address": "Address", "expected_close_date": "Expected close date",
        ]
        let types: [String: String] = [
            "owner_id": "user", "org_id": "org", "person_id": "people", "emails": "varchar", "phones": "phone", "value": "monetary",
            "stage_id": "stage", "status": "status", "address": "address", "expected_close_date": "date",
        ]
        let standard = (PipedriveStore.standardFields[type]?.fields ?? []).filter { labels[$0] != nil }.sorted().map { code -> JSONValue in
            ["field_name": .string(labels[code] ?? code), "field_code": .string(code), "field_type": .string(types[code] ?? "varchar"),
             "is_custom_field": false, "is_optional_response_field": false, "options": .null,
             "required_fields": ["enabled": .bool(code == PipedriveStore.standardFields[type]?.required)]]
        }
        let custom = (PipedriveStore.customFields[type] ?? [:]).sorted { $0.key < $1.key }.map { code, field -> JSONValue in
            ["field_name": .string(field.name), "field_code": .string(code), "field_type": .string(field.type), "is_custom_field": true,
             "is_optional_response_field": false, "options": .null, "required_fields": ["enabled": false]]
        }
        return standard + custom
    }
}

import HTTPTypes
import Hummingbird
import Shared

/// Salesforce REST, `/services/data/vXX.X/sobjects/…`: create, read, update, delete of sObject rows.
extension Sandbox {
    struct SalesforceError: Encodable {
        var message: String
        var errorCode: String
        var fields: [String]?
    }

    func addSalesforceRoutes(to router: Router<BasicRequestContext>) {
        let group = router.group("services/data/:version/sobjects")
        group.post(":object") { request, context in
            var request = request
            let object = context.parameters.get("object") ?? ""
            let body = await jsonBody(&request)
            return try await self.salesforce(request, context, object: object, recordId: nil, body: body, method: "POST") { state in
                guard let fields = body?.objectValue else {
                    return (400, [SalesforceError(message: "The request body is not a JSON object", errorCode: "JSON_PARSER_ERROR")], nil)
                }
                return Self.single(state.apply(.create(object: object, fields: fields)))
            }
        }
        for method in [HTTPRequest.Method.patch, .delete, .get] {
            group.on(":object/:id", method: method) { request, context in
                var request = request
                let body = method == .patch ? await jsonBody(&request) : nil
                let object = context.parameters.get("object") ?? ""
                let id = context.parameters.get("id") ?? ""
                return try await self.salesforce(request, context, object: object, recordId: id, body: body, method: method.rawValue) {
                    state in
                    switch method {
                    case .patch:
                        guard let fields = body?.objectValue else {
                            return (400, [SalesforceError(message: "The request body is not a JSON object", errorCode: "JSON_PARSER_ERROR")], nil)
                        }
                        return Self.single(state.apply(.update(object: object, id: id, fields: fields)))
                    case .delete:
                        return Self.single(state.apply(.delete(object: object, id: id)))
                    default:
                        return Self.read(state, object: object, id: id)
                    }
                }
            }
        }
        // Upsert by external ID: PATCH /sobjects/{SObject}/{ExternalIdField}/{value}.
        // (The router names the field's segment like the record id's, which shares its place.)
        group.patch(":object/:id/:value") { request, context in
            var request = request
            let body = await jsonBody(&request)
            let object = context.parameters.get("object") ?? ""
            let field = context.parameters.get("id") ?? ""
            let value = context.parameters.get("value")?.removingPercentEncoding ?? ""
            return try await self.salesforce(request, context, object: object, recordId: nil, body: body, method: "PATCH") { state in
                guard let fields = body?.objectValue else {
                    return (400, [SalesforceError(message: "The request body is not a JSON object", errorCode: "JSON_PARSER_ERROR")], nil)
                }
                let result = state.apply(.upsert(object: object, field: field, value: value, fields: fields))
                if result.status == 300 {
                    let version = context.parameters.get("version") ?? "v60.0"
                    return (300, result.matches.map { "/services/data/\(version)/sobjects/\(object)/\($0)" }, nil)
                }
                guard let id = result.id, result.error == nil else { return Self.single(result) }
                return (result.created == true ? 201 : 200, SalesforceSaved(id: id, created: result.created), id)
            }
        }
        addCompositeRoutes(to: router)
    }

    /// A record API call: the API version checked, then through the gate; `answer` runs on the state
    /// under its lock and gives the status, the body and the id the call wrote to.
    func salesforce(
        _ request: Request, _ context: BasicRequestContext, object: String, recordId: String?, body: JSONValue?, method: String,
        answer: @escaping (inout SandboxState) -> (Int, any Encodable, String?)
    ) async throws -> Response {
        guard SandboxSchema.salesforceVersionServed(context.parameters.get("version") ?? "") else {
            return jsonResponse(404, [SalesforceError(message: "The requested resource does not exist", errorCode: "NOT_FOUND")])
        }
        return try await answerCall(request, provider: "salesforce", object: object, recordId: recordId, body: body, method: method) {
            org in
            state.withLock { state in
                state.salesforceOrg = org
                return answer(&state)
            }
        }
    }

    /// Salesforce's answer to a single-record call: the saved record, 204, or an array of one error.
    static func single(_ result: SalesforceResult) -> (Int, any Encodable, String?) {
        if let error = result.error {
            return (result.status, [SalesforceError(message: error.message, errorCode: error.errorCode,
                                                    fields: error.fields.isEmpty ? nil : error.fields)], nil)
        }
        if result.status == 201 { return (201, SalesforceSaved(id: result.id ?? ""), result.id) }
        return (result.status, [String](), result.id)
    }

    private static func read(_ state: SandboxState, object: String, id: String) -> (Int, any Encodable, String?) {
        let record: SandboxState.SalesforceRecord
        switch state.liveRecord(id, of: object) {
        case .success(let found): record = found
        case .failure(let refusal): return single(refusal.result)
        }
        var fields = record.fields
        fields["Id"] = .string(id)
        fields["attributes"] = ["type": .string(object), "url": .string("/services/data/v60.0/sobjects/\(object)/\(id)")]
        return (200, fields, nil)
    }

    /// `{id, success, errors}`, with `created` on upserts.
    struct SalesforceSaved: Encodable {
        var id: String
        var success = true
        var errors: [String] = []
        var created: Bool?
    }
}

/// Wraps an existential so it can be encoded as a concrete type.
struct AnyEncodable: Encodable {
    let value: any Encodable
    init(_ value: any Encodable) { self.value = value }
    func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
}

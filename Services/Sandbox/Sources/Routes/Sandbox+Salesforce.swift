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
            return try await self.salesforce(request, object: object, recordId: nil, body: body, method: "POST")
        }
        for method in [HTTPRequest.Method.patch, .delete, .get] {
            group.on(":object/:id", method: method) { request, context in
                var request = request
                let body = method == .patch ? await jsonBody(&request) : nil
                return try await self.salesforce(
                    request, object: context.parameters.get("object") ?? "", recordId: context.parameters.get("id"),
                    body: body, method: method.rawValue)
            }
        }
    }

    private func salesforce(_ request: Request, object: String, recordId: String?, body: JSONValue?, method: String)
        async throws -> Response
    {
        try await answerCall(request, provider: "salesforce", object: object, recordId: recordId, body: body, method: method) {
            let (status, answer) = salesforceAnswer(request, object: object, recordId: recordId, body: body, method: method)
            return (status, answer, (answer as? SalesforceCreated)?.id)
        }
    }

    struct SalesforceCreated: Encodable {
        var id: String
        var success = true
        var errors: [String] = []
    }

    private func salesforceAnswer(_ request: Request, object: String, recordId: String?, body: JSONValue?, method: String)
        -> (Int, any Encodable)
    {
        func failure(_ status: Int, _ code: String, _ message: String, fields: [String]? = nil) -> (Int, any Encodable) {
            (status, [SalesforceError(message: message, errorCode: code, fields: fields)])
        }
        guard let definition = SandboxSchema.salesforceObject(object) else {
            return failure(404, "NOT_FOUND", "The requested resource does not exist")
        }
        if method == "POST" || method == "PATCH" {
            guard let fields = body?.objectValue else {
                return failure(400, "JSON_PARSER_ERROR", "The request body is not a JSON object")
            }
            if method == "POST", fields["Id"] != nil || fields["id"] != nil {
                return failure(400, "INVALID_FIELD", "Unable to create/update fields: Id. Please check the security settings of this field and verify that it is read/write for your profile or permission set.", fields: ["Id"])
            }
            if let unknown = fields.keys.sorted().first(where: { !SandboxSchema.salesforceFieldExists($0, on: definition) }) {
                return failure(400, "INVALID_FIELD", "No such column '\(unknown)' on sobject of type \(object)")
            }
            if method == "POST" {
                let missing = definition.required.filter { fields[$0] == nil || fields[$0] == .null || fields[$0] == "" }
                if !missing.isEmpty {
                    return failure(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [\(missing.joined(separator: ", "))]",
                                   fields: missing)
                }
                let id = state.withLock { state in
                    let id = state.newSalesforceId(prefix: definition.keyPrefix)
                    state.salesforce[id] = SandboxState.SalesforceRecord(object: object, fields: fields)
                    return id
                }
                return (201, SalesforceCreated(id: id))
            }
        }
        guard let recordId, recordId.count == 15 || recordId.count == 18 else {
            return failure(400, "MALFORMED_ID", "\(object) ID: id value of incorrect type: \(recordId ?? "")")
        }
        return state.withLock { state -> (Int, any Encodable) in
            guard var record = state.salesforce[recordId], record.object == object else {
                return failure(404, "NOT_FOUND", "The requested resource does not exist")
            }
            if record.deleted { return failure(404, "ENTITY_IS_DELETED", "entity is deleted") }
            switch method {
            case "PATCH":
                for (name, value) in body?.objectValue ?? [:] { record.fields[name] = value }
                state.salesforce[recordId] = record
                return (204, [String]())
            case "DELETE":
                record.deleted = true
                state.salesforce[recordId] = record
                return (204, [String]())
            default:
                var fields = record.fields
                fields["Id"] = .string(recordId)
                fields["attributes"] = [
                    "type": .string(object),
                    "url": .string("/services/data/v60.0/sobjects/\(object)/\(recordId)"),
                ]
                return (200, fields)
            }
        }
    }
}

/// Wraps an existential so it can be encoded as a concrete type.
struct AnyEncodable: Encodable {
    let value: any Encodable
    init(_ value: any Encodable) { self.value = value }
    func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
}

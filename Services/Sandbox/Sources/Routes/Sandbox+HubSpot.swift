import Foundation
import Hummingbird
import Shared

/// HubSpot CRM v3 objects, `/crm/v3/objects/{type}`: create, read, update, archive.
extension Sandbox {
    struct HubSpotError: Encodable {
        var status = "error"
        var message: String
        var correlationId = UUID().uuidString.lowercased()
        var category: String
        var errors: [HubSpotErrorDetail]?
    }

    struct HubSpotErrorDetail: Encodable {
        var message: String
        var code: String
        var context: [String: [String]]
    }

    struct HubSpotObjectBody: Encodable {
        var id: String
        var properties: [String: JSONValue]
        var createdAt: String
        var updatedAt: String
        var archived: Bool
    }

    func addHubSpotRoutes(to router: Router<BasicRequestContext>) {
        let group = router.group("crm/v3/objects")
        group.post(":type") { request, context in
            var request = request
            let body = await jsonBody(&request)
            let type = context.parameters.get("type") ?? ""
            return try await self.hubspot(request, type: type, id: nil, body: body, method: "POST") { state, type in
                guard let properties = body?["properties"]?.objectValue else { return Self.missingProperties }
                return Self.single(state.apply(.create(type: type, properties: properties, associations: body?["associations"]?.items ?? [])))
            }
        }
        for method in [HTTPRequest.Method.patch, .delete, .get] {
            group.on(":type/:id", method: method) { request, context in
                var request = request
                let body = method == .patch ? await jsonBody(&request) : nil
                let id = context.parameters.get("id")?.removingPercentEncoding ?? ""
                let idProperty = request.uri.queryParameters.get("idProperty")
                return try await self.hubspot(request, type: context.parameters.get("type") ?? "", id: id, body: body,
                                              method: method.rawValue) { state, type in
                    switch method {
                    case .patch:
                        guard let properties = body?["properties"]?.objectValue else { return Self.missingProperties }
                        return Self.single(state.apply(.update(type: type, id: id, idProperty: idProperty, properties: properties)))
                    case .delete:
                        return Self.single(state.apply(.archive(type: type, id: id, idProperty: idProperty)))
                    default:
                        guard let found = state.find(type: type, id, idProperty: idProperty), var object = state.hubspot[type]?[found] else {
                            return Self.single(.notFound)
                        }
                        object.properties = Self.selected(object.properties, request.uri.queryParameters.get("properties"))
                        return (200, Self.objectBody(found, object), found)
                    }
                }
            }
        }
        // A page of a type's objects, oldest first: `limit` (at most 100), `after` (the cursor), `properties`.
        group.get(":type") { request, context in
            try await self.hubspot(request, type: context.parameters.get("type") ?? "", id: nil, body: nil, method: "GET") { state, type in
                let query = request.uri.queryParameters
                let limit = max(1, min(100, Int(query.get("limit") ?? "") ?? 10))
                let after = Int(query.get("after") ?? "") ?? 0
                let live = (state.hubspot[type] ?? [:]).filter { !$0.value.archived }.sorted { (Int($0.key) ?? 0) < (Int($1.key) ?? 0) }
                let page = live.dropFirst(after).prefix(limit)
                let results: [JSONValue] = page.map { id, object in
                    var object = object
                    object.properties = Self.selected(object.properties, query.get("properties"))
                    return .object(Self.objectJSON(id, object))
                }
                var answer: [String: JSONValue] = ["results": .array(results)]
                if after + limit < live.count { answer["paging"] = ["next": ["after": .string(String(after + limit))]] }
                return (200, JSONValue.object(answer), nil)
            }
        }
        // Batches of at most 100 inputs: create, update, upsert, archive.
        for action in ["create", "update", "upsert", "archive"] {
            group.post(":type/batch/\(action)") { request, context in
                var request = request
                let body = await jsonBody(&request)
                return try await self.hubspot(request, type: context.parameters.get("type") ?? "", id: nil, body: body,
                                              method: "POST") { state, type in
                    Self.batch(action, type: type, inputs: body?["inputs"]?.items, state: &state)
                }
            }
        }
        addAssociationRoutes(to: router)
    }

    /// A call on a type's objects: through the gate; `answer` runs under the state's lock with the
    /// type's store key (an unknown type is a 400 as HubSpot gives it).
    func hubspot(
        _ request: Request, type: String, id: String?, body: JSONValue?, method: String,
        answer: @escaping (inout SandboxState, String) -> (Int, any Encodable, String?)
    ) async throws -> Response {
        try await answerCall(request, provider: "hubspot", object: type, recordId: id, body: body, method: method) { _ in
            guard let known = SandboxSchema.hubspotType(type) else {
                return (400, HubSpotError(message: "Unable to infer object type from: \(type)", category: "VALIDATION_ERROR"), nil)
            }
            return state.withLock { answer(&$0, known) }
        }
    }

    static var missingProperties: (Int, any Encodable, String?) { (
        400, HubSpotError(message: "Invalid input JSON on line 1, column 1: properties are required", category: "VALIDATION_ERROR"), nil) }

    /// HubSpot's answer to a single-object call: the object, 204, or the error.
    static func single(_ result: HubSpotResult) -> (Int, any Encodable, String?) {
        if let error = result.error { return (result.status, errorBody(error), nil) }
        if result.status == 204 { return (204, [String](), result.id) }
        return (result.status, objectBody(result.id ?? "", result.object!), result.id)
    }

    static func errorBody(_ failure: HubSpotFailure, context: [String: [String]] = [:]) -> HubSpotError {
        HubSpotError(
            message: failure.message, category: failure.category,
            errors: failure.unknownProperties.isEmpty ? nil : failure.unknownProperties.map {
                HubSpotErrorDetail(message: "Property \"\($0)\" does not exist", code: "PROPERTY_DOESNT_EXIST",
                                   context: ["propertyName": [$0]].merging(context) { first, _ in first })
            })
    }

    /// A batch: every input applied in order. Without `objectWriteTraceId`s one failing input fails the
    /// whole batch and nothing is written; with them the others are written and the answer is 207 with
    /// an error per failed input.
    private static func batch(_ action: String, type: String, inputs: [JSONValue]?, state: inout SandboxState)
        -> (Int, any Encodable, String?)
    {
        guard let inputs, !inputs.isEmpty else {
            return (400, HubSpotError(message: "Invalid input JSON: inputs are required", category: "VALIDATION_ERROR"), nil)
        }
        guard inputs.count <= 100 else {
            return (400, HubSpotError(message: "Batch input limit exceeded: \(inputs.count) inputs, at most 100", category: "VALIDATION_ERROR"), nil)
        }
        let started = Timestamp.now()
        let traced = inputs.contains { $0["objectWriteTraceId"] != nil }
        var results: [JSONValue] = []
        var errors: [HubSpotError] = []
        // Without trace ids one failing input fails the batch: what the others wrote is rolled back.
        let refused = state.rollingBack { state -> (HubSpotFailure?, rollback: Bool) in
            for input in inputs {
                let properties = input["properties"]?.objectValue ?? [:]
                let id = input["id"]?.scalarText ?? ""
                let idProperty = input["idProperty"]?.stringValue
                let result: HubSpotResult
                switch action {
                case "create": result = state.apply(.create(type: type, properties: properties, associations: input["associations"]?.items ?? []))
                case "update": result = state.apply(.update(type: type, id: id, idProperty: idProperty, properties: properties))
                case "upsert": result = state.apply(.upsert(type: type, id: id, idProperty: idProperty ?? "hs_object_id", properties: properties))
                default: result = state.apply(.archive(type: type, id: id, idProperty: idProperty))
                }
                if let failure = result.error {
                    let trace = input["objectWriteTraceId"]?.scalarText
                    guard traced else { return (failure, true) }
                    var error = errorBody(failure, context: trace.map { ["objectWriteTraceId": [$0]] } ?? [:])
                    if error.errors == nil, let trace {
                        error.errors = [HubSpotErrorDetail(message: failure.message, code: failure.category, context: ["objectWriteTraceId": [trace]])]
                    }
                    errors.append(error)
                } else if let object = result.object, let id = result.id {
                    var body = objectJSON(id, object)
                    if action == "upsert" { body["new"] = .bool(result.new ?? false) }
                    if let trace = input["objectWriteTraceId"] { body["objectWriteTraceId"] = trace }
                    results.append(.object(body))
                }
            }
            return (nil, false)
        }
        if let refused { return (refused.status, errorBody(refused), nil) }
        if action == "archive" && errors.isEmpty { return (204, [String](), nil) }
        var envelope: [String: JSONValue] = [
            "status": "COMPLETE", "results": .array(results), "startedAt": .string(started), "completedAt": .string(Timestamp.now()),
        ]
        if !errors.isEmpty {
            envelope["numErrors"] = .number(Double(errors.count))
            envelope["errors"] = (try? JSONCoding.decode(JSONValue.self, from: JSONCoding.encode(errors))) ?? []
            return (207, envelope, nil)
        }
        return (action == "create" ? 201 : 200, envelope, nil)
    }

    static func objectBody(_ id: String, _ object: SandboxState.HubSpotObject) -> HubSpotObjectBody {
        HubSpotObjectBody(id: id, properties: object.properties, createdAt: object.createdAt, updatedAt: object.updatedAt,
                          archived: object.archived)
    }

    /// The properties a read asks for (`properties=a,b`), or all of them.
    static func selected(_ properties: [String: JSONValue], _ wanted: String?) -> [String: JSONValue] {
        guard let wanted, !wanted.isEmpty else { return properties }
        let names = Set(wanted.split(separator: ",").map(String.init))
        return properties.filter { names.contains($0.key) }
    }

    static func objectJSON(_ id: String, _ object: SandboxState.HubSpotObject) -> [String: JSONValue] {
        ["id": .string(id), "properties": .object(object.properties), "createdAt": .string(object.createdAt),
         "updatedAt": .string(object.updatedAt), "archived": .bool(object.archived)]
    }
}

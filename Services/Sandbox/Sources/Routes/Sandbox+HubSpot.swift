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
            return try await self.hubspot(request, type: context.parameters.get("type") ?? "", id: nil, body: body, method: "POST")
        }
        for method in [HTTPRequest.Method.patch, .delete, .get] {
            group.on(":type/:id", method: method) { request, context in
                var request = request
                let body = method == .patch ? await jsonBody(&request) : nil
                return try await self.hubspot(
                    request, type: context.parameters.get("type") ?? "", id: context.parameters.get("id"), body: body,
                    method: method.rawValue)
            }
        }
    }

    private func hubspot(_ request: Request, type: String, id: String?, body: JSONValue?, method: String) async throws
        -> Response
    {
        try await answerCall(request, provider: "hubspot", object: type, recordId: id, body: body, method: method) {
            let (status, answer) = hubspotAnswer(request, type: type, id: id, body: body, method: method)
            return (status, answer, (answer as? HubSpotObjectBody)?.id)
        }
    }

    private func hubspotAnswer(_ request: Request, type: String, id: String?, body: JSONValue?, method: String)
        -> (Int, any Encodable)
    {
        func failure(_ status: Int, _ category: String, _ message: String, errors: [HubSpotErrorDetail]? = nil)
            -> (Int, any Encodable)
        {
            (status, HubSpotError(message: message, category: category, errors: errors))
        }
        guard let known = SandboxSchema.hubspot[type] else {
            return failure(400, "VALIDATION_ERROR", "Unable to infer object type from: \(type)")
        }
        var properties: [String: JSONValue] = [:]
        if method == "POST" || method == "PATCH" {
            guard let given = body?["properties"]?.objectValue else {
                return failure(400, "VALIDATION_ERROR", "Invalid input JSON on line 1, column 1: properties are required")
            }
            let unknown = given.keys.sorted().filter { !known.contains($0) }
            if !unknown.isEmpty {
                let details = unknown.map {
                    HubSpotErrorDetail(message: "Property \"\($0)\" does not exist", code: "PROPERTY_DOESNT_EXIST",
                                       context: ["propertyName": [$0]])
                }
                return failure(400, "VALIDATION_ERROR",
                               "Property values were not valid: " + unknown.map { "Property \"\($0)\" does not exist" }.joined(separator: "; "),
                               errors: details)
            }
            // HubSpot stores every property value as a string.
            for (name, value) in given { properties[name] = value == .null ? "" : .string(value.scalarText ?? "") }
        }
        let now = Timestamp.now()
        return state.withLock { state -> (Int, any Encodable) in
            if method == "POST" {
                if type == "contacts", let email = properties["email"]?.stringValue, !email.isEmpty,
                    let existing = state.hubspot[type]?.first(where: { !$0.value.archived && $0.value.properties["email"]?.stringValue?.lowercased() == email.lowercased() })
                {
                    return failure(409, "CONFLICT", "Contact already exists. Existing ID: \(existing.key)")
                }
                let id = state.newHubSpotId()
                var stored = properties
                stored["hs_object_id"] = .string(id)
                stored["createdate"] = .string(now)
                stored["lastmodifieddate"] = .string(now)
                let object = SandboxState.HubSpotObject(type: type, properties: stored, createdAt: now, updatedAt: now)
                state.hubspot[type, default: [:]][id] = object
                return (201, objectBody(id, object))
            }
            guard let id, var object = state.hubspot[type]?[id], !object.archived else {
                if method == "DELETE" { return (204, [String]()) }
                return failure(404, "OBJECT_NOT_FOUND", "resource not found")
            }
            switch method {
            case "PATCH":
                for (name, value) in properties { object.properties[name] = value }
                object.updatedAt = now
                object.properties["lastmodifieddate"] = .string(now)
                state.hubspot[type]?[id] = object
                return (200, objectBody(id, object))
            case "DELETE":
                object.archived = true
                state.hubspot[type]?[id] = object
                return (204, [String]())
            default:
                return (200, objectBody(id, object))
            }
        }
    }

    private func objectBody(_ id: String, _ object: SandboxState.HubSpotObject) -> HubSpotObjectBody {
        HubSpotObjectBody(id: id, properties: object.properties, createdAt: object.createdAt, updatedAt: object.updatedAt,
                          archived: object.archived)
    }
}

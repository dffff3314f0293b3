import Hummingbird
import Shared

/// HubSpot associations v4: default (unlabelled) and labelled associations between two objects, one at a
/// time or in batches, and reading an object's associations.
extension Sandbox {
    /// HubSpot-defined default association type ids, from → to.
    static let defaultAssociationTypes: [String: Int] = [
        "contacts/companies": 279, "companies/contacts": 280, "deals/contacts": 3, "contacts/deals": 4,
        "deals/companies": 341, "companies/deals": 342, "tickets/contacts": 16, "contacts/tickets": 15,
    ]

    func addAssociationRoutes(to router: Router<BasicRequestContext>) {
        router.put("crm/v4/objects/:from/:fromId/associations/default/:to/:toId") { request, context in
            let (from, fromId, to, toId) = Self.ends(context)
            return try await self.associations(request, from: from, to: to, body: nil, method: "PUT") { state, from, to in
                guard let failure = Self.missing(state, [(from, fromId), (to, toId)]) else {
                    let typeId = Self.defaultAssociationTypes["\(from)/\(to)"] ?? 1
                    state.associate(from: from, fromId, toType: to, toId, typeIds: [typeId])
                    return (200, Self.envelope([Self.spec(fromId, toId, typeId)]), fromId)
                }
                return failure
            }
        }
        router.put("crm/v4/objects/:from/:fromId/associations/:to/:toId") { request, context in
            var request = request
            let body = await jsonBody(&request)
            let (from, fromId, to, toId) = Self.ends(context)
            return try await self.associations(request, from: from, to: to, body: body, method: "PUT") { state, from, to in
                if let failure = Self.missing(state, [(from, fromId), (to, toId)]) { return failure }
                let typeIds = (body?.items ?? []).compactMap { $0["associationTypeId"]?.scalarText.flatMap { Int($0) } }
                guard !typeIds.isEmpty else {
                    return (400, HubSpotError(message: "Invalid input JSON: association types are required", category: "VALIDATION_ERROR"), nil)
                }
                state.associate(from: from, fromId, toType: to, toId, typeIds: typeIds)
                let answer: JSONValue = [
                    "fromObjectTypeId": .string(from), "fromObjectId": .string(fromId), "toObjectTypeId": .string(to),
                    "toObjectId": .string(toId), "labels": [],
                ]
                return (201, answer, fromId)
            }
        }
        router.get("crm/v4/objects/:from/:fromId/associations/:to") { request, context in
            let (from, fromId, to, _) = Self.ends(context)
            return try await self.associations(request, from: from, to: to, body: nil, method: "GET") { state, from, to in
                let links = state.hubspotAssociations["\(from)/\(fromId)"] ?? [:]
                let results: [JSONValue] = links.filter { $0.key.hasPrefix(to + "/") }.sorted { $0.key < $1.key }.map { key, types in
                    [
                        "toObjectId": .string(String(key.dropFirst(to.count + 1))),
                        "associationTypes": .array(types.sorted().map { ["category": "HUBSPOT_DEFINED", "typeId": .number(Double($0)), "label": .null] }),
                    ]
                }
                return (200, ["results": JSONValue.array(results)], nil)
            }
        }
        router.post("crm/v4/associations/:from/:to/batch/associate/default") { request, context in
            var request = request
            let body = await jsonBody(&request)
            let from = context.parameters.get("from") ?? ""
            let to = context.parameters.get("to") ?? ""
            return try await self.associations(request, from: from, to: to, body: body, method: "POST") { state, from, to in
                let typeId = Self.defaultAssociationTypes["\(from)/\(to)"] ?? 1
                var results: [JSONValue] = []
                for input in body?["inputs"]?.items ?? [] {
                    guard let fromId = input["from"]?["id"]?.scalarText, let toId = input["to"]?["id"]?.scalarText else { continue }
                    if let failure = Self.missing(state, [(from, fromId), (to, toId)]) { return failure }
                    state.associate(from: from, fromId, toType: to, toId, typeIds: [typeId])
                    results.append(Self.spec(fromId, toId, typeId))
                }
                return (200, Self.envelope(results), nil)
            }
        }
    }

    private static func ends(_ context: BasicRequestContext) -> (String, String, String, String) {
        (context.parameters.get("from") ?? "", context.parameters.get("fromId") ?? "", context.parameters.get("to") ?? "",
         context.parameters.get("toId") ?? "")
    }

    /// A call between two object types: through the gate, types resolved, under the state's lock.
    private func associations(
        _ request: Request, from: String, to: String, body: JSONValue?, method: String,
        answer: @escaping (inout SandboxState, String, String) -> (Int, any Encodable, String?)
    ) async throws -> Response {
        try await hubspot(request, type: from, id: nil, body: body, method: method) { state, fromType in
            guard let toType = SandboxSchema.hubspotType(to) else {
                return (400, HubSpotError(message: "Unable to infer object type from: \(to)", category: "VALIDATION_ERROR"), nil)
            }
            return answer(&state, fromType, toType)
        }
    }

    private static func missing(_ state: SandboxState, _ ends: [(String, String)]) -> (Int, any Encodable, String?)? {
        for (type, id) in ends where state.find(type: type, id, idProperty: nil) == nil {
            return (404, HubSpotError(message: "No \(type) with id \(id) exists", category: "OBJECT_NOT_FOUND"), nil)
        }
        return nil
    }

    private static func spec(_ fromId: String, _ toId: String, _ typeId: Int) -> JSONValue {
        ["from": ["id": .string(fromId)], "to": ["id": .string(toId)],
         "associationSpec": ["associationCategory": "HUBSPOT_DEFINED", "associationTypeId": .number(Double(typeId))]]
    }

    private static func envelope(_ results: [JSONValue]) -> JSONValue {
        let now = Timestamp.now()
        return ["status": "COMPLETE", "results": .array(results), "startedAt": .string(now), "completedAt": .string(now)]
    }
}

import Shared

/// One HubSpot object operation, from the single-object or the batch API.
enum HubSpotOperation {
    case create(type: String, properties: [String: JSONValue], associations: [JSONValue])
    /// `idProperty` nil: `id` is the object id; otherwise the value of that unique property.
    case update(type: String, id: String, idProperty: String?, properties: [String: JSONValue])
    case upsert(type: String, id: String, idProperty: String, properties: [String: JSONValue])
    case archive(type: String, id: String, idProperty: String?)
}

/// What an operation came to: the object, whether upsert created it, or the error.
struct HubSpotResult {
    var status: Int
    var id: String?
    var object: SandboxState.HubSpotObject?
    var new: Bool?
    var error: HubSpotFailure?
}

extension HubSpotResult {
    static let notFound = HubSpotResult(
        status: 404, error: HubSpotFailure(status: 404, category: "OBJECT_NOT_FOUND", message: "resource not found"))
}

struct HubSpotFailure: Error, Sendable {
    var status: Int
    var category: String
    var message: String
    /// Unknown properties (code PROPERTY_DOESNT_EXIST).
    var unknownProperties: [String] = []
}

extension SandboxState {
    mutating func apply(_ operation: HubSpotOperation) -> HubSpotResult {
        let now = Timestamp.now()
        switch operation {
        case .create(let type, let given, let associations):
            let properties: [String: JSONValue]
            switch SandboxSchema.hubspotProperties(given, of: type) {
            case .failure(let failure): return HubSpotResult(status: failure.status, error: failure)
            case .success(let checked): properties = checked
            }
            if let failure = uniqueConflict(type: type, properties, except: nil) { return HubSpotResult(status: 409, error: failure) }
            let id = newHubSpotId()
            var stored = properties
            stored["hs_object_id"] = .string(id)
            stored["createdate"] = .string(now)
            stored["lastmodifieddate"] = .string(now)
            store(id, HubSpotObject(type: type, properties: stored, createdAt: now, updatedAt: now))
            for association in associations {
                guard let to = association["to"]?["id"]?.scalarText else { continue }
                let types = association["types"]?.items.compactMap { $0["associationTypeId"]?.scalarText.flatMap { Int($0) } } ?? []
                associate(from: type, id, toType: nil, to, typeIds: types)
            }
            return HubSpotResult(status: 201, id: id, object: hubspot[type]?[id], new: true)
        case .update(let type, let key, let idProperty, let given):
            guard let id = find(type: type, key, idProperty: idProperty) else { return .notFound }
            let properties: [String: JSONValue]
            switch SandboxSchema.hubspotProperties(given, of: type) {
            case .failure(let failure): return HubSpotResult(status: failure.status, error: failure)
            case .success(let checked): properties = checked
            }
            if let failure = uniqueConflict(type: type, properties, except: id) { return HubSpotResult(status: 409, error: failure) }
            var object = hubspot[type]![id]!
            for (name, value) in properties { object.properties[name] = value }
            object.updatedAt = now
            object.properties["lastmodifieddate"] = .string(now)
            store(id, object)
            return HubSpotResult(status: 200, id: id, object: object, new: false)
        case .upsert(let type, let key, let idProperty, let given):
            if find(type: type, key, idProperty: idProperty) != nil {
                return apply(.update(type: type, id: key, idProperty: idProperty, properties: given))
            }
            var properties = given
            if idProperty != "hs_object_id" { properties[idProperty] = .string(key) }
            return apply(.create(type: type, properties: properties, associations: []))
        case .archive(let type, let key, let idProperty):
            // Archiving what is already gone is a success, as HubSpot answers it.
            guard let id = find(type: type, key, idProperty: idProperty) else { return HubSpotResult(status: 204) }
            var object = hubspot[type]![id]!
            object.archived = true
            store(id, object)
            return HubSpotResult(status: 204, id: id)
        }
    }

    /// The live object of a type with this id, or this value of a unique property.
    func find(type: String, _ key: String, idProperty: String?) -> String? {
        guard let idProperty, idProperty != "hs_object_id" else {
            return hubspot[type]?[key].flatMap { $0.archived ? nil : key }
        }
        if let found = indexed(type, idProperty, key, provider: "hubspot") { return found.first }
        return hubspot[type]?.first { !$0.value.archived && $0.value.properties[idProperty]?.stringValue?.lowercased() == key.lowercased() }?.key
    }

    mutating func associate(from fromType: String, _ fromId: String, toType: String?, _ toId: String, typeIds: [Int]) {
        let target = toType ?? hubspot.first { $0.value[toId] != nil }?.key ?? ""
        var links = hubspotAssociations[fromType + "/" + fromId, default: [:]]
        links[target + "/" + toId, default: []].formUnion(typeIds)
        setAssociations(fromType + "/" + fromId, links)
    }

    private func uniqueConflict(type: String, _ properties: [String: JSONValue], except: String?) -> HubSpotFailure? {
        for property in SandboxSchema.hubspotUnique[type] ?? [] {
            guard let value = properties[property]?.stringValue, !value.isEmpty,
                let existing = find(type: type, value, idProperty: property), existing != except
            else { continue }
            let label = type == "contacts" ? "Contact" : "Object"
            return HubSpotFailure(status: 409, category: "CONFLICT", message: "\(label) already exists. Existing ID: \(existing)")
        }
        return nil
    }

}

extension SandboxSchema {
    /// Unique properties per type: what `idProperty` may name and duplicates are refused on.
    static let hubspotUnique: [String: [String]] = ["contacts": ["email"], "p_pets": ["pet_id"]]

    /// The store key of an object type as HubSpot accepts it: plural name, `0-N` id, custom `2-N` id or
    /// `p_{name}`.
    static func hubspotType(_ name: String) -> String? {
        let ids = ["0-1": "contacts", "0-2": "companies", "0-3": "deals", "0-5": "tickets", "2-1001": "p_pets", "pets": "p_pets"]
        let type = ids[name] ?? name
        return hubspot[type] == nil ? nil : type
    }

    /// The properties as HubSpot stores them (strings), or the validation error naming each unknown one.
    static func hubspotProperties(_ given: [String: JSONValue], of type: String) -> Result<[String: JSONValue], HubSpotFailure> {
        let known = hubspot[type] ?? []
        let unknown = given.keys.sorted().filter { !known.contains($0) && $0 != "hs_object_id" }
        if !unknown.isEmpty {
            return .failure(HubSpotFailure(
                status: 400, category: "VALIDATION_ERROR",
                message: "Property values were not valid: " + unknown.map { "Property \"\($0)\" does not exist" }.joined(separator: "; "),
                unknownProperties: unknown))
        }
        return .success(given.mapValues { $0 == .null ? "" : .string($0.scalarText ?? "") })
    }
}

extension JSONValue {
    /// The elements of an array; empty for anything else.
    var items: [JSONValue] {
        if case .array(let items) = self { return items }
        return []
    }
}

import Foundation
import Shared

/// Pipedrive's persons, organizations and deals as the sandbox keeps them: each item's fields as the API
/// v2 shows them (custom fields under `custom_fields`, keyed by their 40-character keys).
struct PipedriveStore: Sendable {
    struct Item: Sendable {
        var fields: [String: JSONValue]
        var addTime: String
        var updateTime: String
    }

    /// Items by type (`persons`, `organizations`, `deals`), then id.
    private(set) var items: [String: [Int: Item]] = [:]
    private var nextId = 1

    /// The fields each type has besides its custom fields, and the one a create requires.
    static let standardFields: [String: (fields: Set<String>, required: String)] = [
        "persons": (["name", "owner_id", "org_id", "emails", "phones", "visible_to", "label_ids", "marketing_status"], "name"),
        "organizations": (["name", "owner_id", "address", "visible_to", "label_ids"], "name"),
        "deals": (["title", "value", "currency", "stage_id", "pipeline_id", "person_id", "org_id", "status", "owner_id",
                   "expected_close_date", "probability", "visible_to", "label_ids"], "title"),
    ]

    /// Each account's custom fields: key → (name, type); the same for every org of the sandbox.
    static let customFields: [String: [String: (name: String, type: String)]] = [
        "persons": [customKey("persons", "warmth"): ("Warmth", "varchar"), customKey("persons", "external id"): ("External ID", "varchar")],
        "organizations": [customKey("organizations", "tier"): ("Tier", "varchar")],
        "deals": [customKey("deals", "source"): ("Source", "varchar")],
    ]

    /// A custom field's 40-character key, as Pipedrive makes them (a SHA-1 in hex).
    static func customKey(_ type: String, _ name: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        var text = ""
        for round in 0..<3 {
            for byte in "\(round):\(type):\(name)".utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            text += String(format: "%016llx", hash)
        }
        return String(text.prefix(40))
    }

    /// Why the fields cannot be written to a `type` item (nil: they can).
    static func problem(_ fields: [String: JSONValue], type: String, creating: Bool) -> String? {
        guard let known = standardFields[type] else { return "unknown item type \(type)" }
        for key in fields.keys.sorted() where key != "custom_fields" && !known.fields.contains(key) {
            return "Validation failed: \(key): Parameter is not allowed for this request"
        }
        if creating, (fields[known.required]?.stringValue ?? "").isEmpty {
            return "Validation failed: \(known.required): Parameter '\(known.required)' is required"
        }
        for key in (fields["custom_fields"]?.objectValue ?? [:]).keys.sorted() where customFields[type]?[key] == nil {
            return "Validation failed: custom_fields: Unknown custom field key '\(key)'"
        }
        if let emails = fields["emails"], emails.arrayValue?.allSatisfy({ $0["value"]?.stringValue != nil }) != true {
            return "Validation failed: emails: must be an array of objects with a value"
        }
        return nil
    }

    mutating func create(_ type: String, _ fields: [String: JSONValue]) -> (Int, Item) {
        let id = nextId
        nextId += 1
        let now = Self.time()
        let item = Item(fields: fields, addTime: now, updateTime: now)
        items[type, default: [:]][id] = item
        return (id, item)
    }

    /// Merges `fields` into the item (custom fields merged key by key); nil when there is no such item.
    mutating func update(_ type: String, _ id: Int, _ fields: [String: JSONValue]) -> Item? {
        guard var item = items[type]?[id] else { return nil }
        for (key, value) in fields {
            if key == "custom_fields" {
                var custom = item.fields["custom_fields"]?.objectValue ?? [:]
                for (name, field) in value.objectValue ?? [:] { custom[name] = field }
                item.fields["custom_fields"] = .object(custom)
            } else {
                item.fields[key] = value
            }
        }
        item.updateTime = Self.time()
        items[type]?[id] = item
        return item
    }

    mutating func delete(_ type: String, _ id: Int) -> Bool {
        items[type]?.removeValue(forKey: id) != nil
    }

    /// The item as the API shows it.
    static func json(_ id: Int, _ item: Item) -> JSONValue {
        var body = item.fields
        body["id"] = .number(Double(id))
        body["add_time"] = .string(item.addTime)
        body["update_time"] = .string(item.updateTime)
        if body["custom_fields"] == nil { body["custom_fields"] = .object([:]) }
        return .object(body)
    }

    /// The items whose `field` (name, email, or a custom field) equals `term`, case-insensitively.
    func search(_ type: String, term: String, fields: [String]) -> [(Int, Item)] {
        let wanted = term.lowercased()
        return (items[type] ?? [:]).sorted { $0.key < $1.key }.filter { _, item in
            fields.contains { field in
                switch field {
                case "email":
                    return (item.fields["emails"]?.arrayValue ?? []).contains { $0["value"]?.stringValue?.lowercased() == wanted }
                case "custom_fields":
                    return (item.fields["custom_fields"]?.objectValue ?? [:]).values.contains { $0.scalarText?.lowercased() == wanted }
                default:
                    return item.fields[field]?.scalarText?.lowercased() == wanted
                }
            }
        }
    }

    static func time() -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: Date())
    }
}

import Foundation

/// The common CRM schema (contacts, accounts, leads, opportunities). The api checks a unified record with
/// it; the writer maps it with the provider's `UnifiedMapping`, so that one record lands in any provider
/// by the same request.
public enum UnifiedObject: String, Codable, Sendable, CaseIterable {
    case contacts
    case accounts
    case leads
    case opportunities

    enum Kind {
        case string, integer, addresses, emails, phones, lifecycle, customFields
    }

    var fields: [String: Kind] {
        switch self {
        case .contacts:
            return ["first_name": .string, "last_name": .string, "account_id": .string, "addresses": .addresses,
                    "email_addresses": .emails, "phone_numbers": .phones, "owner_id": .string,
                    "lifecycle_stage": .lifecycle, "custom_fields": .customFields]
        case .accounts:
            return ["description": .string, "industry": .string, "name": .string, "number_of_employees": .integer,
                    "website": .string, "addresses": .addresses, "phone_numbers": .phones, "owner_id": .string,
                    "lifecycle_stage": .lifecycle, "custom_fields": .customFields]
        case .leads:
            return ["company": .string, "first_name": .string, "last_name": .string, "lead_source": .string,
                    "title": .string, "email_addresses": .emails, "addresses": .addresses, "owner_id": .string,
                    "converted_contact_id": .string, "converted_account_id": .string, "custom_fields": .customFields]
        case .opportunities:
            return ["amount": .integer, "close_date": .string, "description": .string, "name": .string,
                    "stage": .string, "account_id": .string, "owner_id": .string, "pipeline": .string,
                    "custom_fields": .customFields]
        }
    }

    public static let lifecycleStages = ["subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
                                         "customer", "evangelist", "other"]

    /// Every way the record does not fit the common schema: (where, what).
    public func problems(in record: [String: JSONValue]) -> [(name: String, detail: String)] {
        var problems: [(String, String)] = []
        for key in record.keys.sorted() {
            let value = record[key]!
            let name = "record.\(key)"
            guard let kind = fields[key] else {
                problems.append((name, "\(key) is not a field of \(rawValue) in the common schema; "
                    + "send provider fields in custom_fields"))
                continue
            }
            if value == .null { continue }
            switch kind {
            case .string:
                if value.stringValue == nil { problems.append((name, "\(key) must be a string or null")) }
            case .integer:
                if case .number(let number) = value, number == number.rounded() { break }
                problems.append((name, "\(key) must be an integer or null"))
            case .lifecycle:
                if let stage = value.stringValue, Self.lifecycleStages.contains(stage) { break }
                problems.append((name, "lifecycle_stage must be one of \(Self.lifecycleStages.joined(separator: ", "))"))
            case .customFields:
                if value.objectValue == nil { problems.append((name, "custom_fields must be an object")) }
            case .addresses:
                problems += listProblems(value, name: name, required: ["address_type"], types: [
                    "address_type": ["primary", "mailing", "other", "billing", "shipping"],
                ], strings: ["city", "country", "postal_code", "state", "street_1", "street_2"])
            case .emails:
                problems += listProblems(value, name: name, required: ["email_address", "email_address_type"], types: [
                    "email_address_type": ["primary", "work", "other"],
                ], strings: ["email_address"])
            case .phones:
                problems += listProblems(value, name: name, required: ["phone_number", "phone_number_type"], types: [
                    "phone_number_type": ["primary", "mobile", "fax", "other"],
                ], strings: ["phone_number"])
            }
        }
        return problems
    }

    private func listProblems(
        _ value: JSONValue, name: String, required: [String], types: [String: [String]], strings: [String]
    ) -> [(String, String)] {
        guard case .array(let items) = value else { return [(name, "must be an array")] }
        var problems: [(String, String)] = []
        for (index, item) in items.enumerated() {
            let itemName = "\(name)[\(index)]"
            guard let object = item.objectValue else {
                problems.append((itemName, "must be an object"))
                continue
            }
            for key in required where object[key] == nil { problems.append(("\(itemName).\(key)", "\(key) is required")) }
            for (key, allowed) in types {
                if let text = object[key], !(text.stringValue.map(allowed.contains) ?? false) {
                    problems.append(("\(itemName).\(key)", "\(key) must be one of \(allowed.joined(separator: ", "))"))
                }
            }
            for key in strings {
                if let text = object[key], text != .null, text.stringValue == nil {
                    problems.append(("\(itemName).\(key)", "\(key) must be a string or null"))
                }
            }
            for key in object.keys where types[key] == nil && !strings.contains(key) {
                problems.append(("\(itemName).\(key)", "\(key) is not a field of this list"))
            }
        }
        return problems
    }

    /// The provider's fields for a unified record as `mapping` holds the object, and a warning for each
    /// value the provider has no field for. `custom_fields` pass through under the names
    /// `customMappings` gives them (the installation's own fields), else as they are.
    public func providerFields(
        _ record: [String: JSONValue], mapping: UnifiedMapping, customMappings: [String: String] = [:]
    ) -> (fields: [String: JSONValue], warnings: [String]) {
        var fields: [String: JSONValue] = [:]
        var warnings: [String] = []
        let joinedKeys = Set(mapping.joined.flatMap(\.keys))
        for group in mapping.joined {
            let parts = group.keys.compactMap { record[$0]?.stringValue }.filter { !$0.isEmpty }
            if !parts.isEmpty { fields[group.field] = .string(parts.joined(separator: " ")) }
        }
        for (key, value) in record where !joinedKeys.contains(key) {
            if let field = mapping.fields[key] {
                fields[field] = mapping.dateFields.contains(key) ? Self.date(value) : value
                continue
            }
            switch key {
            case "email_addresses" where mapping.email != nil:
                if let email = Self.pick(value, typeKey: "email_address_type", order: ["primary", "work", "other"])?["email_address"] {
                    fields[mapping.email!] = email
                }
            case "phone_numbers" where !mapping.phones.isEmpty:
                for phone in mapping.phones {
                    if let found = Self.pick(value, typeKey: "phone_number_type", order: [phone.type], fallback: false)?["phone_number"] {
                        fields[phone.field] = found
                    }
                }
            case "addresses" where !mapping.addresses.isEmpty:
                for group in mapping.addresses {
                    guard let address = Self.pick(value, typeKey: "address_type", order: group.types, fallback: false) else { continue }
                    for (part, suffix) in mapping.addressParts {
                        let field = group.prefix + suffix
                        if part == "street" {
                            let street = [address["street_1"]?.stringValue, address["street_2"]?.stringValue]
                                .compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: "\n")
                            if !street.isEmpty { fields[field] = .string(street) }
                        } else if let text = address[part], text != .null {
                            fields[field] = text
                        }
                    }
                }
            case "custom_fields":
                for (name, custom) in value.objectValue ?? [:] { fields[customMappings[name] ?? name] = custom }
            default:
                if value != .null {
                    warnings.append("\(key) has no \(mapping.providerName) field on \(mapping.object); it was not written")
                }
            }
        }
        return (fields, warnings.sorted())
    }

    /// The first item of a typed list whose type comes first in `order` (any item when `fallback`).
    static func pick(_ list: JSONValue, typeKey: String, order: [String], fallback: Bool = true) -> [String: JSONValue]? {
        guard case .array(let items) = list else { return nil }
        let objects = items.compactMap(\.objectValue)
        for type in order {
            if let found = objects.first(where: { $0[typeKey]?.stringValue == type }) { return found }
        }
        return fallback ? objects.first : nil
    }

    /// A date field's value: `2022-02-10T00:00:00Z` → `2022-02-10`.
    static func date(_ value: JSONValue) -> JSONValue {
        guard let text = value.stringValue, text.count > 10 else { return value }
        return .string(String(text.prefix(10)))
    }
}

/// How one provider holds an object of the common schema: its object, the field of each simple key, and
/// where emails, phones and addresses go. Each connector declares its own.
public struct UnifiedMapping: Sendable {
    /// The provider's name, for warnings ("Salesforce").
    public var providerName: String
    public var object: String
    /// Common key → provider field, for the keys that are one value.
    public var fields: [String: String]
    /// Keys whose provider field holds a date only.
    public var dateFields: Set<String>
    /// The field the primary (else first) email goes to.
    public var email: String?
    /// Phone type → field.
    public var phones: [(type: String, field: String)]
    /// Which address types go to which group of fields (the group's field prefix).
    public var addresses: [(types: [String], prefix: String)]
    /// Address part (street, city, state, postal_code, country) → the field's name after the prefix.
    public var addressParts: [(part: String, field: String)]
    /// The keys an upsert may match on, and the field each one matches.
    public var upsertFields: [(key: String, field: String)]
    /// Keys whose values go to one field together, separated by a space (first and last name → name).
    public var joined: [(keys: [String], field: String)]

    public init(
        providerName: String, object: String, fields: [String: String], dateFields: Set<String> = [], email: String? = nil,
        phones: [(type: String, field: String)] = [], addresses: [(types: [String], prefix: String)] = [],
        addressParts: [(part: String, field: String)] = [], upsertFields: [(key: String, field: String)] = [],
        joined: [(keys: [String], field: String)] = []
    ) {
        self.joined = joined
        self.providerName = providerName
        self.object = object
        self.fields = fields
        self.dateFields = dateFields
        self.email = email
        self.phones = phones
        self.addresses = addresses
        self.addressParts = addressParts
        self.upsertFields = upsertFields
    }

    public var upsertKeys: [String] { upsertFields.map(\.key) }

    public func upsertField(_ key: String) -> String? { upsertFields.first { $0.key == key }?.field }
}

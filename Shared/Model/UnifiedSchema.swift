import Foundation

/// The common CRM schema (contacts, accounts, leads, opportunities) and its default mappings to each
/// provider's fields. The api checks a unified record with it; the writer maps it, so that one record
/// lands in Salesforce or HubSpot by the same request.
public enum UnifiedObject: String, Codable, Sendable, CaseIterable {
    case contacts
    case accounts
    case leads
    case opportunities

    /// The provider's object, or nil where the provider has none.
    public func providerObject(_ provider: Provider) -> String? {
        switch (self, provider) {
        case (.contacts, .salesforce): return "Contact"
        case (.contacts, .hubspot): return "contacts"
        case (.accounts, .salesforce): return "Account"
        case (.accounts, .hubspot): return "companies"
        case (.leads, .salesforce): return "Lead"
        case (.leads, .hubspot): return nil
        case (.opportunities, .salesforce): return "Opportunity"
        case (.opportunities, .hubspot): return "deals"
        }
    }

    /// The keys an upsert may match on, per provider.
    public func upsertKeys(_ provider: Provider) -> [String] {
        switch (self, provider) {
        case (.contacts, _), (.leads, .salesforce): return ["email"]
        case (.accounts, .salesforce): return ["website"]
        case (.accounts, .hubspot): return ["domain", "website"]
        default: return []
        }
    }

    /// The provider field an upsert key matches.
    public func upsertField(_ key: String, _ provider: Provider) -> String? {
        switch (key, provider) {
        case ("email", .salesforce): return "Email"
        case ("email", .hubspot): return "email"
        case ("website", .salesforce): return "Website"
        case ("website", .hubspot): return "website"
        case ("domain", .hubspot): return "domain"
        default: return nil
        }
    }

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

    /// The provider's fields for a unified record, and a warning for each value the provider has no
    /// field for. `custom_fields` pass through under the names `customMappings` gives them (the
    /// installation's own fields), else as they are.
    public func providerFields(
        _ record: [String: JSONValue], provider: Provider, customMappings: [String: String] = [:]
    ) -> (fields: [String: JSONValue], warnings: [String]) {
        var fields: [String: JSONValue] = [:]
        var warnings: [String] = []
        let simple = simpleFields(provider)
        for (key, value) in record {
            if let field = simple[key] {
                fields[field] = key == "close_date" && provider == .salesforce ? Self.date(value) : value
                continue
            }
            switch key {
            case "email_addresses":
                if let email = Self.pick(value, typeKey: "email_address_type", order: ["primary", "work", "other"])?["email_address"] {
                    fields[provider == .salesforce ? "Email" : "email"] = email
                }
            case "phone_numbers":
                for (type, field) in phoneFields(provider) {
                    if let phone = Self.pick(value, typeKey: "phone_number_type", order: [type], fallback: false)?["phone_number"] {
                        fields[field] = phone
                    }
                }
            case "addresses":
                for (types, prefix) in addressFields(provider) {
                    guard let address = Self.pick(value, typeKey: "address_type", order: types, fallback: false) else { continue }
                    for (part, field) in addressParts(provider, prefix: prefix) {
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
                    warnings.append("\(key) has no \(provider == .salesforce ? "Salesforce" : "HubSpot") field "
                        + "on \(providerObject(provider) ?? rawValue); it was not written")
                }
            }
        }
        return (fields, warnings.sorted())
    }

    private func simpleFields(_ provider: Provider) -> [String: String] {
        switch (self, provider) {
        case (.contacts, .salesforce):
            return ["first_name": "FirstName", "last_name": "LastName", "account_id": "AccountId", "owner_id": "OwnerId"]
        case (.contacts, .hubspot):
            return ["first_name": "firstname", "last_name": "lastname", "account_id": "associatedcompanyid",
                    "owner_id": "hubspot_owner_id", "lifecycle_stage": "lifecyclestage"]
        case (.accounts, .salesforce):
            return ["name": "Name", "description": "Description", "industry": "Industry",
                    "number_of_employees": "NumberOfEmployees", "website": "Website", "owner_id": "OwnerId"]
        case (.accounts, .hubspot):
            return ["name": "name", "description": "description", "industry": "industry",
                    "number_of_employees": "numberofemployees", "website": "website", "owner_id": "hubspot_owner_id",
                    "lifecycle_stage": "lifecyclestage"]
        case (.leads, _):
            return ["first_name": "FirstName", "last_name": "LastName", "company": "Company", "lead_source": "LeadSource",
                    "title": "Title", "owner_id": "OwnerId"]
        case (.opportunities, .salesforce):
            return ["amount": "Amount", "close_date": "CloseDate", "description": "Description", "name": "Name",
                    "stage": "StageName", "account_id": "AccountId", "owner_id": "OwnerId"]
        case (.opportunities, .hubspot):
            return ["amount": "amount", "close_date": "closedate", "description": "description", "name": "dealname",
                    "stage": "dealstage", "pipeline": "pipeline", "owner_id": "hubspot_owner_id"]
        }
    }

    private func phoneFields(_ provider: Provider) -> [(String, String)] {
        switch (self, provider) {
        case (.contacts, .salesforce): return [("primary", "Phone"), ("mobile", "MobilePhone"), ("fax", "Fax"), ("other", "OtherPhone")]
        case (.contacts, .hubspot): return [("primary", "phone"), ("mobile", "mobilephone"), ("fax", "fax")]
        case (.accounts, .salesforce): return [("primary", "Phone"), ("fax", "Fax")]
        case (.accounts, .hubspot): return [("primary", "phone")]
        default: return []
        }
    }

    /// Which address types go to which group of fields (a prefix for Salesforce's compound addresses).
    private func addressFields(_ provider: Provider) -> [([String], String)] {
        switch (self, provider) {
        case (.contacts, .salesforce): return [(["mailing", "primary"], "Mailing"), (["other"], "Other")]
        case (.accounts, .salesforce): return [(["billing", "primary"], "Billing"), (["shipping"], "Shipping")]
        case (.leads, .salesforce): return [(["primary", "mailing", "other", "billing", "shipping"], "")]
        case (_, .hubspot): return [(["primary", "mailing", "billing", "other", "shipping"], "")]
        default: return []
        }
    }

    private func addressParts(_ provider: Provider, prefix: String) -> [(String, String)] {
        switch provider {
        case .salesforce:
            return [("street", prefix + "Street"), ("city", prefix + "City"), ("state", prefix + "State"),
                    ("postal_code", prefix + "PostalCode"), ("country", prefix + "Country")]
        case .hubspot:
            return [("street", "address"), ("city", "city"), ("state", "state"), ("postal_code", "zip"), ("country", "country")]
        }
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

    /// Salesforce's CloseDate is a date: `2022-02-10T00:00:00Z` → `2022-02-10`.
    static func date(_ value: JSONValue) -> JSONValue {
        guard let text = value.stringValue, text.count > 10 else { return value }
        return .string(String(text.prefix(10)))
    }
}

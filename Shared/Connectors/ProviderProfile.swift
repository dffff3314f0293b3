import Foundation
import Shared

/// What the rest of Writeback knows about a provider without calling it: its names, its record id, how
/// its objects are named, which objects the action catalog serves, and how it holds the common CRM
/// schema. Each provider's folder declares its own; `Provider.profile` finds it.
public struct ProviderProfile: Sendable {
    public var provider: Provider
    /// As people write it ("Salesforce").
    public var displayName: String
    /// The field that holds a record's id (a bulk delete's primary key, a column of every object).
    public var recordIdField: String
    /// Whether field names match whatever their case (Salesforce's do).
    public var fieldNamesIgnoreCase: Bool
    /// Said after a list of unknown fields, to help find the right names.
    public var customFieldHint: String?
    /// Whether list and search reads page with a cursor (`after`).
    public var pagesWithCursor: Bool
    /// Whether a bulk CSV write goes to the provider's bulk job API (`SalesforceBulk`); otherwise it is
    /// written in batches through the connector.
    public var bulkJobs = false
    /// Standard object names (lower case, singular and plural) → the provider's object.
    public var objectAliases: [String: String]
    /// Object names that are the provider's own although not aliases (lower case).
    public var knownObjects: Set<String>
    /// Patterns a custom object's name matches.
    public var objectPatterns: [String]
    /// Why a name is not one of the provider's objects, and what to write instead.
    public var objectAdvice: String
    /// The objects the action catalog serves: (singular noun, plural noun, provider object).
    public var catalogObjects: [CatalogObject]
    /// How the provider holds each object of the common schema it has.
    public var unified: [UnifiedObject: UnifiedMapping]

    /// The provider's own object for an object name of an integration: standard names map
    /// case-insensitively (contact → Contact / contacts), anything else passes through.
    public func objectName(for name: String) -> String {
        objectAliases[name.lowercased()] ?? name
    }

    /// Nil when `name` can be one of the provider's objects; else why not.
    public func objectNameProblem(_ name: String) -> String? {
        if objectAliases[name.lowercased()] != nil || knownObjects.contains(name.lowercased()) { return nil }
        if objectPatterns.contains(where: { name.range(of: $0, options: .regularExpression) != nil }) { return nil }
        return "'\(name)' is not a \(displayName) object: \(objectAdvice)"
    }
}

/// An object the action catalog serves.
public struct CatalogObject: Sendable {
    public var noun: String
    public var plural: String
    public var object: String

    public init(_ noun: String, _ plural: String, _ object: String) {
        self.noun = noun
        self.plural = plural
        self.object = object
    }
}

extension ProviderProfile {
    /// The common aliases of the CRM's standard objects, each to the provider's name.
    static func aliases(_ pairs: [(String, String?)]) -> [String: String] {
        let forms: [String: [String]] = [
            "contact": ["contact", "contacts"], "account": ["account", "accounts", "company", "companies"],
            "lead": ["lead", "leads"], "opportunity": ["opportunity", "opportunities", "deal", "deals"],
            "ticket": ["ticket", "tickets"], "user": ["user", "users"], "person": ["person", "persons", "people"],
            "organization": ["organization", "organizations"],
        ]
        var aliases: [String: String] = [:]
        for (standard, object) in pairs {
            guard let object else { continue }
            for form in forms[standard] ?? [standard] { aliases[form] = object }
        }
        return aliases
    }
}

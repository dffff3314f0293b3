/// The SaaS providers Writeback writes to.
public enum Provider: String, Codable, Sendable, CaseIterable {
    case salesforce
    case hubspot

    /// The provider's own object for an object name of an integration: standard names map
    /// case-insensitively (contact → Contact / contacts), anything else passes through.
    public func providerObject(for objectName: String) -> String {
        let known: [String: (salesforce: String, hubspot: String)] = [
            "contact": ("Contact", "contacts"), "contacts": ("Contact", "contacts"),
            "account": ("Account", "companies"), "accounts": ("Account", "companies"),
            "company": ("Account", "companies"), "companies": ("Account", "companies"),
            "lead": ("Lead", "leads"), "leads": ("Lead", "leads"),
            "opportunity": ("Opportunity", "deals"), "opportunities": ("Opportunity", "deals"),
            "deal": ("Opportunity", "deals"), "deals": ("Opportunity", "deals"),
            "ticket": ("Case", "tickets"), "tickets": ("Case", "tickets"),
            "user": ("User", "users"), "users": ("User", "users"),
        ]
        guard let mapped = known[objectName.lowercased()] else { return objectName }
        switch self {
        case .salesforce: return mapped.salesforce
        case .hubspot: return mapped.hubspot
        }
    }
}

public enum WriteType: String, Codable, Sendable, CaseIterable {
    case create
    case update
    case delete
    /// Update the record that matches, or create it when none does (the unified API's `_upsert`).
    case upsert

    /// Sending it twice leaves the provider as sending it once.
    public var isIdempotent: Bool { self != .create }
}

public enum WriteMode: String, Codable, Sendable, CaseIterable {
    case synchronous
    case asynchronous
    /// A bulk CSV write: many records of one object, upserted or deleted, from a CSV.
    case bulk
}

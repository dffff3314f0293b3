/// The SaaS providers Writeback writes to. What each one is lives with its connector (`Provider.profile`).
public enum Provider: String, Codable, Sendable, CaseIterable {
    case salesforce
    case hubspot
    case pipedrive
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

import HTTPClient
import Shared

/// What a token refresh came to.
public enum TokenRefresh: Sendable, Equatable {
    /// A new access token (and, where the provider rotates them, a new refresh token or instance URL).
    case refreshed(accessToken: String, refreshToken: String?, instanceURL: String?)
    /// The provider refused the refresh token or client: the customer has to connect again.
    case refused(WriteError)
    /// The token endpoint could not be reached or failed: worth trying again later.
    case unavailable(WriteError)
}

/// One single-record write, in the provider's terms.
public struct ConnectorWrite: Sendable {
    public var type: WriteType
    /// The provider's object (Contact, contacts, …).
    public var object: String
    public var recordId: String?
    public var fields: [String: JSONValue]
    public var associations: JSONValue?
    /// For an upsert: the field to match and the values, any of which matches.
    public var upsertOn: ConnectorUpsert?

    public init(
        type: WriteType, object: String, recordId: String?, fields: [String: JSONValue], associations: JSONValue?,
        upsertOn: ConnectorUpsert? = nil
    ) {
        self.upsertOn = upsertOn
        self.type = type
        self.object = object
        self.recordId = recordId
        self.fields = fields
        self.associations = associations
    }
}

public struct ConnectorUpsert: Sendable, Equatable {
    public var field: String
    public var values: [String]

    public init(field: String, values: [String]) {
        self.field = field
        self.values = values
    }
}

/// What a provider made of a write.
public enum ConnectorOutcome: Sendable, Equatable {
    /// Applied. `data` is the record as the provider describes it after the write.
    case applied(recordId: String, data: [String: JSONValue], status: Int)
    /// Refused for good (validation, not found, auth): sending it again would not help.
    case rejected(WriteError, status: Int)
    /// Not applied for now (rate limit, outage, lock): worth sending again later. `notSent` is true when
    /// the request cannot have reached the provider.
    case retryable(WriteError, status: Int?, notSent: Bool)
    /// The access token was refused (expired or revoked): not applied; refresh the token and send again.
    case unauthorized(WriteError, status: Int)
    /// Refused for the connection's request limit (HubSpot 429, Salesforce 403 REQUEST_LIMIT_EXCEEDED):
    /// not applied; send again once the window (`daily`: the day's budget) has room.
    case rateLimited(WriteError, status: Int, daily: Bool)
}

/// What a provider's answer said about the connection's request limits.
public struct RateLimitReport: Sendable, Equatable {
    /// Calls allowed per short window, left in the current one, and the window's length (HubSpot's
    /// ten-secondly limit).
    public var windowMax: Int?
    public var windowRemaining: Int?
    public var windowSeconds: Double?
    /// The long budget (HubSpot's day, Salesforce's rolling 24 hours): calls allowed, and left.
    public var dailyMax: Int?
    public var dailyRemaining: Int?

    public init(windowMax: Int? = nil, windowRemaining: Int? = nil, windowSeconds: Double? = nil, dailyMax: Int? = nil,
                dailyRemaining: Int? = nil)
    {
        self.windowMax = windowMax
        self.windowRemaining = windowRemaining
        self.windowSeconds = windowSeconds
        self.dailyMax = dailyMax
        self.dailyRemaining = dailyRemaining
    }
}

/// A provider's answer to a write: the outcome, and the limits it reported (nil: no answer, or none).
public struct ConnectorResponse: Sendable, Equatable {
    public var outcome: ConnectorOutcome
    public var limits: RateLimitReport?
    /// For a batch the provider answered: each record's outcome (applied or rejected), in request order.
    public var items: [ConnectorOutcome]?

    public init(_ outcome: ConnectorOutcome, limits: RateLimitReport? = nil) {
        self.outcome = outcome
        self.limits = limits
    }

    /// Whether the provider answered at all (not a transport failure).
    public var answered: Bool {
        if case .retryable(_, nil, _) = outcome { return false }
        return true
    }
}

extension ConnectorOutcome {
    /// applied, rejected or retryable: a metrics label.
    public var name: String {
        switch self {
        case .applied: return "applied"
        case .rejected: return "rejected"
        case .retryable: return "retryable"
        case .unauthorized: return "unauthorized"
        case .rateLimited: return "rate_limited"
        }
    }
}

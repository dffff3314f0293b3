import Shared

/// Everything the simulated providers hold, in memory.
struct SandboxState: Sendable {
    struct SalesforceRecord: Sendable {
        var object: String
        var fields: [String: JSONValue]
        var deleted = false
    }

    struct HubSpotObject: Sendable {
        var type: String
        var properties: [String: JSONValue]
        var createdAt: String
        var updatedAt: String
        var archived = false
    }

    /// Salesforce records by id.
    var salesforce: [String: SalesforceRecord] = [:]
    /// HubSpot objects by type, then id.
    var hubspot: [String: [String: HubSpotObject]] = [:]
    var nextSalesforceNumber = 1
    var nextHubSpotNumber = 1001
    /// Every write call received, in arrival order.
    var requests: [LoggedRequest] = []
    var latencyMilliseconds = 0
    /// Access tokens by value: which provider and org, and when they stop working (nil: until expired by
    /// a test).
    var accessTokens: [String: AccessToken] = [:]
    /// The org of each refresh token; tokens it issues belong to that org.
    var refreshTokenOrgs: [String: String] = [:]
    /// Refresh tokens that no longer work.
    var revokedRefreshTokens: Set<String> = []
    var issuedTokens = 0
    /// Orgs by `provider/name`, made on first use with the provider's default limits.
    var orgs: [String: Org] = [:]
    /// HubSpot associations: `type/id` → `type/id` → association type ids.
    var hubspotAssociations: [String: [String: Set<Int>]] = [:]
    /// The org whose Salesforce call is being applied, set under the lock before applying it: its
    /// declared schema (if any) is the one that validates.
    var salesforceOrg = "default"
    /// Bulk API 2.0 ingest jobs by id.
    var bulkJobs: [String: BulkJob] = [:]
    /// Faults the next write calls meet, in order, by `provider` (any org) or `provider/org`.
    var faults: [String: [Fault]] = [:]

    struct AccessToken: Sendable {
        var provider: String
        var org: String
        var expires: Double?
    }

    mutating func newSalesforceId(prefix: String) -> String {
        defer { nextSalesforceNumber += 1 }
        let digits = String(nextSalesforceNumber, radix: 36, uppercase: true)
        let body = String(repeating: "0", count: max(0, 12 - digits.count)) + digits
        return prefix + body + "AAA"
    }

    mutating func newHubSpotId() -> String {
        defer { nextHubSpotNumber += 1 }
        return String(nextHubSpotNumber)
    }
}

/// A failure a test asks a provider to show on one of its next write calls.
struct Fault: Codable, Sendable {
    /// `error`: answer `status` (default 500) with the provider's error body, applying nothing;
    /// `delay`: wait `delayMilliseconds`, then handle the call (a client that gave up may find it applied);
    /// `lock`: Salesforce's UNABLE_TO_LOCK_ROW; `drop`: close the connection without an answer, applying
    /// nothing.
    var kind: String
    var status: Int?
    var delayMilliseconds: Int?
}

/// One write call as the sandbox received it, readable by tests at `GET /_sandbox/requests`.
struct LoggedRequest: Codable, Sendable {
    var sequence: Int
    var provider: String
    var method: String
    var path: String
    var object: String
    var recordId: String?
    var status: Int
    var body: JSONValue?
    var receivedAt: String
}

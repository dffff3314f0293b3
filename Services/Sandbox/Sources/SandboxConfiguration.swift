/// How the sandbox runs.
public struct SandboxConfiguration: Sendable {
    /// Listen address. Default 127.0.0.1:8090.
    public var host: String = "127.0.0.1"
    public var port: Int = 8090
    /// Bearer tokens Salesforce accepts (default `sandbox-salesforce-token`). `token@org` puts a token in
    /// an org of its own (limits, latency and faults are per org); a bare token is in the `default` org.
    public var salesforceTokens: Set<String> = ["sandbox-salesforce-token"]
    /// Bearer tokens HubSpot accepts (default `sandbox-hubspot-token`).
    public var hubspotTokens: Set<String> = ["sandbox-hubspot-token"]
    /// API tokens and OAuth bearer tokens Pipedrive accepts (default `sandbox-pipedrive-token`).
    public var pipedriveTokens: Set<String> = ["sandbox-pipedrive-token"]
    /// The OAuth client every token endpoint accepts.
    public var clientId = "sandbox-client-id"
    public var clientSecret = "sandbox-client-secret"
    /// Refresh tokens each token endpoint accepts (defaults `sandbox-salesforce-refresh-token`,
    /// `sandbox-hubspot-refresh-token`).
    public var salesforceRefreshTokens: Set<String> = ["sandbox-salesforce-refresh-token"]
    public var hubspotRefreshTokens: Set<String> = ["sandbox-hubspot-refresh-token"]
    public var pipedriveRefreshTokens: Set<String> = ["sandbox-pipedrive-refresh-token"]
    /// Lifetime of an access token issued by a refresh, in seconds (Salesforce's default session
    /// timeout is 2 hours; HubSpot's tokens live 30 minutes).
    public var salesforceTokenLifetime: Double = 7200
    public var hubspotTokenLifetime: Double = 1800
    /// Pipedrive's access tokens live about an hour.
    public var pipedriveTokenLifetime: Double = 3599
    /// The limits each org starts with (changeable per org at run time): HubSpot 190 calls per 10 s and
    /// 625,000 a day; Salesforce 1,000,000 calls per rolling 24 hours.
    public var hubspotLimits = OrgLimits.hubspot
    public var salesforceLimits = OrgLimits.salesforce
    /// Pipedrive: 80 calls per 2 s per token (an Essential plan's OAuth burst limit), 10,000 writes a day.
    public var pipedriveLimits = OrgLimits.pipedrive
    /// Added to every provider call, in milliseconds (default 0). Changeable at run time.
    public var latencyMilliseconds: Int = 0
    /// The most a Bulk API 2.0 job's upload may hold (`SANDBOX_BULK_MAX_UPLOAD_BYTES`); Salesforce's is
    /// 150 MB base64-encoded, 100 MB of CSV.
    public var bulkMaxUploadBytes = 100_000_000

    public init() {}
}

/// How the sandbox runs.
public struct SandboxConfiguration: Sendable {
    /// Listen address. Default 127.0.0.1:8090.
    public var host: String = "127.0.0.1"
    public var port: Int = 8090
    /// Bearer tokens Salesforce accepts (default `sandbox-salesforce-token`).
    public var salesforceTokens: Set<String> = ["sandbox-salesforce-token"]
    /// Bearer tokens HubSpot accepts (default `sandbox-hubspot-token`).
    public var hubspotTokens: Set<String> = ["sandbox-hubspot-token"]
    /// Added to every provider call, in milliseconds (default 0). Changeable at run time.
    public var latencyMilliseconds: Int = 0

    public init() {}
}

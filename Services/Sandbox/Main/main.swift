import Pipeline
import Sandbox
import Shared

// writeback-sandbox: the simulated Salesforce and HubSpot APIs. Configuration from the environment.
let environment = ServiceEnvironment()
/// A comma-separated list, or the default.
func list(_ name: String, default value: Set<String>) -> Set<String> {
    environment.values[name].map { Set($0.split(separator: ",").map(String.init)) } ?? value
}
var configuration = SandboxConfiguration()
configuration.host = environment.string("SANDBOX_HOST", default: configuration.host)
configuration.port = environment.int("SANDBOX_PORT", default: configuration.port)
configuration.bulkMaxUploadBytes = environment.int("SANDBOX_BULK_MAX_UPLOAD_BYTES", default: configuration.bulkMaxUploadBytes)
configuration.salesforceTokens = list("SANDBOX_SALESFORCE_TOKENS", default: configuration.salesforceTokens)
configuration.hubspotTokens = list("SANDBOX_HUBSPOT_TOKENS", default: configuration.hubspotTokens)
configuration.salesforceRefreshTokens = list("SANDBOX_SALESFORCE_REFRESH_TOKENS", default: configuration.salesforceRefreshTokens)
configuration.hubspotRefreshTokens = list("SANDBOX_HUBSPOT_REFRESH_TOKENS", default: configuration.hubspotRefreshTokens)
configuration.pipedriveTokens = list("SANDBOX_PIPEDRIVE_TOKENS", default: configuration.pipedriveTokens)
configuration.pipedriveRefreshTokens = list("SANDBOX_PIPEDRIVE_REFRESH_TOKENS", default: configuration.pipedriveRefreshTokens)
configuration.clientId = environment.string("SANDBOX_CLIENT_ID", default: configuration.clientId)
configuration.clientSecret = environment.string("SANDBOX_CLIENT_SECRET", default: configuration.clientSecret)
configuration.latencyMilliseconds = environment.int("SANDBOX_LATENCY_MS", default: 0)
/// A limit from the environment; 0 means none.
func limit(_ name: String, default value: Int?) -> Int? {
    let number = environment.int(name, default: value ?? 0)
    return number > 0 ? number : nil
}
configuration.hubspotLimits.windowMax = limit("SANDBOX_HUBSPOT_WINDOW_MAX", default: configuration.hubspotLimits.windowMax)
configuration.hubspotLimits.windowMilliseconds = environment.int(
    "SANDBOX_HUBSPOT_WINDOW_MS", default: configuration.hubspotLimits.windowMilliseconds)
configuration.hubspotLimits.dailyMax = limit("SANDBOX_HUBSPOT_DAILY_MAX", default: configuration.hubspotLimits.dailyMax)
configuration.pipedriveLimits.windowMax = limit("SANDBOX_PIPEDRIVE_WINDOW_MAX", default: configuration.pipedriveLimits.windowMax)
configuration.pipedriveLimits.dailyMax = limit("SANDBOX_PIPEDRIVE_DAILY_MAX", default: configuration.pipedriveLimits.dailyMax)
configuration.salesforceLimits.dailyMax = limit("SANDBOX_SALESFORCE_DAILY_MAX", default: configuration.salesforceLimits.dailyMax)

try await runService(label: "sandbox", environment: environment, metricsPort: nil) {
    [try Sandbox(configuration: configuration).makeService(logger: $0)]
}

import Foundation
import Pipeline
import Sandbox
import Shared

// writeback-sandbox: the simulated Salesforce and HubSpot APIs. Configuration from the environment.
let environment = ProcessInfo.processInfo.environment
var configuration = SandboxConfiguration()
configuration.host = environment["SANDBOX_HOST"] ?? configuration.host
configuration.port = environment["SANDBOX_PORT"].flatMap(Int.init) ?? configuration.port
if let tokens = environment["SANDBOX_SALESFORCE_TOKENS"] {
    configuration.salesforceTokens = Set(tokens.split(separator: ",").map(String.init))
}
if let tokens = environment["SANDBOX_HUBSPOT_TOKENS"] {
    configuration.hubspotTokens = Set(tokens.split(separator: ",").map(String.init))
}
configuration.latencyMilliseconds = environment["SANDBOX_LATENCY_MS"].flatMap(Int.init) ?? 0

try await runService(label: "sandbox", environment: ServiceEnvironment(environment), metricsPort: nil) {
    Sandbox(configuration: configuration).makeApplication(logger: $0)
}

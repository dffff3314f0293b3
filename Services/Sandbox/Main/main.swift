import Foundation
import Logging
import Sandbox
import ServiceLifecycle

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

var logger = Logger(label: "sandbox")
logger.logLevel = environment["LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
let app = Sandbox(configuration: configuration).makeApplication(logger: logger)
let group = ServiceGroup(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
try await group.run()

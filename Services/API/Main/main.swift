import API
import Connectors
import HTTPClient
import Kafka
import Pipeline
import Secrets
import Shared

// writeback-api: the HTTP ingress. Configuration from the environment.
let environment = ServiceEnvironment()
var configuration = APIConfiguration(
    kafka: KafkaConfiguration(environment), controlDatabaseURL: environment.controlDatabaseURL,
    secrets: required("api") { try SecretBox(environment: environment.values) })
configuration.host = environment.string("API_HOST", default: configuration.host)
configuration.port = environment.int("API_PORT", default: configuration.port)
configuration.syncTimeout = environment.double("API_SYNC_TIMEOUT_SECONDS", default: configuration.syncTimeout)
configuration.controlCacheSeconds = environment.double("API_CONTROL_CACHE_SECONDS", default: configuration.controlCacheSeconds)
configuration.maxBodyBytes = environment.int("API_MAX_BODY_BYTES", default: configuration.maxBodyBytes)
configuration.publicURL = environment.values["API_PUBLIC_URL"].flatMap { $0.isEmpty ? nil : $0 }
configuration.hosts = ProviderHosts(environment: environment.values)
configuration.providerTimeout = environment.double("API_PROVIDER_TIMEOUT_SECONDS", default: configuration.providerTimeout)
configuration.metadataCacheSeconds = environment.double("API_METADATA_CACHE_SECONDS", default: configuration.metadataCacheSeconds)
configuration.recordsURL = GuardedDownload(environment: environment)
configuration.webhookURLs = URLGuard(allow: environment.string("WRITEBACK_WEBHOOK_URL_ALLOW", default: "").split(separator: ",").map(String.init))
try await runService(label: "api", environment: environment, metricsPort: 9101) {
    try await API.services(configuration: configuration, logger: $0)
}

import API
import Kafka
import Pipeline
import Shared

// writeback-api: the HTTP ingress. Configuration from the environment.
let environment = ServiceEnvironment()
var configuration = APIConfiguration(kafka: KafkaConfiguration(environment), controlDatabaseURL: environment.controlDatabaseURL)
configuration.host = environment.string("API_HOST", default: configuration.host)
configuration.port = environment.int("API_PORT", default: configuration.port)
configuration.syncTimeout = environment.double("API_SYNC_TIMEOUT_SECONDS", default: configuration.syncTimeout)
configuration.controlCacheSeconds = environment.double("API_CONTROL_CACHE_SECONDS", default: configuration.controlCacheSeconds)
configuration.maxBodyBytes = environment.int("API_MAX_BODY_BYTES", default: configuration.maxBodyBytes)
try await runService(label: "api", environment: environment, metricsPort: 9101) { API(configuration: configuration, logger: $0) }

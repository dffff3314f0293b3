import Kafka
import Pipeline
import Shared
import Writer

// writeback-writer: calls the providers for accepted writes. Configuration from the environment.
let environment = ServiceEnvironment()
var configuration = WriterConfiguration(kafka: KafkaConfiguration(environment), controlDatabaseURL: environment.controlDatabaseURL)
configuration.lanes = environment.int("WRITER_LANES", default: configuration.lanes)
configuration.providerTimeout = environment.double("WRITER_PROVIDER_TIMEOUT_SECONDS", default: configuration.providerTimeout)
configuration.maxAttempts = environment.int("WRITER_MAX_ATTEMPTS", default: configuration.maxAttempts)
configuration.retryBackoff = environment.double("WRITER_RETRY_BACKOFF_SECONDS", default: configuration.retryBackoff)
configuration.maxRetryBackoff = environment.double("WRITER_RETRY_MAX_BACKOFF_SECONDS", default: configuration.maxRetryBackoff)
configuration.installationCacheSeconds = environment.double(
    "WRITER_INSTALLATION_CACHE_SECONDS", default: configuration.installationCacheSeconds)
configuration.httpConcurrency = environment.int("WRITER_HTTP_CONCURRENCY", default: configuration.httpConcurrency)
try await runService(label: "writer", environment: environment, metricsPort: 9102) { Writer(configuration: configuration, logger: $0) }

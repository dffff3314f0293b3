import CMalloc
import Connectors
import HTTPClient
import Kafka
import Pipeline
import Secrets
import Shared
import Writer

// A bulk write's chunks are handled on whichever threads are free; with an allocator arena per thread,
// each would keep its own high-water mark of memory. A few shared arenas keep the process's memory flat.
_ = wb_malloc_arena_max(2)

// writeback-writer: calls the providers for accepted writes. Configuration from the environment.
let environment = ServiceEnvironment()
var configuration = WriterConfiguration(
    kafka: KafkaConfiguration(environment), controlDatabaseURL: environment.controlDatabaseURL,
    secrets: required("writer") { try SecretBox(environment: environment.values) })
configuration.maxInFlight = environment.int("WRITER_MAX_IN_FLIGHT", default: configuration.maxInFlight)
configuration.connectionConcurrency = max(1, environment.int("WRITER_CONNECTION_CONCURRENCY", default: configuration.connectionConcurrency))
configuration.connectionMaxQueued = max(1, environment.int("WRITER_CONNECTION_MAX_QUEUED", default: configuration.connectionMaxQueued))
configuration.holdThreshold = environment.double("WRITER_HOLD_THRESHOLD_SECONDS", default: configuration.holdThreshold)
configuration.journalInterval = .milliseconds(environment.int("WRITER_BATCH_INTERVAL_MS", default: 10))
configuration.providerTimeout = environment.double("WRITER_PROVIDER_TIMEOUT_SECONDS", default: configuration.providerTimeout)
configuration.retryDeadline = environment.double("WRITER_RETRY_DEADLINE_SECONDS", default: configuration.retryDeadline)
configuration.limitPause = environment.double("WRITER_LIMIT_PAUSE_SECONDS", default: configuration.limitPause)
configuration.maxLimitPause = environment.double("WRITER_LIMIT_MAX_PAUSE_SECONDS", default: configuration.maxLimitPause)
configuration.hosts = ProviderHosts(environment: environment.values)
configuration.retryBackoff = environment.double("WRITER_RETRY_BACKOFF_SECONDS", default: configuration.retryBackoff)
configuration.maxRetryBackoff = environment.double("WRITER_RETRY_MAX_BACKOFF_SECONDS", default: configuration.maxRetryBackoff)
configuration.installationCacheSeconds = environment.double(
    "WRITER_INSTALLATION_CACHE_SECONDS", default: configuration.installationCacheSeconds)
configuration.httpConcurrency = environment.int("WRITER_HTTP_CONCURRENCY", default: configuration.httpConcurrency)
configuration.autoBatchMaxDelay = environment.double("WRITER_AUTO_BATCH_MAX_DELAY_SECONDS", default: configuration.autoBatchMaxDelay)
configuration.bulkJobMaxBytes = min(100_000_000, environment.int("WRITER_BULK_JOB_MAX_BYTES", default: configuration.bulkJobMaxBytes))
configuration.bulkPollMaxSeconds = environment.double("WRITER_BULK_POLL_MAX_SECONDS", default: configuration.bulkPollMaxSeconds)
configuration.bulkChunksInFlight = max(1, min(16, environment.int("WRITER_BULK_CHUNKS_IN_FLIGHT", default: configuration.bulkChunksInFlight)))
configuration.recordsURL = GuardedDownload(environment: environment)
try await runService(label: "writer", environment: environment, metricsPort: 9102) {
    try await Writer.services(configuration: configuration, logger: $0)
}

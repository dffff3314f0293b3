import Kafka
import Logging
import ServiceLifecycle
import Shared
import Writer

// writeback-writer: calls the providers for accepted writes. Configuration from the environment.
let environment = ServiceEnvironment()
var configuration = WriterConfiguration(
    kafka: KafkaConfiguration(brokers: environment.kafkaBrokers, properties: environment.kafkaProperties),
    controlDatabaseURL: environment.controlDatabaseURL)
configuration.lanes = environment.int("WRITER_LANES", default: configuration.lanes)
configuration.providerTimeout = environment.double("WRITER_PROVIDER_TIMEOUT_SECONDS", default: configuration.providerTimeout)
configuration.maxAttempts = environment.int("WRITER_MAX_ATTEMPTS", default: configuration.maxAttempts)
configuration.retryBackoff = environment.double("WRITER_RETRY_BACKOFF_SECONDS", default: configuration.retryBackoff)
configuration.httpConcurrency = environment.int("WRITER_HTTP_CONCURRENCY", default: configuration.httpConcurrency)

var logger = Logger(label: "writer")
logger.logLevel = Logger.Level(rawValue: environment.logLevel) ?? .info
let group = ServiceGroup(
    services: [Writer(configuration: configuration, logger: logger)], gracefulShutdownSignals: [.sigterm, .sigint],
    logger: logger)
try await group.run()

import API
import Kafka
import Logging
import ServiceLifecycle
import Shared

// writeback-api: the HTTP ingress. Configuration from the environment.
let environment = ServiceEnvironment()
var configuration = APIConfiguration(
    kafka: KafkaConfiguration(brokers: environment.kafkaBrokers, properties: environment.kafkaProperties),
    controlDatabaseURL: environment.controlDatabaseURL)
configuration.host = environment.string("API_HOST", default: configuration.host)
configuration.port = environment.int("API_PORT", default: configuration.port)
configuration.syncTimeout = environment.double("API_SYNC_TIMEOUT_SECONDS", default: configuration.syncTimeout)
configuration.maxBodyBytes = environment.int("API_MAX_BODY_BYTES", default: configuration.maxBodyBytes)

var logger = Logger(label: "api")
logger.logLevel = Logger.Level(rawValue: environment.logLevel) ?? .info
let group = ServiceGroup(
    services: [API(configuration: configuration, logger: logger)], gracefulShutdownSignals: [.sigterm, .sigint],
    logger: logger)
try await group.run()

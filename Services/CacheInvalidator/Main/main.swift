import CacheInvalidator
import Kafka
import Logging
import ServiceLifecycle
import Shared

// writeback-cache-invalidator: keeps the destination database's copy of each written record.
let environment = ServiceEnvironment()
var configuration = CacheInvalidator.Configuration(
    kafka: KafkaConfiguration(brokers: environment.kafkaBrokers, properties: environment.kafkaProperties),
    destinationDatabaseURL: environment.destinationDatabaseURL)
configuration.lanes = environment.int("CACHE_INVALIDATOR_LANES", default: configuration.lanes)

var logger = Logger(label: "cache-invalidator")
logger.logLevel = Logger.Level(rawValue: environment.logLevel) ?? .info
let group = ServiceGroup(
    services: [CacheInvalidator(configuration: configuration, logger: logger)], gracefulShutdownSignals: [.sigterm, .sigint],
    logger: logger)
try await group.run()

import Kafka
import Logging
import Operations
import ServiceLifecycle
import Shared

// writeback-operations: records every operation and its log in the control database.
let environment = ServiceEnvironment()
var configuration = OperationsRecorder.Configuration(
    kafka: KafkaConfiguration(brokers: environment.kafkaBrokers, properties: environment.kafkaProperties),
    controlDatabaseURL: environment.controlDatabaseURL)
configuration.lanes = environment.int("OPERATIONS_LANES", default: configuration.lanes)

var logger = Logger(label: "operations")
logger.logLevel = Logger.Level(rawValue: environment.logLevel) ?? .info
let group = ServiceGroup(
    services: [OperationsRecorder(configuration: configuration, logger: logger)],
    gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
try await group.run()

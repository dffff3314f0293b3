import Kafka
import Operations
import Pipeline
import Shared

// writeback-operations: records every operation and its log in the control database.
let environment = ServiceEnvironment()
var configuration = OperationsRecorder.configuration(
    kafka: KafkaConfiguration(environment), controlDatabaseURL: environment.controlDatabaseURL)
configuration.maxInFlight = environment.int("OPERATIONS_MAX_IN_FLIGHT", default: configuration.maxInFlight)
configuration.batchInterval = .milliseconds(environment.int("OPERATIONS_BATCH_INTERVAL_MS", default: 10))
try await runService(label: "operations", environment: environment, metricsPort: 9104) {
    try await OperationsRecorder.services(configuration: configuration, logger: $0)
}

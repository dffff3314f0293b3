import CacheInvalidator
import Kafka
import Pipeline
import Shared

// writeback-cache-invalidator: keeps the destination database's copy of each written record.
let environment = ServiceEnvironment()
var configuration = CacheInvalidator.configuration(
    kafka: KafkaConfiguration(environment), destinationDatabaseURL: environment.destinationDatabaseURL)
configuration.maxInFlight = environment.int("CACHE_INVALIDATOR_MAX_IN_FLIGHT", default: configuration.maxInFlight)
configuration.batchInterval = .milliseconds(environment.int("CACHE_INVALIDATOR_BATCH_INTERVAL_MS", default: 10))
try await runService(label: "cache-invalidator", environment: environment, metricsPort: 9103) {
    try await CacheInvalidator.services(configuration: configuration, logger: $0)
}

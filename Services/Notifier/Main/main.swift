import HTTPClient
import Kafka
import Notifier
import Pipeline
import Secrets
import Shared

// writeback-notifier: delivers notifications to the projects' webhook destinations.
let environment = ServiceEnvironment()
var consumer = Notifier.consumer(kafka: KafkaConfiguration(environment), controlDatabaseURL: environment.controlDatabaseURL)
consumer.batchInterval = .milliseconds(environment.int("NOTIFIER_BATCH_INTERVAL_MS", default: 10))
var configuration = NotifierConfiguration(consumer: consumer, secrets: required("notifier") { try SecretBox(environment: environment.values) })
configuration.guardrail = URLGuard(allow: environment.string("WRITEBACK_WEBHOOK_URL_ALLOW", default: "").split(separator: ",").map(String.init))
configuration.timeout = environment.double("NOTIFIER_TIMEOUT_SECONDS", default: configuration.timeout)
configuration.maxResponseBytes = environment.int("NOTIFIER_MAX_RESPONSE_BYTES", default: configuration.maxResponseBytes)
configuration.maxInFlight = environment.int("NOTIFIER_MAX_IN_FLIGHT", default: configuration.maxInFlight)
configuration.maxInFlightPerDestination = environment.int("NOTIFIER_MAX_IN_FLIGHT_PER_DESTINATION",
                                                          default: configuration.maxInFlightPerDestination)
configuration.maxInFlightPerProject = environment.int("NOTIFIER_MAX_IN_FLIGHT_PER_PROJECT", default: configuration.maxInFlightPerProject)
configuration.disableAfter = environment.double("NOTIFIER_DISABLE_AFTER_SECONDS", default: configuration.disableAfter)
configuration.retention = environment.double("NOTIFIER_RETENTION_DAYS", default: 30) * 86_400
configuration.pollInterval = .milliseconds(environment.int("NOTIFIER_POLL_MS", default: 500))
configuration.schedule = environment.parsed("NOTIFIER_RETRY_SCHEDULE", default: configuration.schedule,
                                            expected: "seconds separated by commas, e.g. 5,300,1800", RetrySchedule.init(text:))
try await runService(label: "notifier", environment: environment, metricsPort: 9105) {
    try await Notifier.services(configuration: configuration, logger: $0)
}

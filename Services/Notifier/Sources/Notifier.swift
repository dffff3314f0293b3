import HTTPClient
import Kafka
import Logging
import Pipeline
import Postgres
import Schema
import ServiceLifecycle
import Shared

/// Delivers notifications to webhook destinations. Consumes `notifications` a batch at a time and
/// stores, in one statement, the events that a route leads somewhere with a pending delivery per
/// destination (an event told twice is stored once); only then are their offsets committed. The
/// `Dispatcher` sends what is due. A slow or dead endpoint delays only its own deliveries: the topic is
/// read on whatever the endpoints do, and each destination has a bounded share of the attempts.
public enum Notifier {
    /// Group `writeback-notifier`; the database is the control database.
    public static func consumer(kafka: KafkaConfiguration, controlDatabaseURL: String) -> ConsumerServiceConfiguration {
        ConsumerServiceConfiguration(kafka: kafka, databaseURL: controlDatabaseURL, groupID: "writeback-notifier")
    }

    /// The services of the notifier, in the order its `ServiceGroup` runs them.
    public static func services(configuration: NotifierConfiguration, logger: Logger) async throws -> [any Service] {
        let database = try await configuration.consumer.openDatabase(name: "control", migrations: ControlSchema.migrations)
        let producer = try KafkaProducer(configuration: configuration.consumer.kafka)
        let client = HTTPClient(configuration: .init(concurrency: configuration.maxInFlight, connectTimeout: min(10, configuration.timeout)),
                                name: "notifier-http")
        let letters = DeadLetters(producer: producer, service: "notifier", logger: logger)
        let dispatcher = Dispatcher(
            database: database, sender: WebhookSender(client: client, configuration: configuration),
            publisher: NotificationPublisher(producer: producer, logger: logger), configuration: configuration, logger: logger)
        let processing = try configuration.consumer.batchProcessing(topics: [Topics.notifications], logger: logger) { messages in
            var events: [(message: KafkaMessage, event: NotificationEvent)] = []
            for message in messages {
                do {
                    events.append((message, try NotificationEvent(json: message.value)))
                } catch {
                    try await letters.unreadable(message, reason: error)
                }
            }
            try await database.apply(
                together: events, statements: { [PostgresPool.customPlans, NotificationStatements.store($0.map { ($0.event, $0.message.value) })] },
                logger: logger
            ) { item, error in
                try await letters.unreadable(item.message, reason: "storing it failed: \(error)")
            }
            Meters.counter("writeback_notifications_total").increment(by: events.count)
            dispatcher.wake.notify()
        }
        return [ReleasingService { database.shutdown(); client.shutdown() }, producer] + processing + [dispatcher]
    }
}

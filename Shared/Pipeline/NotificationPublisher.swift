import Kafka
import Logging
import Shared

/// Tells the notifier what happened, on the `notifications` topic keyed by event id: spread over its
/// partitions (events keep no order between them), and a repeated event lands where the first did. Telling is best
/// effort for the api's and the writer's events (the change they tell of is already made and is not
/// undone when the topic cannot be reached; the failure is logged); the operations service waits for
/// its events as for any output of a batch.
public struct NotificationPublisher: Sendable {
    let producer: KafkaProducer
    let logger: Logger

    public init(producer: KafkaProducer, logger: Logger) {
        self.producer = producer
        self.logger = logger
    }

    /// Publishes the events and waits for their acknowledgements.
    public func publish(_ events: [NotificationEvent]) async throws {
        guard !events.isEmpty else { return }
        try await producer.send(try events.map { (topic: Topics.notifications, key: Optional($0.id), value: try $0.encoded()) })
    }

    /// Publishes one event; a failure is logged, not thrown.
    public func tell(_ event: NotificationEvent) async {
        do {
            try await publish([event])
        } catch {
            logger.error("a notification could not be published", metadata: [
                "notificationType": "\(event.type.rawValue)", "event": "\(event.id)", "error": "\(error)"])
        }
    }
}

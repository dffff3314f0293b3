import Schema
import Kafka
import Logging
import Metrics
import Pipeline
import Postgres
import ServiceLifecycle
import Shared

/// Consumes `write-requests`, `write-results`, `cache-updates`, `bulk-progress` and `write-dead-letters`
/// and is the only writer of the operations and operation-log tables. Each input may arrive before the
/// others (they are different topics) and the statements of each commute, so every one upserts the
/// operation and the status is derived from what has arrived: a failed provider answer is `failure`; a
/// successful one becomes `success` once the destination holds it. A message that some service could
/// not read (dead-lettered with its operation) fails that operation; one this service cannot read is
/// dead-lettered too.
public enum OperationsRecorder {
    /// Group `writeback-operations` by default; the database is the control database.
    public static func configuration(kafka: KafkaConfiguration, controlDatabaseURL: String) -> ConsumerServiceConfiguration {
        ConsumerServiceConfiguration(kafka: kafka, databaseURL: controlDatabaseURL, groupID: "writeback-operations")
    }

    static let topics = [Topics.writeRequests, Topics.writeResults, Topics.cacheUpdates, Topics.bulkProgress, Topics.writeDeadLetters]

    /// The services of the operations recorder, in the order its `ServiceGroup` runs them.
    public static func services(configuration: ConsumerServiceConfiguration, logger: Logger) async throws -> [any Service] {
        let database = try await configuration.openDatabase(name: "control", migrations: ControlSchema.migrations)
        let producer = try KafkaProducer(configuration: configuration.kafka)
        let letters = DeadLetters(producer: producer, service: "operations", logger: logger)
        let publisher = NotificationPublisher(producer: producer, logger: logger)
        let processing = try configuration.batchProcessing(topics: topics, logger: logger) { messages in
            var work: [(message: KafkaMessage, input: OperationStatements.Input)] = []
            for message in messages {
                do {
                    guard let input = try Self.input(of: message) else { continue }
                    work.append((message, input))
                } catch where message.topic == Topics.writeDeadLetters {
                    // Already a dead letter, kept on its topic: dead-lettering it again would loop.
                    logger.error("unreadable dead letter left on its topic", metadata: ["offset": "\(message.offset)", "error": "\(error)"])
                } catch {
                    try await letters.unreadable(message, reason: error)
                }
            }
            try await database.apply(together: work, statements: { OperationStatements.batch($0.map(\.input)) }, logger: logger) {
                item, error in
                try await letters.unreadable(item.message, reason: "recording it failed: \(error)")
            }
            for item in work {
                Meters.counter("writeback_operation_updates_total", [("topic", item.message.topic)]).increment()
            }
            // Published before the batch's offsets are committed: a crash repeats them, with the same ids.
            try await publisher.publish(try await finished(Set(work.compactMap { $0.input.operationId }), database: database, logger: logger))
        }
        return [ReleasingService { database.shutdown() }, producer] + processing
    }

    /// `write.async.done` for each of `operations` that has ended (any status but `in_progress`), was
    /// not synchronous, and whose project routes that event somewhere; nothing is read when no project
    /// routes it. The event's id is the operation's, and its time the operation's last update, so that
    /// telling it again (a redelivered result, a repeated batch) tells the same event.
    static func finished(_ operations: Set<String>, database: PostgresPool, logger: Logger) async throws -> [NotificationEvent] {
        guard !operations.isEmpty else { return [] }
        let sql = """
            SELECT \(OperationView.columns) FROM operations o
            WHERE EXISTS (SELECT 1 FROM notification_event_topic_routes WHERE event_type = 'write.async.done')
              AND o.id = ANY($1::uuid[]) AND o.status <> 'in_progress' AND o.mode <> 'synchronous'
              AND EXISTS (SELECT 1 FROM notification_event_topic_routes r
                          WHERE r.project_id = o.project_id AND r.event_type = 'write.async.done')
            """
        // Through `apply`, so that a passing failure (a database restarting) is tried again.
        let answers = try await database.apply(
            together: [Array(operations)],
            statements: { sets in [PostgresPool.customPlans, (sql, [PostgresArray.literal(sets.flatMap { $0 })])] },
            answers: { sets, rows in
                let events = try rows[1].rows.map { row in
                    NotificationEvent(id: try row.string("id"), type: .writeAsyncDone, projectId: try row.string("project_id"),
                                      createTime: try row.string("update_time"), data: ["operation": try OperationView.json(row)])
                }
                return [events] + Array(repeating: [], count: max(0, sets.count - 1))
            }, logger: logger
        ) { _, error in
            logger.error("reading the finished operations was refused", metadata: ["error": "\(error)"])
        }
        return answers.compactMap { $0 }.flatMap { $0 }
    }

    /// What a message tells (nil: nothing for this service); throws when it cannot be read.
    static func input(of message: KafkaMessage) throws -> OperationStatements.Input? {
        switch message.topic {
        case Topics.writeRequests: .accepted(try AcceptedRequest(message: message.value))
        case Topics.writeResults: .answered(try AnsweredResult(message: message.value))
        case Topics.cacheUpdates: .cached(try JSONCoding.decode(CacheUpdateMessage.self, from: message.value))
        case Topics.bulkProgress: .progressed(try JSONCoding.decode(BulkProgressMessage.self, from: message.value))
        case Topics.writeDeadLetters: .unreadable(try JSONCoding.decode(DeadLetter.self, from: message.value))
        default: nil
        }
    }
}

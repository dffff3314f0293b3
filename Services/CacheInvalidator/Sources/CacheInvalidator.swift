import Schema
import Kafka
import Logging
import Metrics
import Pipeline
import Postgres
import ServiceLifecycle
import Shared

/// Consumes `record-changes`, upserts each record into the destination database (an older change never
/// overwrites a newer one), and publishes to `cache-updates` (and, for a synchronous write, to
/// `write-completions` for the api instance its client waits at). A change event it cannot read is
/// dead-lettered with the reason.
public enum CacheInvalidator {
    /// Group `writeback-cache-invalidator` by default; the database is the destination database.
    public static func configuration(kafka: KafkaConfiguration, destinationDatabaseURL: String) -> ConsumerServiceConfiguration {
        ConsumerServiceConfiguration(kafka: kafka, databaseURL: destinationDatabaseURL, groupID: "writeback-cache-invalidator")
    }

    /// The services of a cache-invalidator, in the order its `ServiceGroup` runs them.
    public static func services(configuration: ConsumerServiceConfiguration, logger: Logger) async throws -> [any Service] {
        let database = try await configuration.openDatabase(name: "destination", migrations: DestinationSchema.migrations)
        let producer = try KafkaProducer(configuration: configuration.kafka)
        let letters = DeadLetters(producer: producer, service: "cache-invalidator", logger: logger)
        let processing = try configuration.batchProcessing(topics: [Topics.recordChanges], logger: logger) { messages in
            var events: [(message: KafkaMessage, event: ChangeEvent, upsert: (sql: String, parameters: [String?]))] = []
            for message in messages {
                do {
                    let event = try JSONCoding.decode(ChangeEvent.self, from: message.value)
                    events.append((message, event, try Self.upsert(event.data)))
                } catch {
                    try await letters.unreadable(message, reason: error)
                }
            }
            // In delivery order, in one transaction: a record's changes apply one after another.
            let answers = try await database.apply(events, statements: { [$0.upsert] }, logger: logger) { item, error in
                try await letters.unreadable(item.message, reason: "the destination refused it: \(error)")
            }
            let now = Timestamp.now()
            var updates: [KafkaOutgoing] = []
            for (item, rows) in zip(events, answers) {
                guard let rows else { continue }
                let applied = !(rows.first?.isEmpty ?? true)
                Counter(label: "writeback_destination_upserts_total", dimensions: [("applied", String(applied))]).increment()
                let update = try JSONCoding.encode(CacheUpdateMessage(change: item.event.data, applied: applied, updatedAt: now))
                updates.append(KafkaOutgoing(topic: Topics.cacheUpdates, key: item.event.routingKey, value: update))
                // A synchronous write's client waits at this api instance for the destination to hold it.
                if let replyTo = item.message.header(Topics.replyToHeader) {
                    updates.append(KafkaOutgoing(topic: Topics.writeCompletions, key: replyTo, value: update,
                                                 headers: [KafkaHeader(Topics.replyToHeader, replyTo)]))
                }
            }
            try await untilSucceeded("publishing the cache updates", logger: logger) { [updates] in
                try await producer.send(updates)
            }
        }
        return [ReleasingService { database.shutdown() }, producer] + processing
    }

    /// The statement that writes the change unless the row already holds this or a newer version; it
    /// returns the version when it wrote.
    static func upsert(_ change: ChangeData) throws -> (sql: String, parameters: [String?]) {
        let fields = try JSONCoding.encodeString(change.fields)
        return ("""
         INSERT INTO records (project_id, group_ref, provider, object_name, record_id, integration_id, fields, deleted,
                              version, operation_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::boolean, $9::bigint, $10)
         ON CONFLICT (project_id, group_ref, provider, object_name, record_id) DO UPDATE SET
             fields = CASE WHEN EXCLUDED.deleted THEN records.fields ELSE records.fields || EXCLUDED.fields END,
             deleted = EXCLUDED.deleted,
             version = EXCLUDED.version,
             operation_id = EXCLUDED.operation_id,
             updated_at = now()
         WHERE records.version < EXCLUDED.version
         RETURNING version
         """,
         [change.projectId, change.groupRef, change.provider.rawValue, change.objectName.lowercased(), change.recordId,
          change.integrationId, fields, change.deleted ? "true" : "false",
          String(change.version), change.operationId])
    }
}

import Schema
import Kafka
import Logging
import Metrics
import Pipeline
import Postgres
import ServiceLifecycle
import Shared

/// Consumes `record-changes`, upserts each record into the destination database (an older change never
/// overwrites a newer one), and publishes to `cache-updates`. A change event it cannot read is
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
        let processing = try configuration.processing(topics: [Topics.recordChanges], logger: logger) { message in
            let event: ChangeEvent
            do {
                event = try JSONCoding.decode(ChangeEvent.self, from: message.value)
            } catch {
                try await letters.unreadable(message, reason: error)
                return
            }
            let applied = try await untilSucceeded("upserting the record", logger: logger) {
                try await Self.upsert(event.data, into: database)
            }
            Counter(label: "writeback_destination_upserts_total", dimensions: [("applied", String(applied))]).increment()
            let update = CacheUpdateMessage(change: event.data, applied: applied, updatedAt: Timestamp.now())
            let bytes = try JSONCoding.encode(update)
            try await untilSucceeded("publishing the cache update", logger: logger) {
                try await producer.send(topic: Topics.cacheUpdates, key: event.routingKey, value: bytes)
            }
        }
        return [ReleasingService { database.shutdown() }, producer] + processing
    }

    /// Writes the change unless the row already holds this or a newer version. Returns whether it wrote.
    static func upsert(_ change: ChangeData, into database: PostgresPool) async throws -> Bool {
        let fields = try JSONCoding.encodeString(change.fields)
        let rows = try await database.query(
            """
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
             change.integrationId, fields, change.deleted ? "true" : "false", String(change.version), change.operationId])
        return !rows.isEmpty
    }
}

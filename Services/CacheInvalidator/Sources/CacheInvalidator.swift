import Kafka
import Logging
import Metrics
import Pipeline
import Postgres
import ServiceLifecycle
import Shared

/// Consumes `record-changes`, upserts each record into the destination database (an older change never
/// overwrites a newer one), and publishes to `cache-updates`.
public struct CacheInvalidator: Service {
    /// Group `writeback-cache-invalidator` by default; the database is the destination database.
    public static func configuration(kafka: KafkaConfiguration, destinationDatabaseURL: String) -> ConsumerServiceConfiguration {
        ConsumerServiceConfiguration(kafka: kafka, databaseURL: destinationDatabaseURL, groupID: "writeback-cache-invalidator")
    }

    let configuration: ConsumerServiceConfiguration
    let logger: Logger

    public init(configuration: ConsumerServiceConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        let database = try await configuration.openDatabase(name: "destination", migrations: DestinationSchema.migrations)
        defer { database.shutdown() }
        let producer = try KafkaProducer(configuration: configuration.kafka)
        defer { producer.shutdown() }
        let logger = self.logger
        let processor = configuration.processor(
            topics: [Topics.recordChanges], logger: logger,
            handle: { message in
                guard let event = try? JSONCoding.decode(ChangeEvent.self, from: message.value) else {
                    logger.error("unreadable change event skipped", metadata: ["offset": "\(message.offset)"])
                    return
                }
                do {
                    let applied = try await untilSucceeded("upserting the record", logger: logger) {
                        try await Self.upsert(event.data, into: database)
                    }
                    Counter(label: "writeback_destination_upserts_total", dimensions: [("applied", String(applied))]).increment()
                    let update = CacheUpdateMessage(change: event.data, applied: applied, updatedAt: Timestamp.now())
                    try await untilSucceeded("publishing the cache update", logger: logger) {
                        try await producer.send(topic: Topics.cacheUpdates, key: event.routingKey, value: try JSONCoding.encode(update))
                    }
                } catch {
                    logger.info("change left for redelivery", metadata: ["error": "\(error)"])
                }
            })
        try await processor.run()
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

import Schema
import Connectors
import HTTPClient
import Kafka
import Logging
import Pipeline
import Postgres
import ProviderAccess
import ServiceLifecycle
import Shared

/// Consumes `write-requests`, calls the provider once per request in its connection's lane, and
/// publishes the result to `write-results` and, on success, a change event to `record-changes`, before
/// the request's offset is committed; writes that wait are held in the control database meanwhile.
public enum Writer {
    /// The services of a writer, in the order its `ServiceGroup` runs them.
    public static func services(configuration: WriterConfiguration, logger: Logger) async throws -> [any Service] {
        let database = try await PostgresPool.migrated(
            url: configuration.controlDatabaseURL, size: configuration.databaseConnections, name: "control",
            migrations: ControlSchema.migrations)
        let client = HTTPClient(configuration: .init(concurrency: configuration.httpConcurrency))
        let producer = try KafkaProducer(configuration: configuration.kafka)
        let installations = InstallationStore(
            database: database, box: configuration.secrets,
            cacheLifetime: .milliseconds(Int(configuration.installationCacheSeconds * 1000)))
        let journal = WriterJournal(database: database, interval: configuration.journalInterval, logger: logger)
        let notifications = NotificationPublisher(producer: producer, logger: logger)
        let work = WriteExecution(
            configuration: configuration, logger: logger, journal: journal,
            installations: installations,
            tokens: TokenRefresher(installations: installations) { await notifications.tell($0.event) },
            pacers: ConnectionPacers(settings: .init(
                dailyPause: .milliseconds(Int(configuration.limitPause * 1000)),
                maxDailyPause: .milliseconds(Int(configuration.maxLimitPause * 1000)))),
            connectors: Connectors(client: client, timeout: configuration.providerTimeout, hosts: configuration.hosts), producer: producer,
            letters: DeadLetters(producer: producer, service: "writer", logger: logger), bulkUploads: BulkUploads(database: database))
        let consumer = try KafkaConsumer(
            configuration: configuration.kafka, groupID: configuration.groupID, topics: [Topics.writeRequests],
            maxInFlight: configuration.maxInFlight)
        let scheduler = WriteScheduler(
            consumer: consumer,
            settings: .init(concurrency: configuration.connectionConcurrency, maxQueued: configuration.laneMemory,
                            autoBatchMaxDelay: configuration.autoBatchMaxDelay, memoryBudget: max(1, configuration.maxInFlight / 2)),
            execution: work, held: HeldWrites(database: database), journal: journal, logger: logger)
        logger.info("consuming", metadata: ["group": "\(configuration.groupID)", "topics": "\(Topics.writeRequests)"])
        return [ReleasingService { database.shutdown(); client.shutdown() }, producer, consumer, scheduler]
    }
}

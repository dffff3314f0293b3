import Connectors
import HTTPClient
import Kafka
import Logging
import Pipeline
import Postgres
import ProviderAccess
import ServiceLifecycle
import Shared

/// Consumes `write-requests`, calls the provider once per request, and publishes the result to
/// `write-results` and, on success, a change event to `record-changes`, before the request's offset is
/// committed.
public struct Writer: Service {
    let configuration: WriterConfiguration
    let logger: Logger

    public init(configuration: WriterConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        let database = try await PostgresPool.migrated(
            url: configuration.controlDatabaseURL, size: configuration.databaseConnections, name: "control",
            migrations: ControlSchema.migrations)
        defer { database.shutdown() }
        let client = HTTPClient(configuration: .init(concurrency: configuration.httpConcurrency))
        defer { client.shutdown() }
        let producer = try KafkaProducer(configuration: configuration.kafka)
        defer { producer.shutdown() }
        let installations = InstallationStore(
            database: database, box: configuration.secrets,
            cacheLifetime: .milliseconds(Int(configuration.installationCacheSeconds * 1000)))
        var work = WriteExecution(
            configuration: configuration, logger: logger, attempts: WriteAttempts(database: database),
            installations: installations, tokens: TokenRefresher(installations: installations),
            pacers: ConnectionPacers(settings: .init(
                dailyPause: .milliseconds(Int(configuration.limitPause * 1000)),
                maxDailyPause: .milliseconds(Int(configuration.maxLimitPause * 1000)))),
            connectors: Connectors(client: client, timeout: configuration.providerTimeout), producer: producer)
        work.bulkUploads = BulkUploads(database: database)
        let sender = work
        work.autoBatcher = AutoBatcher { entries in try await sender.sendAutoBatch(entries) }
        let execution = work
        let processor = KeyedProcessor(
            configuration: .init(kafka: configuration.kafka, groupID: configuration.groupID, topics: [Topics.writeRequests],
                                 maxInFlight: configuration.maxInFlight),
            logger: logger, handle: { message in await execution.process(message) })
        try await processor.run()
    }
}

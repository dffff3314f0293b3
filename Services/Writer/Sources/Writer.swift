import Connectors
import HTTPClient
import Kafka
import Logging
import Pipeline
import Postgres
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
        let work = WriteExecution(
            configuration: configuration, logger: logger, attempts: WriteAttempts(database: database),
            installations: Installations(
                database: database, cache: ExpiringCache(lifetime: .milliseconds(Int(configuration.installationCacheSeconds * 1000)))),
            connectors: Connectors(client: client, timeout: configuration.providerTimeout), producer: producer)
        let processor = KeyedProcessor(
            configuration: .init(kafka: configuration.kafka, groupID: configuration.groupID, topics: [Topics.writeRequests],
                                 lanes: configuration.lanes),
            logger: logger, handle: { message in await work.process(message) })
        try await processor.run()
    }
}

/// Where each installation's provider is and the token to call it with.
struct Installations: Sendable {
    let database: PostgresPool
    let cache: ExpiringCache<String, Connection>

    func connection(_ installationId: String) async throws -> Connection? {
        try await cache.value(for: installationId) {
            let row = try await database.query(
                "SELECT base_url, credentials->>'accessToken' AS token FROM installations WHERE id = $1::uuid",
                [installationId]
            ).first
            guard let row, let base = row["base_url"] else { return nil }
            return Connection(baseURL: base, accessToken: row["token"] ?? "")
        }
    }
}

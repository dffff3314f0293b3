import Connectors
import HTTPClient
import Hummingbird
import Kafka
import Logging
import Postgres
import ProviderAccess
import ServiceLifecycle
import Shared

/// The ingress: authenticates and validates writes, publishes them to `write-requests`, answers
/// asynchronous writes at once and synchronous ones when they complete; serves operations and logs.
public struct API: Service {
    let configuration: APIConfiguration
    let logger: Logger

    public init(configuration: APIConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        let database = try await PostgresPool.migrated(
            url: configuration.controlDatabaseURL, size: configuration.databaseConnections, name: "control",
            migrations: ControlSchema.migrations)
        defer { database.shutdown() }
        let installations = InstallationStore(
            database: database, box: configuration.secrets,
            cacheLifetime: .milliseconds(Int(configuration.controlCacheSeconds * 1000)))
        let sealed = try await installations.sealStoredSecrets()
        if sealed > 0 { logger.notice("sealed stored credentials with the current key", metadata: ["count": "\(sealed)"]) }
        let client = HTTPClient(configuration: .init(concurrency: 32), name: "api-provider-http")
        defer { client.shutdown() }
        let producer = try KafkaProducer(configuration: configuration.kafka)
        defer { producer.shutdown() }
        let tailer = try KafkaTailer(configuration: configuration.kafka, topics: [Topics.writeResults, Topics.cacheUpdates])
        let completions = Completions()
        let handlers = Handlers(
            configuration: configuration, control: ControlData(database: database, cacheLifetime: .milliseconds(Int(configuration.controlCacheSeconds * 1000))), database: database, producer: producer,
            completions: completions, installations: installations, tokens: TokenRefresher(installations: installations),
            connectors: Connectors(client: client, timeout: configuration.providerTimeout), client: client,
            metadata: ExpiringCache(lifetime: .milliseconds(Int(configuration.metadataCacheSeconds * 1000))),
            customerTokens: CustomerTokens(database: database, box: configuration.secrets,
                                           keys: ExpiringCache(lifetime: .milliseconds(Int(configuration.controlCacheSeconds * 1000)))),
            logger: logger)
        let router = Router()
        handlers.addRoutes(to: router)
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "writeback"),
            logger: logger)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask {
                for await message in tailer.messages { completions.deliver(message) }
            }
            defer { tailer.shutdown() }
            try await app.run()
        }
    }
}

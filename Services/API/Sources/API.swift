import Schema
import Connectors
import HTTPClient
import Hummingbird
import Kafka
import Logging
import Pipeline
import Postgres
import ProviderAccess
import ServiceLifecycle
import Shared

/// The ingress: authenticates and validates writes, publishes them to `write-requests`, answers
/// asynchronous writes at once and synchronous ones when they complete; serves operations and logs.
public enum API {
    /// The services of an api instance, in the order its `ServiceGroup` runs them: the HTTP server stops
    /// first (letting the requests it holds finish), then what follows completions, then the producer.
    public static func services(configuration: APIConfiguration, logger: Logger) async throws -> [any Service] {
        let database = try await PostgresPool.migrated(
            url: configuration.controlDatabaseURL, size: configuration.databaseConnections, name: "control",
            migrations: ControlSchema.migrations)
        let installations = InstallationStore(
            database: database, box: configuration.secrets,
            cacheLifetime: .milliseconds(Int(configuration.controlCacheSeconds * 1000)))
        let sealed = try await installations.sealStoredSecrets()
        if sealed > 0 { logger.notice("sealed stored credentials with the current key", metadata: ["count": "\(sealed)"]) }
        let client = HTTPClient(configuration: .init(concurrency: 32), name: "api-provider-http")
        let producer = try KafkaProducer(configuration: configuration.kafka)
        let tailer = try KafkaTailer(configuration: configuration.kafka, topics: [Topics.writeResults, Topics.cacheUpdates])
        let completions = Completions()
        let handlers = Handlers(
            configuration: configuration,
            control: ControlData(database: database, cacheLifetime: .milliseconds(Int(configuration.controlCacheSeconds * 1000))),
            database: database, producer: producer,
            completions: completions, installations: installations, tokens: TokenRefresher(installations: installations),
            connectors: Connectors(client: client, timeout: configuration.providerTimeout, hosts: configuration.hosts), client: client,
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
        return [
            ReleasingService { database.shutdown(); client.shutdown() }, producer, tailer,
            CompletionFollower(tailer: tailer, completions: completions), app,
        ]
    }
}

/// Wakes the synchronous requests of this instance from the completion topics, until the tailer ends.
struct CompletionFollower: Service, CustomStringConvertible {
    var description: String { "CompletionFollower" }

    let tailer: KafkaTailer
    let completions: Completions

    func run() async throws {
        await cancelWhenGracefulShutdown {
            for await message in tailer.messages { completions.deliver(message) }
        }
    }
}

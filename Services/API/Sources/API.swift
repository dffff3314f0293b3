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
        let tailer = try KafkaTailer(configuration: configuration.kafka, topics: [Topics.writeCompletions])
        let completions = Completions(instanceId: configuration.instanceId)
        let router = router(configuration: configuration, database: database, installations: installations, producer: producer,
                            completions: completions, client: client, logger: logger)
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

extension API {
    /// Every route, each group behind the authentication and error shape of its API shape.
    static func router(
        configuration: APIConfiguration, database: PostgresPool, installations: InstallationStore, producer: KafkaProducer,
        completions: Completions, client: HTTPClient, logger: Logger
    ) -> Router<APIContext> {
        let cacheLifetime = Duration.milliseconds(Int(configuration.controlCacheSeconds * 1000))
        let control = ControlData(database: database, cacheLifetime: cacheLifetime)
        let submitter = WriteSubmitter(configuration: configuration, database: database, producer: producer, completions: completions,
                                       logger: logger)
        let connectors = Connectors(client: client, timeout: configuration.providerTimeout, hosts: configuration.hosts)
        let notifications = NotificationPublisher(producer: producer, logger: logger)
        let providers = ProviderCalls(
            configuration: configuration, installations: installations,
            tokens: TokenRefresher(installations: installations) { await notifications.tell($0.event) },
            connectors: connectors, metadata: ExpiringCache(lifetime: .milliseconds(Int(configuration.metadataCacheSeconds * 1000))))
        let customerTokens = CustomerTokens(database: database, box: configuration.secrets, keys: ExpiringCache(lifetime: cacheLifetime))
        let runner = ActionRunner(configuration: configuration, submitter: submitter, providers: providers)

        let router = Router(context: APIContext.self)
        router.get("health") { _, _ in jsonResponse(200, Array(#"{"status":"ok"}"#.utf8)) }
        let document = Array(openAPIDocument.utf8)
        router.get("openapi.json") { _, _ in jsonResponse(200, document) }

        // The Write and control APIs: the project's key, problems.
        let projects = router.group("v1/projects/:project")
            .add(middleware: ErrorShapeMiddleware(shape: .problem, logger: logger))
            .add(middleware: ProjectKeyAuthentication(control: control))
        WritesController(configuration: configuration, control: control, database: database, submitter: submitter, providers: providers,
                         logger: logger).addRoutes(to: projects)
        let operations = OperationsController(configuration: configuration, control: control, database: database)
        operations.addRoutes(to: projects)
        IntegrationsController(configuration: configuration, control: control, database: database, installations: installations,
                               providers: providers, logger: logger).addRoutes(to: projects)
        let connections = ConnectionsController(configuration: configuration, control: control, database: database,
                                                installations: installations, connectors: connectors, notifications: notifications,
                                                logger: logger)
        connections.addRoutes(to: projects)
        InstallationsController(configuration: configuration, control: control, database: database, installations: installations,
                                notifications: notifications, logger: logger).addRoutes(to: projects)
        CustomerTokenKeysController(configuration: configuration, control: control, database: database, customerTokens: customerTokens)
            .addRoutes(to: projects)
        NotificationsController(configuration: configuration, control: control, database: database).addRoutes(to: projects)
        connections.addOAuthRoutes(to: router.group().add(middleware: ErrorShapeMiddleware(shape: .problem, logger: logger)))

        // The unified CRM and pass-through APIs: the key and the customer in headers, unified errors.
        UnifiedController(configuration: configuration, control: control, database: database, submitter: submitter, providers: providers)
            .addRoutes(to: router.group()
                .add(middleware: ErrorShapeMiddleware(shape: .unified, logger: logger))
                .add(middleware: CustomerKeyAuthentication.unified(control)))

        // The action catalog: the key and a linked account; per-customer action instances: customer tokens.
        CatalogController(configuration: configuration, control: control, database: database, runner: runner)
            .addRoutes(to: router.group("api/v2/integration-schema/:app/actions")
                .add(middleware: ErrorShapeMiddleware(shape: .catalog, logger: logger))
                .add(middleware: CustomerKeyAuthentication.catalog(control)))
        ActionInstancesController(configuration: configuration, control: control, database: database, runner: runner)
            .addRoutes(to: router.group("connections")
                .add(middleware: ErrorShapeMiddleware(shape: .instance, logger: logger))
                .add(middleware: CustomerTokenAuthentication(tokens: customerTokens)))

        // The operations console: server-rendered pages, signed in with a project key held in a session cookie.
        ConsoleController(configuration: configuration, control: control, database: database, submitter: submitter,
                          operations: operations, logger: logger).addRoutes(to: router)
        return router
    }
}

/// Wakes the synchronous requests of this instance from `write-completions`, until the tailer ends.
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

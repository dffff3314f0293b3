import Kafka
import Logging
import Postgres
import ServiceLifecycle
import Shared

/// What every service executable does: a logger at `LOG_LEVEL`, swift-metrics recorded for Prometheus
/// and served at `GET /metrics` on `METRICS_HOST`:`METRICS_PORT` (default `metricsPort`; 0 serves
/// none; nil: a tool without metrics, whatever the environment says), and one `ServiceGroup` that
/// shuts down gracefully on SIGTERM and SIGINT. Graceful shutdown lets running work finish for at most
/// `SHUTDOWN_GRACE_SECONDS` (default 30); then the work is cancelled (what was not committed is
/// redelivered), so that a service whose Kafka or database is gone still ends.
public func runService(
    label: String, environment: ServiceEnvironment, metricsPort: Int?, _ make: (Logger) throws -> any Service
) async throws {
    var logger = Logger(label: label)
    logger.logLevel = Logger.Level(rawValue: environment.logLevel) ?? .info
    var services = [try make(logger)]
    let port = metricsPort.map { environment.int("METRICS_PORT", default: $0) } ?? 0
    if port > 0 {
        services.append(MetricsEndpoint(
            host: environment.string("METRICS_HOST", default: "127.0.0.1"), port: port, registry: MetricsEndpoint.registry,
            logger: logger))
    } else {
        _ = MetricsEndpoint.registry
    }
    var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    configuration.maximumGracefulShutdownDuration = .seconds(environment.double("SHUTDOWN_GRACE_SECONDS", default: 30))
    try await ServiceGroup(configuration: configuration).run()
}

extension KafkaConfiguration {
    /// The Kafka clients' configuration from `KAFKA_BROKERS`, `KAFKA_PROPERTY_*` and the consumer settings.
    public init(_ environment: ServiceEnvironment) {
        self.init(brokers: environment.kafkaBrokers, properties: environment.kafkaProperties,
                  consumerProperties: environment.kafkaConsumerProperties)
    }
}

/// A service that consumes topics in a group and writes to one database.
public struct ConsumerServiceConfiguration: Sendable {
    public var kafka: KafkaConfiguration
    public var databaseURL: String
    public var groupID: String
    /// Messages read and not yet finished (different keys run at once). Default 1024.
    public var maxInFlight = 1024
    /// Database connections. Default 8.
    public var databaseConnections = 8

    public init(kafka: KafkaConfiguration, databaseURL: String, groupID: String) {
        self.kafka = kafka
        self.databaseURL = databaseURL
        self.groupID = groupID
    }

    /// The service's database, migrated.
    public func openDatabase(name: String, migrations: [Migration]) async throws -> PostgresPool {
        try await PostgresPool.migrated(url: databaseURL, size: databaseConnections, name: name, migrations: migrations)
    }

    /// The service's consumer over `topics`, handing each message to `handle`.
    public func processor(
        topics: [String], logger: Logger, handle: @escaping @Sendable (KafkaMessage) async -> Void
    ) -> KeyedProcessor {
        KeyedProcessor(
            configuration: .init(kafka: kafka, groupID: groupID, topics: topics, maxInFlight: maxInFlight), logger: logger, handle: handle)
    }
}

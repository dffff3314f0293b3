import Foundation
import Kafka
import Logging
import Postgres
import ServiceLifecycle
import Shared
import Synchronization

/// What every service executable does: a logger at `LOG_LEVEL`, swift-metrics recorded for Prometheus
/// and served at `GET /metrics` on `METRICS_HOST`:`METRICS_PORT` (default `metricsPort`; 0 serves
/// none; nil: a tool without metrics, whatever the environment says), and one `ServiceGroup` of the
/// services `make` returns, in dependency order (each may use those before it), that shuts down
/// gracefully on SIGTERM and SIGINT, last first. Graceful shutdown lets running work finish for at most
/// `SHUTDOWN_GRACE_SECONDS` (default 30); then the work is cancelled (what was not committed is
/// redelivered), so that a service whose Kafka or database is gone still ends.
public func runService(
    label: String, environment: ServiceEnvironment, metricsPort: Int?, _ make: (Logger) async throws -> [any Service]
) async throws {
    var logger = Logger(label: label)
    logger.logLevel = Logger.Level(rawValue: environment.logLevel) ?? .info
    let port = metricsPort.map { environment.int("METRICS_PORT", default: $0) } ?? 0
    let grace = environment.double("SHUTDOWN_GRACE_SECONDS", default: 30)
    // A wrong value stops the start, naming each variable; nothing has started yet.
    let problems = environment.problems
    guard problems.isEmpty else {
        for problem in problems { FileHandle.standardError.write(Data("writeback-\(label): \(problem)\n".utf8)) }
        FileHandle.standardError.write(Data("writeback-\(label): not started; see docs/configuration.md\n".utf8))
        exit(78)
    }
    // The metrics system is bootstrapped before any service makes its metrics (a pool's counters).
    let registry = MetricsEndpoint.registry
    var services = try await make(logger)
    if port > 0 {
        services.insert(MetricsEndpoint(
            host: environment.string("METRICS_HOST", default: "127.0.0.1"), port: port, registry: registry,
            logger: logger), at: 0)
    }
    var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    configuration.maximumGracefulShutdownDuration = .seconds(grace)
    try await ServiceGroup(configuration: configuration).run()
}

/// A value a service needs before it starts (a key read from the environment): when it cannot be made,
/// the start stops with the reason on standard error, and no crash report.
public func required<T>(_ label: String, _ make: () throws -> T) -> T {
    do {
        return try make()
    } catch {
        FileHandle.standardError.write(Data("writeback-\(label): \(error)\nwriteback-\(label): not started; see docs/configuration.md\n".utf8))
        exit(78)
    }
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
    /// For batch consumers: under load, a batch starts at most this often (what arrives meanwhile joins
    /// it), which bounds the transactions per second. Default 10 ms.
    public var batchInterval: Duration = .milliseconds(10)

    public init(kafka: KafkaConfiguration, databaseURL: String, groupID: String) {
        self.kafka = kafka
        self.databaseURL = databaseURL
        self.groupID = groupID
    }

    /// The service's database, migrated.
    public func openDatabase(name: String, migrations: [Migration]) async throws -> PostgresPool {
        try await PostgresPool.migrated(url: databaseURL, size: databaseConnections, name: name, migrations: migrations)
    }

    /// The service's consumer of `topics` and the processor that hands each message to `handle`, in the
    /// order a `ServiceGroup` needs them (the consumer closes after the processor stopped).
    public func processing(
        topics: [String], ordering: KeyedProcessor.Ordering = .byKey, logger: Logger,
        handle: @escaping @Sendable (KafkaMessage) async throws -> Void
    ) throws -> [any Service] {
        let consumer = try KafkaConsumer(configuration: kafka, groupID: groupID, topics: topics, maxInFlight: maxInFlight)
        logger.info("consuming", metadata: ["group": "\(groupID)", "topics": "\(topics)"])
        return [consumer, KeyedProcessor(consumer: consumer, ordering: ordering, logger: logger, handle: handle)]
    }

    /// The service's consumer of `topics` and the processor that hands `handle` a batch at a time.
    public func batchProcessing(
        topics: [String], logger: Logger, handle: @escaping @Sendable ([KafkaMessage]) async throws -> Void
    ) throws -> [any Service] {
        let consumer = try KafkaConsumer(configuration: kafka, groupID: groupID, topics: topics, maxInFlight: maxInFlight)
        logger.info("consuming in batches", metadata: ["group": "\(groupID)", "topics": "\(topics)"])
        return [consumer, BatchProcessor(consumer: consumer, maxBatch: maxInFlight / 2, interval: batchInterval, logger: logger, handle: handle)]
    }
}

extension PostgresPool {
    /// Applies `statements` (one or more per item) in one transaction and round trip, and answers each
    /// item's rows. A passing failure is tried again; when the database refuses the batch for good it
    /// is split, and an item refused on its own is given to `refused` (and its rows are nil), so that
    /// one bad item never holds back or drops the others.
    public func apply<Item: Sendable>(
        _ items: [Item], statements: @escaping @Sendable (Item) -> [(sql: String, parameters: [String?])], logger: Logger,
        refused: @escaping @Sendable (Item, PostgresError) async throws -> Void
    ) async throws -> [[PostgresRows]?] {
        try await splitting(items, logger: logger, refused: refused, make: { items in
            let perItem = items.map(statements)
            return (counts: perItem.map(\.count), all: perItem.flatMap { $0 })
        }) { made in
            let rows = try await self.pipeline(made.all)
            var answers: [[PostgresRows]?] = []
            var offset = 0
            for count in made.counts {
                answers.append(Array(rows[offset..<offset + count]))
                offset += count
            }
            return answers
        }
    }

    /// Applies the statements made for a whole set of items (`statements` of any part of them) in one
    /// transaction and round trip; passing failures are tried again, and a set the database refuses
    /// for good is split until the refused item is alone and given to `refused`.
    public func apply<Item: Sendable>(
        together items: [Item], statements: @escaping @Sendable ([Item]) -> [(sql: String, parameters: [String?])], logger: Logger,
        refused: @escaping @Sendable (Item, PostgresError) async throws -> Void
    ) async throws {
        _ = try await apply(together: items, statements: statements, answers: { items, _ in Array(repeating: (), count: items.count) },
                            logger: logger, refused: refused)
    }

    /// `apply(together:)` whose statements answer each item: `answers` reads the rows of a set's
    /// statements (in their order) into one answer per item of the set. A refused item's answer is nil.
    public func apply<Item: Sendable, Answer: Sendable>(
        together items: [Item], statements: @escaping @Sendable ([Item]) -> [(sql: String, parameters: [String?])],
        answers: @escaping @Sendable ([Item], [PostgresRows]) throws -> [Answer], logger: Logger,
        refused: @escaping @Sendable (Item, PostgresError) async throws -> Void
    ) async throws -> [Answer?] {
        try await splitting(items, logger: logger, refused: refused, make: { (items: $0, all: statements($0)) }) { made in
            try answers(made.items, try await self.pipeline(made.all)).map { Optional($0) }
        }
    }

    /// Makes what the items need once (`make`), then runs `attempt` with it, trying passing failures
    /// again; on a refusal, the same on each half, until a refused item is alone (its answer is nil).
    private func splitting<Item: Sendable, Made: Sendable, Answer: Sendable>(
        _ items: [Item], logger: Logger, refused: @escaping @Sendable (Item, PostgresError) async throws -> Void,
        make: @escaping @Sendable ([Item]) -> Made, attempt: @escaping @Sendable (Made) async throws -> [Answer?]
    ) async throws -> [Answer?] {
        guard !items.isEmpty else { return [] }
        let made = make(items)
        do {
            return try await untilSucceeded("applying \(items.count) changes", logger: logger,
                                            retrying: { ($0 as? PostgresError)?.isTransient ?? true }) {
                try await attempt(made)
            }
        } catch let error as PostgresError {
            if items.count == 1 {
                try await refused(items[0], error)
                return [nil]
            }
            let half = items.count / 2
            let first = try await splitting(Array(items[..<half]), logger: logger, refused: refused, make: make, attempt: attempt)
            return try await first + splitting(Array(items[half...]), logger: logger, refused: refused, make: make, attempt: attempt)
        }
    }

    /// `apply` for one statement per item: each statement's rows, or the error the database refused it
    /// with on its own.
    public func applyEach(
        _ statements: [(sql: String, parameters: [String?])], logger: Logger
    ) async throws -> [Result<PostgresRows, PostgresError>] {
        let refusals = Mutex<[Int: PostgresError]>([:])
        let answers = try await apply(Array(statements.enumerated()), statements: { [$0.element] }, logger: logger) { item, error in
            refusals.withLock { $0[item.offset] = error }
        }
        return answers.enumerated().map { index, rows in
            if let rows { return .success(rows[0]) }
            return .failure(refusals.withLock { $0[index] } ?? PostgresError(.query, "refused"))
        }
    }
}

/// Publishes what a service cannot read to `write-dead-letters`, with the reason and, where it can be
/// told, the operation it belongs to (which the operations service then fails), instead of skipping it.
public struct DeadLetters: Sendable {
    let producer: KafkaProducer
    let service: String
    let logger: Logger

    public init(producer: KafkaProducer, service: String, logger: Logger) {
        self.producer = producer
        self.service = service
        self.logger = logger
    }

    public func unreadable(_ message: KafkaMessage, reason: any Error) async throws {
        try await unreadable(message, reason: "\(reason)")
    }

    public func unreadable(_ message: KafkaMessage, reason: String) async throws {
        let source = UnreadableMessage(
            service: service, topic: message.topic, partition: message.partition, offset: message.offset, key: message.keyText,
            value: message.value)
        let letter = DeadLetter(
            unreadable: source, reason: reason, operation: SalvagedIdentity.read(from: message.value), failedAt: Timestamp.now())
        logger.error("unreadable message dead-lettered", metadata: [
            "topic": "\(message.topic)", "partition": "\(message.partition)", "offset": "\(message.offset)",
            "operation": "\(letter.operation?.operationId ?? "-")", "reason": "\(reason)",
        ])
        let bytes = try JSONCoding.encode(letter)
        try await untilSucceeded("dead-lettering an unreadable message", logger: logger) {
            try await producer.send(topic: Topics.writeDeadLetters, key: message.keyText, value: bytes)
        }
    }
}

/// Releases what other services use (a database pool) once they all stopped: put it first in the
/// `ServiceGroup`, so that it stops last.
public struct ReleasingService: Service, CustomStringConvertible {
    public var description: String { "ReleasingService" }

    let release: @Sendable () -> Void

    public init(_ release: @escaping @Sendable () -> Void) {
        self.release = release
    }

    public func run() async throws {
        try? await gracefulShutdown()
        release()
    }
}

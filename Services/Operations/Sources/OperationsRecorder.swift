import Kafka
import Logging
import Metrics
import Pipeline
import Postgres
import ServiceLifecycle
import Shared

/// Consumes `write-requests`, `write-results`, `cache-updates` and `bulk-progress` and is the only writer of the
/// operations and operation-log tables. Each input may arrive before the others (they are different
/// topics), so every one upserts the operation and the status is derived from what has arrived: a
/// failed provider answer is `failure`; a successful one becomes `success` once the destination holds it.
public struct OperationsRecorder: Service {
    /// Group `writeback-operations` by default; the database is the control database.
    public static func configuration(kafka: KafkaConfiguration, controlDatabaseURL: String) -> ConsumerServiceConfiguration {
        ConsumerServiceConfiguration(kafka: kafka, databaseURL: controlDatabaseURL, groupID: "writeback-operations")
    }

    let configuration: ConsumerServiceConfiguration
    let logger: Logger

    public init(configuration: ConsumerServiceConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        let database = try await configuration.openDatabase(name: "control", migrations: ControlSchema.migrations)
        defer { database.shutdown() }
        let logger = self.logger
        let processor = configuration.processor(
            topics: [Topics.writeRequests, Topics.writeResults, Topics.cacheUpdates, Topics.bulkProgress], logger: logger,
            handle: { message in
                do {
                    try await untilSucceeded("recording the operation", logger: logger) {
                        try await Self.record(message, in: database)
                    }
                } catch {
                    logger.info("operation update left for redelivery", metadata: ["error": "\(error)"])
                }
            })
        try await processor.run()
    }

    static func record(_ message: KafkaMessage, in database: PostgresPool) async throws {
        let statements: [(String, [String?])]
        do {
            switch message.topic {
            case Topics.writeRequests:
                statements = try OperationStatements.accepted(JSONCoding.decode(WriteRequestMessage.self, from: message.value))
            case Topics.writeResults:
                statements = try OperationStatements.answered(JSONCoding.decode(WriteResultMessage.self, from: message.value))
            case Topics.cacheUpdates:
                statements = try OperationStatements.cached(JSONCoding.decode(CacheUpdateMessage.self, from: message.value))
            case Topics.bulkProgress:
                statements = try OperationStatements.progressed(JSONCoding.decode(BulkProgressMessage.self, from: message.value))
            default:
                return
            }
        } catch {
            return  // not a message this service understands; nothing to record
        }
        guard !statements.isEmpty else { return }
        let (sql, parameters) = OperationStatements.combined(statements)
        try await database.query(sql, parameters)
        Counter(label: "writeback_operation_updates_total", dimensions: [("topic", message.topic)]).increment()
    }
}

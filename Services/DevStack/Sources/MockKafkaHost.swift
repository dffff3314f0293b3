import Foundation
import Kafka
import Logging
import ServiceLifecycle
import Shared

/// Hosts librdkafka's mock cluster with the stack's topics until shutdown, and hands its bootstrap
/// address to the other processes (printed, and written to a file if asked).
public struct MockKafkaHost: Service, CustomStringConvertible {
    public var description: String { "MockKafkaHost" }

    public var partitions: Int
    public var bootstrapFile: String?
    /// How many times more partitions `record-changes` and `cache-updates` have.
    static let wideFactor = 2
    let logger: Logger

    public init(partitions: Int, bootstrapFile: String?, logger: Logger) {
        self.partitions = partitions
        self.bootstrapFile = bootstrapFile
        self.logger = logger
    }

    public func run() async throws {
        // The mock cluster keeps only the last 5 MiB of each partition. A bulk write's change events can
        // run that far ahead of the cache-invalidator, so their topics get more partitions to keep more.
        let wide: Set = [Topics.recordChanges, Topics.cacheUpdates]
        let cluster = try KafkaMockCluster(
            brokers: 1, topics: Topics.all.map { ($0, wide.contains($0) ? partitions * Self.wideFactor : partitions) })
        logger.info("mock Kafka cluster up", metadata: ["bootstrap": "\(cluster.bootstrapServers)", "partitions": "\(partitions)"])
        print(cluster.bootstrapServers)
        if let bootstrapFile {
            try Data(cluster.bootstrapServers.utf8).write(to: URL(fileURLWithPath: bootstrapFile + ".tmp"))
            _ = rename(bootstrapFile + ".tmp", bootstrapFile)
        }
        try? await gracefulShutdown()
        withExtendedLifetime(cluster) {}
    }
}

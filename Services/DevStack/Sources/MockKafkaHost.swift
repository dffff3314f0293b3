import Foundation
import Kafka
import Logging
import ServiceLifecycle
import Shared

/// Hosts librdkafka's mock cluster with the stack's topics until shutdown, and hands its bootstrap
/// address to the other processes (printed, and written to a file if asked).
public struct MockKafkaHost: Service {
    public var partitions: Int
    public var bootstrapFile: String?
    let logger: Logger

    public init(partitions: Int, bootstrapFile: String?, logger: Logger) {
        self.partitions = partitions
        self.bootstrapFile = bootstrapFile
        self.logger = logger
    }

    public func run() async throws {
        let cluster = try KafkaMockCluster(brokers: 1, topics: Topics.all.map { ($0, partitions) })
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

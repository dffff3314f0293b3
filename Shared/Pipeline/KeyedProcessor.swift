import Kafka
import Logging
import ServiceLifecycle

/// Consumes topics in a consumer group and hands each message to `handle` in one of `lanes` lanes
/// chosen by the message key: messages with one key run one after another in offset order, different
/// keys run in parallel. A message's offset becomes committable only once `handle` returned, so
/// `handle` publishes its outputs (and waits for the broker) before returning. `handle` must not
/// throw away a message: it retries what failed for a passing reason.
public struct KeyedProcessor: Service {
    public struct Configuration: Sendable {
        public var kafka: KafkaConfiguration
        public var groupID: String
        public var topics: [String]
        /// Parallel lanes. Default 32.
        public var lanes: Int
        /// Messages handed out and not finished, at most. Default 512.
        public var maxInFlight: Int

        public init(kafka: KafkaConfiguration, groupID: String, topics: [String], lanes: Int = 32, maxInFlight: Int = 512) {
            self.kafka = kafka
            self.groupID = groupID
            self.topics = topics
            self.lanes = lanes
            self.maxInFlight = maxInFlight
        }
    }

    let configuration: Configuration
    let logger: Logger
    let handle: @Sendable (KafkaMessage) async -> Void

    public init(configuration: Configuration, logger: Logger, handle: @escaping @Sendable (KafkaMessage) async -> Void) {
        self.configuration = configuration
        self.logger = logger
        self.handle = handle
    }

    public func run() async throws {
        let consumer = try KafkaConsumer(
            configuration: configuration.kafka, groupID: configuration.groupID, topics: configuration.topics,
            maxInFlight: configuration.maxInFlight)
        logger.info("consuming", metadata: ["group": "\(configuration.groupID)", "topics": "\(configuration.topics)"])
        let lanes = (0..<max(1, configuration.lanes)).map { _ in AsyncStream.makeStream(of: KafkaMessage.self) }
        let handle = self.handle
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for lane in lanes {
                    group.addTask {
                        for await message in lane.stream {
                            guard consumer.begin(message) else {
                                consumer.skipped(message)  // its partition went to another member
                                continue
                            }
                            await handle(message)
                            consumer.finished(message)
                        }
                    }
                }
                for await message in consumer.messages {
                    lanes[Int(Self.lane(of: message.key, count: lanes.count))].continuation.yield(message)
                }
                for lane in lanes { lane.continuation.finish() }
            }
        } onGracefulShutdown: {
            consumer.requestStop()
        }
        consumer.shutdown()
        logger.info("stopped consuming", metadata: ["group": "\(configuration.groupID)"])
    }

    /// FNV-1a of the key: stable across processes and runs.
    static func lane(of key: [UInt8]?, count: Int) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key ?? [] {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash % UInt64(count)
    }
}

/// Runs `body` until it succeeds, waiting longer between tries (up to 5 s), for work that must not be
/// dropped (publishing, bookkeeping) while a dependency is briefly away. Gives up only on shutdown.
public func untilSucceeded<T: Sendable>(
    _ what: String, logger: Logger, _ body: @Sendable () async throws -> T
) async throws -> T {
    var delay: Duration = .milliseconds(100)
    while true {
        do {
            return try await body()
        } catch {
            logger.warning("\(what) failed; trying again", metadata: ["error": "\(error)"])
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(5))
        }
    }
}

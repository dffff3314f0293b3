import Kafka
import Logging
import ServiceLifecycle
import Synchronization

/// Consumes topics in a consumer group and hands each message to `handle`: messages with one key run one
/// after another in offset order, messages with different keys run at once, however long one key's
/// messages take (a write held back by its provider's rate limit delays only the writes queued behind it
/// for the same record). A message's offset becomes committable only once `handle` returned, and the
/// consumer commits the highest offset below which everything finished, so `handle` publishes its
/// outputs (and waits for the broker) before returning. `handle` must not throw away a message: it
/// retries what failed for a passing reason.
public struct KeyedProcessor: Service {
    public struct Configuration: Sendable {
        public var kafka: KafkaConfiguration
        public var groupID: String
        public var topics: [String]
        /// Messages read and not yet finished, at most: the bound on memory and on records handled at
        /// once. When it is reached the consumer pauses its partitions (staying in the group) until
        /// messages finish. Default 1024.
        public var maxInFlight: Int

        public init(kafka: KafkaConfiguration, groupID: String, topics: [String], maxInFlight: Int = 1024) {
            self.kafka = kafka
            self.groupID = groupID
            self.topics = topics
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
        let queues = KeyQueues()
        let handle = self.handle
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await message in consumer.messages where queues.enqueue(message) {
                    // The key had nothing waiting or running: a task of its own runs its messages in order.
                    group.addTask {
                        var next: KafkaMessage? = message
                        while let current = next {
                            if consumer.begin(current) {
                                await handle(current)
                                consumer.finished(current)
                            } else {
                                consumer.skipped(current)  // its partition went to another member
                            }
                            next = queues.next(after: current)
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            consumer.requestStop()
        }
        consumer.shutdown()
        logger.info("stopped consuming", metadata: ["group": "\(configuration.groupID)"])
    }
}

/// The messages waiting behind the running one, per key. A key is present while one of its messages
/// runs; a message without a key runs on its own.
final class KeyQueues: Sendable {
    private let waiting = Mutex<[[UInt8]: [KafkaMessage]]>([:])

    /// Queues a message behind its key's running one; true when nothing of its key runs, so the caller
    /// runs it now.
    func enqueue(_ message: KafkaMessage) -> Bool {
        guard let key = message.key else { return true }
        return waiting.withLock { waiting in
            if waiting[key] != nil {
                waiting[key]!.append(message)
                return false
            }
            waiting[key] = []
            return true
        }
    }

    /// The next message of the finished one's key, or nil (and the key is forgotten) when none waits.
    func next(after message: KafkaMessage) -> KafkaMessage? {
        guard let key = message.key else { return nil }
        return waiting.withLock { waiting in
            guard var queue = waiting[key], !queue.isEmpty else {
                waiting[key] = nil
                return nil
            }
            let next = queue.removeFirst()
            waiting[key] = queue
            return next
        }
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

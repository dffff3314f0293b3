import Kafka
import Logging
import ServiceLifecycle
import Shared
import Synchronization

/// Hands each message of a consumer to `handle`. With `.byKey`, messages with one key run one after
/// another in offset order and messages with different keys run at once; with `.unordered` every
/// message runs on its own (for inputs whose effects commute). A message's offset becomes committable
/// only once `handle` returned; when `handle` throws (its work was cancelled or given up, e.g. at
/// shutdown) the message is abandoned: never committed, so it comes back, and the messages queued
/// behind it for its key are not begun either. `handle` publishes its outputs (and waits for the broker)
/// before returning, and retries what failed for a passing reason.
///
/// A graceful stop stops the consumer's delivery, begins nothing more, and lets the messages that run
/// finish; the consumer (listed before this processor in the `ServiceGroup`) then commits them as it
/// closes.
public struct KeyedProcessor: Service, CustomStringConvertible {
    public var description: String { "KeyedProcessor" }

    public enum Ordering: Sendable {
        /// One key's messages one after another, in offset order.
        case byKey
        /// Every message on its own.
        case unordered
    }

    let consumer: KafkaConsumer
    let ordering: Ordering
    let logger: Logger
    let handle: @Sendable (KafkaMessage) async throws -> Void

    public init(
        consumer: KafkaConsumer, ordering: Ordering = .byKey, logger: Logger,
        handle: @escaping @Sendable (KafkaMessage) async throws -> Void
    ) {
        self.consumer = consumer
        self.ordering = ordering
        self.logger = logger
        self.handle = handle
    }

    public func run() async throws {
        let queues = KeyQueues(ordered: ordering == .byKey)
        let (consumer, handle) = (self.consumer, self.handle)
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await delivered in consumer.batches {
                    for message in delivered where queues.enqueue(message) {
                        // The key had nothing waiting or running: a task of its own runs its messages in order.
                        group.addTask {
                            var next: KafkaMessage? = message
                            while let current = next {
                                guard consumer.begin(current) else {
                                    // Its partition went to another member, which will get it.
                                    consumer.skipped(current)
                                    next = queues.next(after: current)
                                    continue
                                }
                                do {
                                    try await handle(current)
                                    consumer.finished(current)
                                    next = queues.next(after: current)
                                } catch {
                                    consumer.abandoned(current)
                                    for behind in queues.abandon(after: current) { consumer.skipped(behind) }
                                    next = nil
                                }
                            }
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            queues.stop()
            consumer.stopDelivering()
        }
        for message in queues.stop() { consumer.skipped(message) }
        logger.info("stopped processing")
    }
}

/// The messages waiting behind the running one, per key. A key is present while one of its messages
/// runs; a message without a key (or any message when unordered) runs on its own.
final class KeyQueues: Sendable {
    private struct State {
        var waiting: [[UInt8]: [KafkaMessage]] = [:]
        var stopped = false
        /// Handed out after the stop: never begun.
        var left: [KafkaMessage] = []
    }

    private let ordered: Bool
    private let state = Mutex(State())

    init(ordered: Bool) { self.ordered = ordered }

    /// Queues a message behind its key's running one; true when nothing of its key runs, so the caller
    /// runs it now.
    func enqueue(_ message: KafkaMessage) -> Bool {
        state.withLock { state in
            if state.stopped {
                state.left.append(message)
                return false
            }
            guard ordered, let key = message.key else { return true }
            if state.waiting[key] != nil {
                state.waiting[key]!.append(message)
                return false
            }
            state.waiting[key] = []
            return true
        }
    }

    /// The next message of the finished one's key, or nil (and the key is forgotten) when none waits or
    /// the processor stops.
    func next(after message: KafkaMessage) -> KafkaMessage? {
        guard ordered, let key = message.key else { return nil }
        return state.withLock { state in
            guard !state.stopped, var queue = state.waiting[key], !queue.isEmpty else {
                state.waiting[key] = nil
                return nil
            }
            let next = queue.removeFirst()
            state.waiting[key] = queue
            return next
        }
    }

    /// Forgets the key of a message that was given up, and answers what waited behind it.
    func abandon(after message: KafkaMessage) -> [KafkaMessage] {
        guard ordered, let key = message.key else { return [] }
        return state.withLock { state in state.waiting.removeValue(forKey: key) ?? [] }
    }

    /// Begins nothing more; answers every message still waiting (never begun).
    @discardableResult
    func stop() -> [KafkaMessage] {
        state.withLock { state in
            state.stopped = true
            defer {
                state.waiting = state.waiting.mapValues { _ in [] }
                state.left = []
            }
            return state.waiting.values.flatMap { $0 } + state.left
        }
    }
}

/// Runs `body` until it succeeds, waiting longer between tries (up to 5 s), for work that must not be
/// dropped (publishing, bookkeeping) while a dependency is briefly away. Gives up only when its task is
/// cancelled (shutdown), by throwing, or when `retrying` says an error will not pass, by throwing it.
public func untilSucceeded<T: Sendable>(
    _ what: String, logger: Logger, retrying: @Sendable (any Error) -> Bool = { _ in true }, _ body: @Sendable () async throws -> T
) async throws -> T {
    let backoff = Backoff(initial: 0.1, ceiling: 5)
    var failures = 0
    while true {
        try Task.checkCancellation()
        do {
            return try await body()
        } catch {
            guard retrying(error) else { throw error }
            failures += 1
            logger.warning("\(what) failed; trying again", metadata: ["error": "\(error)"])
            try await Task.sleep(for: .seconds(backoff.delay(after: failures)))
        }
    }
}

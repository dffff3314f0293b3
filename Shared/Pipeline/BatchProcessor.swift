import Kafka
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Hands a consumer's messages to `handle` a batch at a time: everything that arrived while the
/// previous batch ran, up to `maxBatch`, in the order the consumer delivered it. Batches run one after
/// another, so one key's messages are handled in offset order, and the database work of many messages
/// is a few statements in one transaction. A batch's messages become committable once `handle`
/// returned. When `handle` throws, every message of the batch is abandoned and nothing more is begun:
/// they all come back. A throw that is not a stop (cancellation) ends the service with the error.
///
/// Under load a batch starts at most every `interval` (unless `maxBatch` messages wait): what arrives
/// meanwhile joins it, so that the number of transactions stays bounded however fast messages come.
/// After a quiet time a message starts its batch at once.
///
/// A graceful stop stops the consumer's delivery and lets the running batch finish; what waited for
/// the next batch is left uncommitted.
public struct BatchProcessor: Service, CustomStringConvertible {
    public var description: String { "BatchProcessor" }

    let consumer: KafkaConsumer
    let maxBatch: Int
    let interval: Duration
    let logger: Logger
    let handle: @Sendable ([KafkaMessage]) async throws -> Void

    public init(
        consumer: KafkaConsumer, maxBatch: Int = 512, interval: Duration = .zero, logger: Logger,
        handle: @escaping @Sendable ([KafkaMessage]) async throws -> Void
    ) {
        self.consumer = consumer
        self.maxBatch = maxBatch
        self.interval = interval
        self.logger = logger
        self.handle = handle
    }

    public func run() async throws {
        let inbox = Inbox()
        let (consumer, handle, maxBatch, interval) = (self.consumer, self.handle, self.maxBatch, self.interval)
        let failure = await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group -> (any Error)? in
                group.addTask {
                    for await delivered in consumer.batches {
                        for message in inbox.put(delivered) { consumer.skipped(message) }
                    }
                    inbox.close()
                }
                var nextStart = ContinuousClock.now
                while let batch = await inbox.take(maxBatch, notBefore: nextStart) {
                    nextStart = .now + interval
                    var begun: [KafkaMessage] = []
                    begun.reserveCapacity(batch.count)
                    for message in batch {
                        // A message whose partition went to another member is that member's now.
                        if consumer.begin(message) { begun.append(message) } else { consumer.skipped(message) }
                    }
                    guard !begun.isEmpty else { continue }
                    Meters.counter("writeback_batches_total").increment()
                    Meters.counter("writeback_batch_messages_total").increment(by: begun.count)
                    do {
                        let started = ContinuousClock.now
                        try await handle(begun)
                        Meters.timer("writeback_batch_duration_seconds").record(duration: ContinuousClock.now - started)
                        for message in begun { consumer.finished(message) }
                    } catch {
                        for message in begun { consumer.abandoned(message) }
                        for message in inbox.stop() { consumer.skipped(message) }
                        if Task.isCancelled || error is CancellationError { return nil }
                        // Not a stop: the service ends with the error (nothing after the batch is begun,
                        // and all of it comes back to the next member) instead of stalling.
                        consumer.stopDelivering()
                        return error
                    }
                }
                return nil
            }
        } onGracefulShutdown: {
            consumer.stopDelivering()
            for message in inbox.stop() { consumer.skipped(message) }
        }
        for message in inbox.stop() { consumer.skipped(message) }
        if let failure {
            logger.error("processing failed; stopping", metadata: ["error": "\(failure)"])
            throw failure
        }
        logger.info("stopped processing")
    }
}

/// The messages delivered and not yet taken into a batch.
private final class Inbox: Sendable {
    private struct State {
        var messages: [KafkaMessage] = []
        /// No more will come: `take` answers what is left, then nil.
        var closed = false
        /// Nothing more is taken.
        var stopped = false
    }

    private let state = Mutex(State())
    private let arrived = WakeSignal()

    /// Keeps messages for the next batches; answers those not kept (all of them once stopped: they will
    /// not be handled).
    func put(_ messages: [KafkaMessage]) -> [KafkaMessage] {
        let kept = state.withLock { state in
            guard !state.stopped else { return false }
            state.messages.append(contentsOf: messages)
            return true
        }
        if kept { arrived.notify() }
        return kept ? [] : messages
    }

    func close() {
        state.withLock { $0.closed = true }
        arrived.notify()
    }

    /// Up to `limit` messages in delivery order, waiting for the first, and with fewer than `limit`,
    /// for more until `notBefore`; nil once closed and empty, or stopped.
    func take(_ limit: Int, notBefore: ContinuousClock.Instant) async -> [KafkaMessage]? {
        enum Turn { case taken([KafkaMessage]?), wait(ContinuousClock.Instant?) }
        while true {
            let turn = state.withLock { state -> Turn in
                if state.stopped { return .taken(nil) }
                if !state.messages.isEmpty {
                    if state.messages.count < limit && !state.closed && ContinuousClock.now < notBefore { return .wait(notBefore) }
                    let count = min(limit, state.messages.count)
                    let batch = Array(state.messages.prefix(count))
                    state.messages.removeFirst(count)
                    return .taken(batch)
                }
                return state.closed ? .taken(nil) : .wait(nil)
            }
            switch turn {
            case .taken(let batch): return batch
            case .wait(let deadline): await arrived.wait(until: deadline)
            }
        }
    }

    /// Takes nothing more; answers what was never taken.
    func stop() -> [KafkaMessage] {
        let left = state.withLock { state in
            state.stopped = true
            defer { state.messages = [] }
            return state.messages
        }
        arrived.notify()
        return left
    }
}

import CRdKafka
import Foundation
import Synchronization

/// A consumer-group member with manual offset commits. Messages arrive on `messages`; before processing
/// one the caller asks `begin(_:)`, and after it calls `finished(_:)` once the outcome is safely
/// published (or `skipped(_:)` when `begin` said no). Only offsets below the oldest unfinished message
/// are committed. At most `maxInFlight` messages are handed out unfinished; while that many are, the
/// assigned partitions are paused and polling goes on, so the member stays in its group. When a rebalance takes
/// partitions away, their messages that have not begun are not begun, the running ones are waited for
/// (up to `revokeTimeout`), and what finished is committed before the partitions go to another member,
/// so two members never process one message at once.
///
/// `@unchecked Sendable`: the handle is only polled by the consumer's own thread (commits and
/// assignments happen there too); the tracker is behind a mutex.
public final class KafkaConsumer: @unchecked Sendable {
    // Stored-property order: `state` (the rebalance callback's opaque) is declared before the handle and
    // so outlives it; the poll thread closes the consumer before deinit destroys the handle.
    private let state: ConsumerState
    private let handle: OpaquePointer
    private let permits: Permits
    private let running = Atomic<Bool>(true)
    private let joined = Atomic<Bool>(false)
    private let stopped = DispatchSemaphore(value: 0)
    private let continuation: AsyncStream<KafkaMessage>.Continuation
    public let messages: AsyncStream<KafkaMessage>

    public init(
        configuration: KafkaConfiguration, groupID: String, topics: [String], maxInFlight: Int = 256,
        revokeTimeout: Double = 60
    ) throws {
        state = ConsumerState(revokeTimeout: revokeTimeout)
        let conf = try configuration.makeConf([
            "group.id": groupID,
            "enable.auto.commit": "false",
            "enable.auto.offset.store": "false",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": "false",
        ], consumer: true)
        rd_kafka_conf_set_rebalance_cb(conf, onRebalance)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(state).toOpaque())
        handle = try makeKafkaHandle(RD_KAFKA_CONSUMER, conf: conf)
        permits = Permits(maxInFlight)
        (messages, continuation) = AsyncStream.makeStream(of: KafkaMessage.self)
        rd_kafka_poll_set_consumer(handle)

        guard let list = rd_kafka_topic_partition_list_new(Int32(topics.count)) else {
            rd_kafka_destroy(handle)
            throw KafkaError(code: -1, message: "out of memory")
        }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics { rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA) }
        let error = rd_kafka_subscribe(handle, list)
        if error != RD_KAFKA_RESP_ERR_NO_ERROR {
            rd_kafka_destroy(handle)
            throw KafkaError(error, context: "subscribe")
        }
        let thread = Thread { [self] in self.poll() }
        thread.name = "kafka-consumer-\(groupID)"
        thread.start()
    }

    deinit {
        rd_kafka_destroy(handle)
    }

    /// Whether a message handed out on `messages` may be processed now. False when its partition is
    /// being taken away: call `skipped(_:)` then; another member will get it.
    public func begin(_ message: KafkaMessage) -> Bool {
        state.tracker.withLock { $0.start(TopicPartition(topic: message.topic, partition: message.partition), offset: message.offset) }
    }

    /// Marks a begun message as done; its offset becomes committable.
    public func finished(_ message: KafkaMessage) {
        state.tracker.withLock { $0.finished(TopicPartition(topic: message.topic, partition: message.partition), offset: message.offset) }
        permits.release()
    }

    /// A message `begin` refused: it stays uncommitted.
    public func skipped(_ message: KafkaMessage) {
        permits.release()
    }

    /// Asks the consumer to stop without waiting: it commits what is finished, leaves the group and
    /// ends `messages`.
    public func requestStop() {
        running.store(false, ordering: .relaxed)
    }

    /// Stops and waits for the poll thread. Safe to call more than once.
    public func shutdown() {
        requestStop()
        guard !joined.exchange(true, ordering: .relaxed) else { return }
        stopped.wait()
    }

    private func poll() {
        var paused = false
        while running.load(ordering: .relaxed) {
            let permitted = permits.acquire(waitingAtMost: paused ? 0.02 : 0.1)
            if permitted && paused {
                setPaused(false)
                paused = false
            } else if !permitted && (!paused || state.assigned.exchange(false, ordering: .relaxed)) {
                // Full: stop fetching but keep polling, so the group still hears from this member and
                // rebalances are served; newly assigned partitions are paused again.
                setPaused(true)
                paused = true
            }
            guard let raw = rd_kafka_consumer_poll(handle, permitted ? 100 : 0) else {
                if permitted { permits.release() }
                state.commitFinished(handle, async: true)
                continue
            }
            defer { rd_kafka_message_destroy(raw) }
            if raw.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                if permitted { permits.release() }
                continue
            }
            // A message fetched before the pause took hold is handed out all the same.
            if !permitted { permits.overdraw() }
            let message = KafkaMessage(raw)
            state.tracker.withLock { $0.dispatched(TopicPartition(topic: message.topic, partition: message.partition), offset: message.offset) }
            continuation.yield(message)
            state.commitFinished(handle, async: true)
        }
        state.commitFinished(handle, async: false)
        rd_kafka_consumer_close(handle)
        continuation.finish()
        stopped.signal()
    }

    /// Pauses or resumes fetching from every assigned partition; consumption resumes where it stopped.
    private func setPaused(_ pause: Bool) {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        guard rd_kafka_assignment(handle, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        _ = pause ? rd_kafka_pause_partitions(handle, list) : rd_kafka_resume_partitions(handle, list)
    }
}

/// What the rebalance callback needs, reachable through the conf's opaque before the consumer exists.
/// `@unchecked Sendable`: the tracker is a mutex; everything else is immutable.
private final class ConsumerState: @unchecked Sendable {
    let tracker = Mutex(OffsetTracker())
    /// Set when partitions were assigned (they come unpaused).
    let assigned = Atomic<Bool>(false)
    /// Longest wait for running messages of partitions being taken away.
    let revokeTimeout: Double

    init(revokeTimeout: Double) { self.revokeTimeout = revokeTimeout }

    /// Lets the running messages of `partitions` finish (none of their queued ones start any more).
    func drain(_ partitions: [TopicPartition]) {
        let deadline = ContinuousClock.now + .milliseconds(Int(revokeTimeout * 1000))
        var running = tracker.withLock { $0.revoke(partitions) }
        while running > 0 && ContinuousClock.now < deadline {
            usleep(5_000)
            running = tracker.withLock { $0.running(in: partitions) }
        }
    }

    func commitFinished(_ handle: OpaquePointer, async: Bool) {
        let offsets = tracker.withLock { $0.takeCommittable() }
        guard !offsets.isEmpty, let list = rd_kafka_topic_partition_list_new(Int32(offsets.count)) else { return }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (partition, offset) in offsets {
            rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition).pointee.offset = offset
        }
        _ = rd_kafka_commit(handle, list, async ? 1 : 0)
    }
}

/// Called on the poll thread from inside `rd_kafka_consumer_poll`: partitions handed over or taken away
/// start their bookkeeping afresh; what is finished is committed before a partition goes.
private let onRebalance: @convention(c) (
    OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?
) -> Void = { handle, error, list, opaque in
    guard let handle, let list, let opaque else { return }
    let state = Unmanaged<ConsumerState>.fromOpaque(opaque).takeUnretainedValue()
    let partitions = (0..<Int(list.pointee.cnt)).map { index in
        let element = list.pointee.elems[index]
        return TopicPartition(topic: String(cString: element.topic), partition: element.partition)
    }
    if error == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
        state.tracker.withLock { $0.reset(partitions) }
        rd_kafka_assign(handle, list)
        state.assigned.store(true, ordering: .relaxed)
    } else {
        state.drain(partitions)
        state.commitFinished(handle, async: false)
        state.tracker.withLock { $0.reset(partitions) }
        rd_kafka_assign(handle, nil)
    }
}

/// Messages that may be handed out unfinished. Unlike a DispatchSemaphore it may be released below its
/// initial count when the consumer goes away with messages outstanding, and overdrawn.
/// `@unchecked Sendable`: the count is only touched under the condition's lock.
private final class Permits: @unchecked Sendable {
    private let condition = NSCondition()
    private var available: Int

    init(_ count: Int) { available = count }

    func acquire(waitingAtMost seconds: Double) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date(timeIntervalSinceNow: seconds)
        while available <= 0 {
            if !condition.wait(until: deadline) { return false }
        }
        available -= 1
        return true
    }

    /// Takes one more than there is (a message that arrived anyway); the next releases pay it back.
    func overdraw() {
        condition.lock()
        available -= 1
        condition.unlock()
    }

    func release() {
        condition.lock()
        available += 1
        condition.signal()
        condition.unlock()
    }
}

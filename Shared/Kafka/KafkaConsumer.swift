import CRdKafka
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Told of a consumer's partitions as the group hands them over and takes them away. Called on the
/// consumer's poll thread, from inside the rebalance.
public protocol KafkaRebalanceListener: Sendable {
    /// These partitions are this member's now, each with the group's committed offset (where this
    /// member starts reading; 0 when none was committed); called before any of their messages is handed
    /// out.
    func assigned(_ partitions: [(partition: TopicPartition, committed: Int64)])
    /// These partitions are being taken away: nothing of them may start any more (`begin` and
    /// `beginWork` say no), and what runs should end soon. Called before waiting for it.
    func revoking(_ partitions: [TopicPartition])
    /// These partitions are gone: their running work ended and what finished was committed.
    func revoked(_ partitions: [TopicPartition])
}

/// A consumer-group member with manual offset commits. Messages arrive on `batches`; before processing
/// one the caller asks `begin(_:)`, and after it calls `finished(_:)` once the outcome is safely
/// published, or `abandoned(_:)` when its processing was given up (cancelled, stopped); a message that
/// is not processed here (`begin` said no, or it was let go before it began) is `skipped(_:)`. Only
/// offsets below the oldest message that did not finish are committed: what did not finish comes back. Work that belongs to a partition but is not a message is announced with `beginWork(on:)` and
/// `endWork(on:)`.
///
/// At most `maxInFlight` messages are handed out unfinished; while that many are, the assigned
/// partitions are paused and polling goes on, so the member stays in its group. (Messages fetched
/// before a pause took hold are handed out all the same, and so is, from a partition just handed over,
/// what comes before its first message shows that its fetching started: see `ConsumerState.young`.) When a rebalance takes
/// partitions away, nothing more of them starts, the work still running for them is waited for (however
/// long: it is the caller's to keep it short), and what finished is committed before the partitions go
/// to another member, so two members never work one partition at once.
///
/// As a `Service`, it polls from `run()` until graceful shutdown; `stopDelivering()` (the processor's
/// first step of a graceful stop) ends `batches` while it keeps its place in the group, so that the
/// messages still running can finish and be committed when it closes.
///
/// `@unchecked Sendable`: the handle is only polled by the consumer's own thread (commits and
/// assignments happen there too); the tracker and flags are behind a mutex or atomics.
public final class KafkaConsumer: Service, @unchecked Sendable {
    // Stored-property order: `state` (the rebalance callback's opaque) is declared before the handle and
    // so outlives it; the poll thread closes the consumer before deinit destroys the handle.
    private let state: ConsumerState
    private let handle: OpaquePointer
    private let permits: Permits
    private let groupID: String
    private let started = Atomic<Bool>(false)
    private let delivering = Atomic<Bool>(true)
    private let closing = Atomic<Bool>(false)
    private let continuation: AsyncStream<[KafkaMessage]>.Continuation
    private let closed = ClosedSignal()
    /// The messages handed out, in order, as many at a time as the poll thread found waiting (up to
    /// `batchLimit`): one hand-over to the reading task per batch, not per message.
    public let batches: AsyncStream<[KafkaMessage]>
    /// The most messages handed out together.
    static let batchLimit = 256

    public init(
        configuration: KafkaConfiguration, groupID: String, topics: [String], maxInFlight: Int = 256,
        listener: (any KafkaRebalanceListener)? = nil
    ) throws {
        state = ConsumerState(listener: listener)
        self.groupID = groupID
        let conf = try configuration.makeConf([
            "group.id": groupID,
            "enable.auto.commit": "false",
            "enable.auto.offset.store": "false",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": "false",
            "queued.max.messages.kbytes": String(ReadAheadWatch.defaultKilobytes),
        ], consumer: true)
        rd_kafka_conf_set_rebalance_cb(conf, onRebalance)
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(state).toOpaque())
        handle = try makeKafkaHandle(RD_KAFKA_CONSUMER, conf: conf)
        permits = Permits(maxInFlight)
        (batches, continuation) = AsyncStream.makeStream(of: [KafkaMessage].self)
        // From here every stored property is set: a failure below leaves the handle to deinit.
        rd_kafka_poll_set_consumer(handle)
        guard let list = rd_kafka_topic_partition_list_new(Int32(topics.count)) else {
            throw KafkaError(code: -1, message: "out of memory")
        }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics { rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA) }
        let error = rd_kafka_subscribe(handle, list)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(error, context: "subscribe") }
    }

    deinit {
        rd_kafka_destroy(handle)
    }

    /// Polls on a thread of its own until graceful shutdown (or cancellation); then commits what
    /// finished and leaves the group.
    public func run() async throws {
        startPolling()
        await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await closed.wait()
            } onGracefulShutdown: {
                self.close()
            }
        } onCancel: {
            self.close()
        }
    }

    /// Starts the poll thread (once); `run()` does it, tests may call it directly.
    public func startPolling() {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        let thread = Thread { [self] in self.poll() }
        thread.name = "kafka-consumer-\(groupID)"
        thread.start()
    }

    /// Whether a message handed out on `batches` may be processed now. False when its partition is
    /// being taken away: call `abandoned(_:)` then; another member will get it.
    public func begin(_ message: KafkaMessage) -> Bool {
        state.tracker.withLock { $0.start(message.topicPartition, offset: message.offset) }
    }

    /// Marks a begun message as done; its offset becomes committable.
    public func finished(_ message: KafkaMessage) {
        state.tracker.withLock { $0.finished(message.topicPartition, offset: message.offset) }
        state.changed()
        permits.release()
    }

    /// A begun message whose processing was given up: it stays uncommitted and comes back (to this
    /// member after a restart, or to the partition's next owner).
    public func abandoned(_ message: KafkaMessage) {
        state.tracker.withLock { $0.abandon(message.topicPartition, offset: message.offset) }
        state.changed()
        permits.release()
    }

    /// A message handed out that will not be processed here and was never begun (or `begin` said no):
    /// it stays uncommitted; another copy of its offset that did begin is not affected.
    public func skipped(_ message: KafkaMessage) {
        permits.release()
    }

    /// Announces work of a partition that is not a message; false when the partition is not this
    /// member's (any more): do not start it then. Every true is followed by `endWork(on:)`.
    public func beginWork(on partition: TopicPartition) -> Bool {
        state.tracker.withLock { $0.startWork(partition) }
    }

    public func endWork(on partition: TopicPartition) {
        state.tracker.withLock { $0.finishWork(partition) }
        state.changed()
    }

    /// Who hears of partitions handed over and taken away; set before polling starts.
    public func setRebalanceListener(_ listener: any KafkaRebalanceListener) {
        state.listener = listener
    }

    /// Whether this member owns the partition now (assigned, not being taken away).
    public func owns(_ partition: TopicPartition) -> Bool {
        state.tracker.withLock { $0.owns(partition) }
    }

    /// Hands out no more messages and ends `batches`; the member stays in its group until `close`.
    public func stopDelivering() {
        guard delivering.exchange(false, ordering: .relaxed) else { return }
        continuation.finish()
    }

    /// Stops polling: commits what finished, leaves the group and ends `batches`. Returns at once; the
    /// poll thread does it.
    public func close() {
        stopDelivering()
        closing.store(true, ordering: .relaxed)
        if !started.load(ordering: .relaxed) { closed.signal() }
    }

    /// Closes and waits for the poll thread to end. Safe to call more than once.
    public func shutdown() async {
        close()
        await closed.wait()
    }

    private func poll() {
        var paused = false
        let queue = rd_kafka_queue_get_consumer(handle)
        var readAhead = ReadAheadWatch(boundBytes: readAheadBoundBytes(handle))
        // Messages handed out and not yet given to the reader: given before the thread waits for anything
        // (a permit, a fetch) and whenever `batchLimit` gather.
        var gathered: [KafkaMessage] = []
        func handOver() {
            guard !gathered.isEmpty else { return }
            continuation.yield(gathered)
            gathered = []
        }
        while !closing.load(ordering: .relaxed) {
            if !paused, let queue, readAhead.observe(queued: Int(rd_kafka_queue_length(queue))) { nudgeFetchers(handle) }
            let delivering = delivering.load(ordering: .relaxed)
            var permitted = delivering && permits.acquire(waitingAtMost: 0)
            if delivering && !permitted {
                handOver()
                permitted = permits.acquire(waitingAtMost: paused ? 0.02 : 0.1)
            }
            // Partitions handed over while the member was full are paused once they may be.
            let grown = state.grown()
            if permitted && paused {
                setPaused(false)
                paused = false
            } else if !permitted && !paused {
                // Full (or no longer delivering): stop fetching but keep polling, so the group still hears
                // from this member and rebalances are served. Pausing drops what was read ahead (resuming
                // fetches it again).
                setPaused(true)
                paused = true
                readAhead.reset()
            } else if paused && !grown.isEmpty {
                grown.withList { rd_kafka_pause_partitions(handle, $0) }
            }
            let wait: Int32 = !gathered.isEmpty ? 0 : permitted ? 100 : (delivering ? 0 : 50)
            guard let raw = rd_kafka_consumer_poll(handle, wait) else {
                if permitted { permits.release() }
                handOver()
                state.commitFinished(handle, async: true)
                continue
            }
            defer { rd_kafka_message_destroy(raw) }
            if raw.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR || !delivering {
                // An error, or a message fetched after delivery stopped: it is not handed out (so not
                // committed either). An error is told: one partition's may mean it is not being read.
                if raw.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR { Self.log(raw) }
                if permitted { permits.release() }
                continue
            }
            // A message fetched before the pause took hold is handed out all the same.
            if !permitted { permits.overdraw() }
            let message = KafkaMessage(raw)
            state.fetched(message.topicPartition)
            readAhead.delivered(bytes: message.value.count)
            state.tracker.withLock { $0.dispatched(message.topicPartition, offset: message.offset) }
            gathered.append(message)
            if gathered.count >= Self.batchLimit { handOver() }
            state.commitFinished(handle, async: true)
        }
        handOver()
        state.commitFinished(handle, async: false)
        if let queue { rd_kafka_queue_destroy(queue) }
        rd_kafka_consumer_close(handle)
        continuation.finish()
        closed.signal()
    }

    /// Pauses or resumes fetching from every assigned partition (but those just handed over, see
    /// `ConsumerState.young`); consumption resumes where it stopped. librdkafka 2.0.2 fetches resumed
    /// partitions only once its fetcher wakes (up to a second later): resuming wakes it.
    private func setPaused(_ pause: Bool) {
        var assigned: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        guard rd_kafka_assignment(handle, &assigned) == RD_KAFKA_RESP_ERR_NO_ERROR, let assigned else { return }
        defer { rd_kafka_topic_partition_list_destroy(assigned) }
        let young = state.youngPartitions()
        let list = young.isEmpty ? assigned : Self.list(assigned, without: young)
        defer { if list != assigned { rd_kafka_topic_partition_list_destroy(list) } }
        if pause {
            rd_kafka_pause_partitions(handle, list)
        } else {
            rd_kafka_resume_partitions(handle, list)
            nudgeFetchers(handle, of: list)
        }
    }
}

/// What the rebalance callback needs, reachable through the conf's opaque before the consumer exists.
/// `@unchecked Sendable`: the tracker is a mutex, the condition guards nothing but the wake-ups; the
/// time of the last commit is the poll thread's alone; everything else is immutable.
private final class ConsumerState: @unchecked Sendable {
    let tracker = Mutex(OffsetTracker())
    /// Partitions handed over and not known to be fetched yet, and when they were handed over. Every
    /// pause or resume of a partition takes a newer op version of it, and librdkafka 2.0.2 discards an
    /// op older than one it has served (librdkafka #2190): a pause or resume that overtakes the fetch
    /// start librdkafka makes after an assignment (once the committed offset is known) leaves the
    /// partition assigned and never fetched, with no error. So a partition is neither paused nor
    /// resumed until a message of it was fetched (its fetch has started), or `idleGrace` passed without
    /// one (nothing to fetch); meanwhile it fetches, full or not, and then it is paused if the member is
    /// full. Touched on the poll thread only (the rebalance callback runs on it too).
    private var young: [TopicPartition: ContinuousClock.Instant] = [:]
    /// Partitions that left `young` since the poll thread last looked.
    private var grownUp: [TopicPartition] = []
    /// When the oldest of `young` has waited `idleGrace` (or later, when it left early).
    private var youngDue: ContinuousClock.Instant?
    static let idleGrace = Duration.seconds(30)

    func handedOver(_ partitions: [TopicPartition]) {
        let now = ContinuousClock.now
        for partition in partitions { young[partition] = now }
        if !partitions.isEmpty { youngDue = min(youngDue ?? now + Self.idleGrace, now + Self.idleGrace) }
    }

    func takenAway(_ partitions: [TopicPartition]) {
        for partition in partitions { young[partition] = nil }
        grownUp.removeAll { partitions.contains($0) }
    }

    /// A message of `partition` was fetched.
    func fetched(_ partition: TopicPartition) {
        guard !young.isEmpty, young.removeValue(forKey: partition) != nil else { return }
        grownUp.append(partition)
    }

    /// Partitions not to pause or resume yet.
    func youngPartitions() -> Set<TopicPartition> { Set(young.keys) }

    /// Partitions that may be paused or resumed since the last call.
    func grown() -> [TopicPartition] {
        // Looked through only once the first of them may be due, not at every poll.
        if let due = youngDue, ContinuousClock.now >= due {
            let since = ContinuousClock.now - Self.idleGrace
            for (partition, handed) in young where handed <= since { grownUp.append(partition) }
            for partition in grownUp { young[partition] = nil }
            youngDue = young.values.min().map { $0 + Self.idleGrace }
        }
        defer { grownUp = [] }
        return grownUp
    }
    private let listenerBox: Mutex<(any KafkaRebalanceListener)?>
    var listener: (any KafkaRebalanceListener)? {
        get { listenerBox.withLock { $0 } }
        set { listenerBox.withLock { $0 = newValue } }
    }
    /// Woken whenever work ends, for `drain`.
    private let ended = NSCondition()

    init(listener: (any KafkaRebalanceListener)?) { listenerBox = Mutex(listener) }

    func changed() {
        ended.lock()
        ended.broadcast()
        ended.unlock()
    }

    /// Lets the running work of `partitions` finish (nothing more of them starts), however long it takes.
    func drain(_ partitions: [TopicPartition]) {
        var running = tracker.withLock { $0.revoke(partitions) }
        listener?.revoking(partitions)
        ended.lock()
        while running > 0 {
            _ = ended.wait(until: Date(timeIntervalSinceNow: 0.05))
            running = tracker.withLock { $0.running(in: partitions) }
        }
        ended.unlock()
    }

    /// When offsets were last committed in passing.
    private var lastCommit = ContinuousClock.now
    /// Commits in passing (while polling) go at most this often; a rebalance and the close commit at once.
    static let commitInterval = Duration.milliseconds(50)

    /// Commits what finished: in passing (`async`) at most every `commitInterval`, else at once and
    /// waiting for the broker. Called on the poll thread only.
    func commitFinished(_ handle: OpaquePointer, async: Bool) {
        if async {
            let now = ContinuousClock.now
            guard now - lastCommit >= Self.commitInterval else { return }
            lastCommit = now
        }
        let offsets = tracker.withLock { $0.takeCommittable() }
        guard !offsets.isEmpty, let list = rd_kafka_topic_partition_list_new(Int32(offsets.count)) else { return }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (partition, offset) in offsets {
            rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition).pointee.offset = offset
        }
        _ = rd_kafka_commit(handle, list, async ? 1 : 0)
    }
}

/// Called on the poll thread from inside `rd_kafka_consumer_poll`: partitions handed over start their
/// bookkeeping afresh; partitions taken away are drained and what finished is committed before they go.
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
        state.tracker.withLock { $0.assign(partitions) }
        if let listener = state.listener {
            // Where this member starts reading each partition: its listener may need to know what is
            // behind that (committed before) and what lies ahead (to be read).
            var committed = partitions.map { ($0, Int64(0)) }
            if rd_kafka_committed(handle, list, 10_000) == RD_KAFKA_RESP_ERR_NO_ERROR {
                committed = (0..<Int(list.pointee.cnt)).map { index in
                    let element = list.pointee.elems[index]
                    return (TopicPartition(topic: String(cString: element.topic), partition: element.partition), max(0, element.offset))
                }
            } else {
                // Unknown: told as "all of it committed", so that nothing waits for it.
                committed = partitions.map { ($0, Int64.max) }
            }
            listener.assigned(committed)
            for index in 0..<Int(list.pointee.cnt) { list.pointee.elems[index].offset = Int64(RD_KAFKA_OFFSET_INVALID) }
        }
        // librdkafka keeps a partition's pause across losing and regaining it. The poll thread pauses
        // what is assigned whenever it is full; one that was paused when it went away and comes back
        // after the poll thread resumed (what was then assigned) would stay paused for good. Each
        // partition is resumed before it is assigned (after, the resume could overtake its fetch start:
        // see `ConsumerState.young`); the poll thread pauses it after its grace if it is still full.
        rd_kafka_resume_partitions(handle, list)
        if rd_kafka_assign(handle, list) == RD_KAFKA_RESP_ERR_NO_ERROR { state.handedOver(partitions) }
    } else {
        state.takenAway(partitions)
        state.drain(partitions)
        state.commitFinished(handle, async: false)
        state.tracker.withLock { $0.reset(partitions) }
        state.listener?.revoked(partitions)
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

/// Set once when a poll thread ends; any number of tasks may wait for it.
final class ClosedSignal: Sendable {
    private let state = Mutex<(done: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func signal() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.done = true
            defer { state.waiters = [] }
            return state.waiters
        }
        waiters.forEach { $0.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state in
                if !state.done { state.waiters.append(continuation) }
                return state.done
            }
            if done { continuation.resume() }
        }
    }
}

extension KafkaConsumer {
    private static let logger = Logger(label: "writeback.kafka")

    /// Tells a consumer error (a partition's, or the client's).
    fileprivate static func log(_ raw: UnsafeMutablePointer<rd_kafka_message_t>) {
        var metadata: Logger.Metadata = ["error": "\(String(cString: rd_kafka_err2str(raw.pointee.err)))"]
        if let topic = raw.pointee.rkt {
            metadata["topic"] = "\(String(cString: rd_kafka_topic_name(topic)))"
            metadata["partition"] = "\(raw.pointee.partition)"
        }
        if let detail = rd_kafka_message_errstr(raw) { metadata["detail"] = "\(String(cString: detail))" }
        logger.error("consumer error", metadata: metadata)
    }

    /// A new list of the partitions of `list` but `excluded` (the caller destroys it).
    fileprivate static func list(
        _ list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>, without excluded: Set<TopicPartition>
    ) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        let kept = rd_kafka_topic_partition_list_new(list.pointee.cnt)!
        for index in 0..<Int(list.pointee.cnt) {
            let element = list.pointee.elems[index]
            let partition = TopicPartition(topic: String(cString: element.topic), partition: element.partition)
            if !excluded.contains(partition) { rd_kafka_topic_partition_list_add(kept, element.topic, element.partition) }
        }
        return kept
    }
}

extension Array where Element == TopicPartition {
    /// Calls `body` with these partitions as a librdkafka list.
    fileprivate func withList(_ body: (UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> Void) {
        guard let list = rd_kafka_topic_partition_list_new(Int32(count)) else { return }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for partition in self { rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition) }
        body(list)
    }
}

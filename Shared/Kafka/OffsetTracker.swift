/// Which offset of a partition may be committed, and which work may still start. Messages finish out of
/// order across records, and only the offset below the oldest unfinished one is safe: a message that was
/// handed out and never finished (not begun, abandoned, cancelled) keeps it and everything after it
/// uncommitted. Work that is not a message but belongs to a partition (a write held in a database,
/// picked up again) is counted too, so that a partition is handed over only once none of it runs. A
/// partition being taken away starts nothing more; what already runs is waited for.
struct OffsetTracker: Sendable {
    /// Handed out, not yet started, finished or given up.
    private var queued: [TopicPartition: Set<Int64>] = [:]
    /// Started, not yet finished or given up.
    private var running: [TopicPartition: Set<Int64>] = [:]
    /// Messages abandoned after they started: never committed, so they come back.
    private var abandoned: [TopicPartition: Int64] = [:]
    /// Other work running for a partition.
    private var work: [TopicPartition: Int] = [:]
    private var nextOffset: [TopicPartition: Int64] = [:]
    private var committed: [TopicPartition: Int64] = [:]
    /// Partitions this member owns now.
    private(set) var assigned: Set<TopicPartition> = []
    /// Partitions being taken away: nothing of them starts.
    private var revoking: Set<TopicPartition> = []

    mutating func assign(_ partitions: [TopicPartition]) {
        reset(partitions)
        assigned.formUnion(partitions)
    }

    func owns(_ partition: TopicPartition) -> Bool {
        assigned.contains(partition) && !revoking.contains(partition)
    }

    mutating func dispatched(_ partition: TopicPartition, offset: Int64) {
        queued[partition, default: []].insert(offset)
        nextOffset[partition] = max(nextOffset[partition] ?? 0, offset + 1)
    }

    /// Whether a handed-out message may be processed: false once its partition is being taken away.
    mutating func start(_ partition: TopicPartition, offset: Int64) -> Bool {
        guard !revoking.contains(partition), queued[partition]?.remove(offset) != nil else { return false }
        running[partition, default: []].insert(offset)
        return true
    }

    mutating func finished(_ partition: TopicPartition, offset: Int64) {
        running[partition]?.remove(offset)
    }

    /// A started message whose processing was given up (cancelled, stopped): its offset is never
    /// committed by this member.
    mutating func abandon(_ partition: TopicPartition, offset: Int64) {
        guard running[partition]?.remove(offset) != nil else { return }
        abandoned[partition] = min(abandoned[partition] ?? offset, offset)
    }

    /// Starts work of a partition that is not a message; false when the partition is not (or no longer)
    /// this member's.
    mutating func startWork(_ partition: TopicPartition) -> Bool {
        guard owns(partition) else { return false }
        work[partition, default: 0] += 1
        return true
    }

    mutating func finishWork(_ partition: TopicPartition) {
        guard let count = work[partition] else { return }
        work[partition] = count > 1 ? count - 1 : nil
    }

    /// Starts taking partitions away; returns how much of their work still runs.
    mutating func revoke(_ partitions: [TopicPartition]) -> Int {
        revoking.formUnion(partitions)
        return running(in: partitions)
    }

    /// Messages and other work still running for these partitions.
    func running(in partitions: [TopicPartition]) -> Int {
        partitions.reduce(0) { $0 + (running[$1]?.count ?? 0) + (work[$1] ?? 0) }
    }

    /// Forgets partitions that were taken away or handed over afresh.
    mutating func reset(_ partitions: [TopicPartition]) {
        for partition in partitions {
            queued[partition] = nil
            running[partition] = nil
            abandoned[partition] = nil
            work[partition] = nil
            nextOffset[partition] = nil
            committed[partition] = nil
            revoking.remove(partition)
            assigned.remove(partition)
        }
    }

    /// The offsets to commit now (the next offset to read, per partition), marked as committed.
    mutating func takeCommittable() -> [TopicPartition: Int64] {
        var result: [TopicPartition: Int64] = [:]
        for (partition, next) in nextOffset {
            var safe = next
            if let oldest = queued[partition]?.min() { safe = min(safe, oldest) }
            if let oldest = running[partition]?.min() { safe = min(safe, oldest) }
            if let oldest = abandoned[partition] { safe = min(safe, oldest) }
            if safe > (committed[partition] ?? -1) {
                result[partition] = safe
                committed[partition] = safe
            }
        }
        return result
    }
}

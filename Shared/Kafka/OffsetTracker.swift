/// Which offset of a partition may be committed, and which messages may still start. Messages finish
/// out of order across records, and only the offset below the oldest unfinished one is safe. A
/// partition being taken away starts nothing more; what already runs is waited for.
struct OffsetTracker: Sendable {
    /// Handed out, not yet started or finished.
    private var queued: [TopicPartition: Set<Int64>] = [:]
    /// Started, not yet finished.
    private var running: [TopicPartition: Set<Int64>] = [:]
    private var nextOffset: [TopicPartition: Int64] = [:]
    private var committed: [TopicPartition: Int64] = [:]
    /// Partitions being revoked: their queued messages do not start.
    private var revoking: Set<TopicPartition> = []

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

    /// Starts taking partitions away; returns how many of their messages are still running.
    mutating func revoke(_ partitions: [TopicPartition]) -> Int {
        revoking.formUnion(partitions)
        return running(in: partitions)
    }

    func running(in partitions: [TopicPartition]) -> Int {
        partitions.reduce(0) { $0 + (running[$1]?.count ?? 0) }
    }

    /// Forgets partitions that were taken away or handed over afresh.
    mutating func reset(_ partitions: [TopicPartition]) {
        for partition in partitions {
            queued[partition] = nil
            running[partition] = nil
            nextOffset[partition] = nil
            committed[partition] = nil
            revoking.remove(partition)
        }
    }

    /// The offsets to commit now (the next offset to read, per partition), marked as committed.
    mutating func takeCommittable() -> [TopicPartition: Int64] {
        var result: [TopicPartition: Int64] = [:]
        for (partition, next) in nextOffset {
            let unfinished = (queued[partition] ?? []).union(running[partition] ?? [])
            let safe = unfinished.min() ?? next
            if safe > (committed[partition] ?? -1) {
                result[partition] = safe
                committed[partition] = safe
            }
        }
        return result
    }
}

/// Which offset of a partition may be committed: messages finish out of order across records, and only
/// the offset below the oldest unfinished one is safe.
struct OffsetTracker: Sendable {
    private var pending: [TopicPartition: Set<Int64>] = [:]
    private var nextOffset: [TopicPartition: Int64] = [:]
    private var committed: [TopicPartition: Int64] = [:]

    mutating func dispatched(_ partition: TopicPartition, offset: Int64) {
        pending[partition, default: []].insert(offset)
        nextOffset[partition] = max(nextOffset[partition] ?? 0, offset + 1)
    }

    mutating func finished(_ partition: TopicPartition, offset: Int64) {
        pending[partition]?.remove(offset)
    }

    /// Forgets partitions that were taken away or handed over afresh.
    mutating func reset(_ partitions: [TopicPartition]) {
        for partition in partitions {
            pending[partition] = nil
            nextOffset[partition] = nil
            committed[partition] = nil
        }
    }

    /// The offsets to commit now (the next offset to read, per partition), marked as committed.
    mutating func takeCommittable() -> [TopicPartition: Int64] {
        var result: [TopicPartition: Int64] = [:]
        for (partition, next) in nextOffset {
            let safe = pending[partition]?.min() ?? next
            if safe > (committed[partition] ?? -1) {
                result[partition] = safe
                committed[partition] = safe
            }
        }
        return result
    }
}

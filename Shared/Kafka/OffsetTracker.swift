/// Which offset of a partition may be committed, and which work may still start. Messages finish out of
/// order across records, and only the offset below the oldest unfinished one is safe: a message that was
/// handed out and never finished (not begun, abandoned, cancelled) keeps it and everything after it
/// uncommitted. Work that is not a message but belongs to a partition (a write held in a database,
/// picked up again) is counted too, so that a partition is handed over only once none of it runs. A
/// partition being taken away starts nothing more; what already runs is waited for.
///
/// Offsets arrive in order per partition, so the oldest unfinished one is found at the front of a queue
/// of what was handed out (the finished ones are skipped there once, when they reach the front): finding
/// what to commit costs nothing per message in flight.
struct OffsetTracker: Sendable {
    fileprivate struct Partition: Sendable {
        /// Handed out, in the order they came; those before `head`, and those no longer in `states`, are
        /// finished.
        var handedOut: [Int64] = []
        var head = 0
        /// Handed out and not finished: false while not yet started, true while running.
        var states: [Int64: Bool] = [:]
        /// An offset came again, below one handed out after it: the oldest is searched for then.
        var unordered = false
        var running = 0
        /// Messages abandoned after they started: never committed, so they come back.
        var abandoned: Int64?
        /// Other work running for the partition.
        var work = 0
        var nextOffset: Int64?
        var committed: Int64 = -1
        /// Something changed since the last `takeCommittable`.
        var changed = false

        /// The oldest offset handed out and not finished, if any.
        mutating func oldestUnfinished() -> Int64? {
            if states.isEmpty {
                handedOut = []
                head = 0
                unordered = false
                return nil
            }
            if unordered { return states.keys.min() }
            while head < handedOut.count, states[handedOut[head]] == nil { head += 1 }
            if head > 1024 && head * 2 > handedOut.count {
                handedOut.removeFirst(head)
                head = 0
            }
            return head < handedOut.count ? handedOut[head] : nil
        }
    }

    private var partitions: [TopicPartition: Partition] = [:]
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
        partitions[partition, default: Partition()].handOut(offset)
    }

    /// Whether a handed-out message may be processed: false once its partition is being taken away.
    mutating func start(_ partition: TopicPartition, offset: Int64) -> Bool {
        guard !revoking.contains(partition) else { return false }
        return partitions[partition]?.start(offset) ?? false
    }

    mutating func finished(_ partition: TopicPartition, offset: Int64) {
        _ = partitions[partition]?.end(offset)
    }

    /// A started message whose processing was given up (cancelled, stopped): its offset is never
    /// committed by this member.
    mutating func abandon(_ partition: TopicPartition, offset: Int64) {
        guard partitions[partition]?.end(offset) == true else { return }
        let earlier = partitions[partition]?.abandoned ?? offset
        partitions[partition]?.abandoned = min(earlier, offset)
    }

    /// Starts work of a partition that is not a message; false when the partition is not (or no longer)
    /// this member's.
    mutating func startWork(_ partition: TopicPartition) -> Bool {
        guard owns(partition) else { return false }
        partitions[partition, default: Partition()].work += 1
        return true
    }

    mutating func finishWork(_ partition: TopicPartition) {
        guard let count = partitions[partition]?.work, count > 0 else { return }
        partitions[partition]?.work = count - 1
    }

    /// Starts taking partitions away; returns how much of their work still runs.
    mutating func revoke(_ partitions: [TopicPartition]) -> Int {
        revoking.formUnion(partitions)
        return running(in: partitions)
    }

    /// Messages and other work still running for these partitions.
    func running(in partitions: [TopicPartition]) -> Int {
        partitions.reduce(0) { $0 + (self.partitions[$1].map { $0.running + $0.work } ?? 0) }
    }

    /// Forgets partitions that were taken away or handed over afresh.
    mutating func reset(_ partitions: [TopicPartition]) {
        for partition in partitions {
            self.partitions[partition] = nil
            revoking.remove(partition)
            assigned.remove(partition)
        }
    }

    /// The offsets to commit now (the next offset to read, per partition), marked as committed.
    mutating func takeCommittable() -> [TopicPartition: Int64] {
        var result: [TopicPartition: Int64] = [:]
        // Walked by index, not over `partitions.indices`, which would hold the dictionary's storage and
        // make the first change below copy every partition's state.
        var index = partitions.startIndex
        while index != partitions.endIndex {
            defer { partitions.formIndex(after: &index) }
            guard partitions.values[index].changed else { continue }
            partitions.values[index].changed = false
            guard var safe = partitions.values[index].nextOffset else { continue }
            if let oldest = partitions.values[index].oldestUnfinished() { safe = min(safe, oldest) }
            if let oldest = partitions.values[index].abandoned { safe = min(safe, oldest) }
            if safe > partitions.values[index].committed {
                result[partitions.keys[index]] = safe
                partitions.values[index].committed = safe
            }
        }
        return result
    }
}

extension OffsetTracker.Partition {
    mutating func handOut(_ offset: Int64) {
        if states[offset] == nil {
            if let last = handedOut.last, offset <= last { unordered = true }
            handedOut.append(offset)
            states[offset] = false
        }
        nextOffset = max(nextOffset ?? 0, offset + 1)
        changed = true
    }

    /// Marks a handed-out message started; false when it is not waiting to start.
    mutating func start(_ offset: Int64) -> Bool {
        guard states[offset] == false else { return false }
        states[offset] = true
        running += 1
        return true
    }

    /// A started message ended (finished or abandoned); false when it was not running.
    mutating func end(_ offset: Int64) -> Bool {
        guard states[offset] == true else { return false }
        states[offset] = nil
        running -= 1
        changed = true
        return true
    }
}

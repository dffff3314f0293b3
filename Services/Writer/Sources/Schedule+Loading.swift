import Kafka
import Shared

/// Taking held writes back: which lanes may load, and what a load found.
extension Schedule {
    // MARK: loading held writes

    /// The lanes whose held writes may be loaded now, marked loading. Each lane is changed where it is,
    /// so that the dictionary is not copied for the change (as it would be if it changed while iterated).
    mutating func loadPlans(now: ContinuousClock.Instant) -> [LoadPlan] {
        guard !stopping else { return [] }
        var plans: [LoadPlan] = []
        var index = lanes.startIndex
        while index != lanes.endIndex {
            let key = lanes.keys[index]
            if let plan = Self.loadPlan(&lanes.values[index], key: key, now: now, settings: settings, partitions: partitions) {
                plans.append(plan)
            }
            lanes.formIndex(after: &index)
        }
        return plans
    }

    private static func loadPlan(
        _ lane: inout Lane, key: LaneKey, now: ContinuousClock.Instant, settings: Settings, partitions: [TopicPartition: PartitionPhase]
    ) -> LoadPlan? {
        guard lane.held > 0, !lane.loading, !lane.draining else { return nil }
        // A wake-up is used up only where the lane's change is kept below (not while its partition loads).
        let woken = lane.wakeAt.map { $0 <= now } ?? false
        guard lane.wantsLoad || woken else { return nil }
        // Enough to start at once, or to wait in the lane's memory, so that a long backlog is read
        // in a few large loads rather than one per running slot.
        let capacity = max(settings.concurrency - lane.running, min(settings.maxQueued - lane.entries.count, Self.largestLoad))
        let taken = lane.entries.count { $0.isHeld && $0.phase == .waiting }
        guard capacity > 0, taken < settings.concurrency else {
            // Wanted but no room, or enough taken already: the writes in memory leave room for the
            // held ones from now on.
            if woken { lane.wakeAt = nil }
            lane.heldDue = true
            return nil
        }
        guard case .ready(let readThrough)? = partitions[key.partition] else { return nil }
        if woken { lane.wakeAt = nil }
        var busy = HeldWrites.Busy()
        for entry in lane.entries {
            busy.operations += entry.items.map(\.request.operationId)
            busy.keys.formUnion(entry.order.keys)
            busy.objects.insert(entry.order.object)
            if entry.order.barrier { busy.barrierObjects.insert(entry.order.object) }
        }
        lane.loading = true
        lane.wantsLoad = false
        return LoadPlan(lane: key, capacity: capacity, busy: busy, readThrough: readThrough,
                        fullGroups: lane.groups.filter { $0.value >= 100 }.map(\.key))
    }

    /// Held writes (or auto-batch groups) one load takes at most.
    static let largestLoad = 500

    /// What a load found: each candidate (a held write, or an auto-batch group) runs, or waits in memory
    /// for room when the lane runs all it may, unless something in memory now conflicts with it or the
    /// lane's memory is full (it stays held). The candidates share no record with each other or with
    /// anything in memory, so their order among the lane's writes is free. `wakeAt`: when to look again
    /// although nothing ends meanwhile (the next write becomes due, the pacing has room). `more`: the
    /// load took as much as it could, so more may be due.
    mutating func loaded(_ key: LaneKey, _ candidates: [[ScheduledItem]], wakeAt: ContinuousClock.Instant?, more: Bool = false)
        -> [Action]
    {
        guard var lane = lanes.removeValue(forKey: key) else { return [] }
        lane.loading = false
        lane.heldDue = more
        if more { lane.wantsLoad = true }
        loaderNeeded = true
        if let wakeAt { lane.wakeAt = min(lane.wakeAt ?? wakeAt, wakeAt) }
        var actions: [Action] = []
        if !stopping && !lane.draining {
            var running = lane.running
            // What memory holds, gathered once rather than compared entry by entry for each candidate.
            var inMemory = Occupied()
            var operations: Set<String> = []
            for entry in lane.entries {
                inMemory.add(entry.order)
                for item in entry.items { operations.insert(item.request.operationId) }
            }
            for items in candidates where !items.isEmpty && (running < settings.concurrency || lane.entries.count < settings.maxQueued) {
                let order = items[0].order.joined(items.dropFirst().map(\.order))
                guard !inMemory.conflicts(with: order), !items.contains(where: { operations.contains($0.request.operationId) }) else { continue }
                inMemory.add(order)
                for item in items { operations.insert(item.request.operationId) }
                nextId += 1
                let starts = running < settings.concurrency
                let entry = ScheduledEntry(id: nextId, lane: key, items: items, order: order, phase: starts ? .running : .waiting,
                                           stop: order.barrier ? StopFlag() : nil)
                for item in items { if let group = item.order.batchGroup { Self.decrement(&lane.groups, group) } }
                lane.entries.append(entry)
                if starts {
                    running += 1
                    actions.append(.run(entry))
                }
            }
            lane.running = running
        }
        store(lane, key)
        return actions
    }

    /// A load failed (the database is away): try again at `retryAt`.
    mutating func loadFailed(_ key: LaneKey, retryAt: ContinuousClock.Instant) {
        guard var lane = lanes.removeValue(forKey: key) else { return }
        lane.loading = false
        lane.wakeAt = retryAt
        loaderNeeded = true
        store(lane, key)
    }

    /// When the next lane should be looked at although nothing ends meanwhile.
    var nextWake: ContinuousClock.Instant? {
        lanes.values.compactMap { $0.held > 0 && !$0.loading ? $0.wakeAt : nil }.min()
    }
}

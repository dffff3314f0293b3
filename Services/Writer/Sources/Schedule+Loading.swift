import Kafka
import Shared

/// Taking held writes back: which lanes may load, and what a load found.
extension Schedule {
    // MARK: loading held writes

    /// The lanes whose held writes may be loaded now, marked loading.
    mutating func loadPlans(now: ContinuousClock.Instant) -> [LoadPlan] {
        guard !stopping else { return [] }
        var plans: [LoadPlan] = []
        for (key, var lane) in lanes where lane.held > 0 && !lane.loading && !lane.draining {
            let woken = lane.wakeAt.map { $0 <= now } ?? false
            if woken { lane.wakeAt = nil }
            guard lane.wantsLoad || woken else { continue }
            let full = lane.groups.filter { $0.value >= 100 }.map(\.key)
            let capacity = settings.concurrency - lane.running
            guard capacity > 0 else {
                // Wanted but no room: the writes in memory leave room for the held ones from now on.
                lane.heldDue = true
                lanes[key] = lane
                continue
            }
            guard case .ready(let readThrough)? = partitions[key.partition] else { continue }
            var busy = HeldWrites.Busy()
            for entry in lane.entries {
                busy.operations += entry.items.map(\.request.operationId)
                busy.keys.formUnion(entry.order.keys)
                busy.objects.insert(entry.order.object)
                if entry.order.barrier { busy.barrierObjects.insert(entry.order.object) }
            }
            lane.loading = true
            lane.wantsLoad = false
            lanes[key] = lane
            plans.append(LoadPlan(lane: key, capacity: capacity, busy: busy, readThrough: readThrough, fullGroups: full))
        }
        return plans
    }

    /// What a load found: each candidate (a held write, or an auto-batch group) runs unless something
    /// in memory now conflicts with it (it stays held). `wakeAt`: when to look again although nothing
    /// ends meanwhile (the next write becomes due, the pacing has room). `more`: the load took as much
    /// as it could, so more may be due.
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
            for items in candidates where !items.isEmpty && lane.running < settings.concurrency {
                let operations = Set(items.map(\.request.operationId))
                var order = items[0].order
                for item in items.dropFirst() { order.keys.formUnion(item.order.keys) }
                let inMemory = lane.entries.contains { entry in
                    entry.order.conflicts(with: order) || entry.items.contains { operations.contains($0.request.operationId) }
                }
                guard !inMemory else { continue }
                nextId += 1
                let entry = ScheduledEntry(id: nextId, lane: key, items: items, order: order, phase: .running,
                                           stop: order.barrier ? StopFlag() : nil)
                for item in items { if let group = item.order.batchGroup { Self.decrement(&lane.groups, group) } }
                lane.entries.append(entry)
                actions.append(.run(entry))
            }
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

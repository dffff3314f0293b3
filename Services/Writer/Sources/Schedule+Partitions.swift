import Kafka
import Shared

/// Partitions handed over and taken away, and the writer's stop.
extension Schedule {
    // MARK: partitions

    /// Partitions handed over: answers the generation of each, for `partitionLoaded`.
    mutating func assigned(_ partitions: [(partition: TopicPartition, committed: Int64)]) -> [(TopicPartition, Int)] {
        partitions.map { assigned in
            nextId += 1
            self.partitions[assigned.partition] = .loading(generation: nextId, committed: assigned.committed, waiting: [])
            return (assigned.partition, nextId)
        }
    }

    /// What a partition holds is known: its lanes start with it, and the messages that waited for it
    /// are accepted, in order.
    mutating func partitionLoaded(
        _ partition: TopicPartition, generation: Int, held: [String: HeldWrites.Summary], orders: [String: [WriteOrder]]?,
        now: ContinuousClock.Instant
    ) -> [Action] {
        guard case .loading(generation, let committed, let waiting)? = partitions[partition] else { return [] }
        partitions[partition] = .ready(readThrough: committed)
        for (installation, summary) in held {
            let key = LaneKey(installationId: installation, partition: partition)
            var lane = lanes.removeValue(forKey: key) ?? Lane()
            if let orders = orders?[installation] {
                for order in orders { track(order, in: &lane) }
            } else {
                lane.held += summary.held
                for (group, count) in summary.groups { lane.groups[group, default: 0] += count }
                overflow(&lane)
            }
            wantLoad(&lane)
            lanes[key] = lane
        }
        var actions: [Action] = []
        for item in waiting {
            actions += accept(item, lane: LaneKey(installationId: item.request.installationId, partition: partition), now: now)
        }
        return actions
    }

    /// Partitions being taken away: nothing more of them starts; their waiting writes are let go; their
    /// bulk writes are asked to stop.
    mutating func revoking(_ partitions: [TopicPartition]) -> [Action] {
        let going = Set(partitions)
        var released: [KafkaMessage] = []
        for partition in partitions {
            if case .loading(_, _, let waiting)? = self.partitions[partition] { released += waiting.compactMap(\.message) }
            self.partitions[partition] = nil
        }
        for (key, var lane) in lanes where going.contains(key.partition) {
            lane.draining = true
            released += letGo(&lane)
            lanes[key] = lane
        }
        return released.isEmpty ? [] : [.release(released)]
    }

    /// Partitions taken away, their work ended: their lanes are forgotten.
    mutating func revoked(_ partitions: [TopicPartition]) {
        let gone = Set(partitions)
        lanes = lanes.filter { !gone.contains($0.key.partition) }
    }

    /// Graceful stop: nothing more starts; waiting writes are let go; bulk writes are asked to stop.
    mutating func stop() -> [Action] {
        stopping = true
        var released: [KafkaMessage] = []
        for (partition, phase) in partitions {
            if case .loading(_, let committed, let waiting) = phase {
                released += waiting.compactMap(\.message)
                partitions[partition] = .ready(readThrough: committed)
            }
        }
        for (key, var lane) in lanes {
            released += letGo(&lane)
            lanes[key] = lane
        }
        return released.isEmpty ? [] : [.release(released)]
    }

    /// Lets the lane's waiting writes go (their messages, never begun) and asks its running bulk writes to
    /// stop after their chunk.
    private mutating func letGo(_ lane: inout Lane) -> [KafkaMessage] {
        let waiting = lane.entries.filter { $0.phase == .waiting }
        countWaiting(&lane, -waiting.count { !$0.isHeld })
        lane.entries.removeAll { $0.phase == .waiting }
        for entry in lane.entries { entry.stop?.set() }
        return waiting.flatMap { $0.items.compactMap(\.message) }
    }

    /// Writes in memory, for the writer's metrics.
    var inMemory: Int { lanes.values.reduce(0) { $0 + $1.entries.count } }
}

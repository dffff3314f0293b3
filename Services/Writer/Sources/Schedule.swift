import Kafka
import Shared

/// A write the writer handles: from a message of `write-requests`, or taken from the held writes.
struct ScheduledItem: Sendable {
    var request: WriteRequestMessage
    /// The message that carried it; nil when it was taken from the held writes (then its row is its
    /// commitment, not an offset).
    var message: KafkaMessage?
    /// Its place in its connection's order: its message's offset.
    var seq: Int64
    var carried: Carried
    var order: WriteOrder

    var isHeld: Bool { message == nil }

    /// The request as it is stored when held: its message as it came.
    var text: String { message.map { String(decoding: $0.value, as: UTF8.self) } ?? "" }
}

/// What the writer runs or holds as one: a write, or an auto-batch group of held writes sent in one
/// provider call.
struct ScheduledEntry: Sendable {
    enum Phase: Sendable {
        case waiting
        /// Takes one of its lane's running slots: recording its start, calling the provider.
        case running
        /// Its provider calls are over: it records and publishes its result, still occupying its records
        /// (a later write of them waits for it) but no longer a running slot.
        case finishing
        case holding
    }

    let id: Int
    let lane: LaneKey
    var items: [ScheduledItem]
    /// What it occupies: every item's records.
    let order: WriteOrder
    var phase: Phase
    /// For a hold at arrival: seconds until it is due.
    var dueIn: Double = 0
    /// Why it is being held (phase `.holding`).
    var holdReason: HoldReason = .ordering
    /// A bulk write is asked to stop through this.
    let stop: StopFlag?

    // `items[0]` is read in place; `items.first` would copy the item.
    var isGroup: Bool { items.count > 1 || (items.count == 1 && items[0].order.batchGroup != nil) }
    /// Taken from the held writes (its row is its commitment), not from a message.
    var isHeld: Bool { !items.isEmpty && items[0].isHeld }
}

/// Why a write from a message is held rather than kept in memory (the label of
/// `writeback_writes_held_total`).
enum HoldReason: String, Sendable {
    /// It waits for its auto-batch group.
    case autoBatch = "auto-batch"
    /// Its connection's pacing holds every call past the hold threshold.
    case paced = "pacing"
    /// Something earlier of its records is held (or being held), or a bulk write of its object runs.
    case ordering
    /// Its lane keeps as many writes in memory as it may.
    case laneFull = "lane-full"
    /// The writes waiting in memory passed the writer's budget: the longest queue is held.
    case memoryBudget = "memory-budget"
    /// Its lane holds more writes than it can track: every new one is held until none is.
    case overflow
}

/// How one item of an entry ended.
enum ItemEnd: Sendable, Equatable {
    /// Its result is published (and, if it was held, its row is gone).
    case completed
    /// It is held: newly (`inserted` false when it was held already, by an earlier message), or again.
    case held(inserted: Bool)
}

/// The writer's lanes: one per connection (installation) and partition, with its own queue and
/// concurrency limit. A write of a connection starts as soon as its lane has room and nothing earlier of
/// its records is in the way, whatever other connections have queued; one record's writes (alone, in a
/// batch, an upsert, auto-batched, or a bulk file for its object) run in the order they were accepted.
/// A lane holds at most `maxQueued` writes in memory; anything more, and every write that must wait
/// longer than the hold threshold, is held in the database (`HeldWrites`), and so are the writes behind
/// a held one of their records. Pure state: the `WriteScheduler` performs what it answers.
struct Schedule: Sendable {
    struct Settings: Sendable {
        /// Writes of one lane running at once.
        var concurrency = 25
        /// Writes of one lane in memory (running, waiting or being held), at most.
        var maxQueued = 100
        /// Keys of held writes a lane keeps in memory; with more, every new write of the lane is held
        /// until none is.
        var maxTrackedKeys = 10_000
        /// The longest an auto-batched write waits for its group, in seconds (0: its own delay only).
        var autoBatchMaxDelay: Double = 0
        /// Writes from messages waiting in memory (not running) across all lanes, at most: beyond it the
        /// longest queue is held, so that waiting writes never exhaust the consumer's reading budget.
        var memoryBudget = Int.max
    }

    enum Action: Sendable {
        /// Run the entry (it is marked running).
        case run(ScheduledEntry)
        /// Hold the entry's write, which came from a message (it is marked holding).
        case hold(ScheduledEntry)
        /// These messages, never begun, will not be handled here.
        case release([KafkaMessage])
    }

    /// What loading a lane's held writes may take: how many entries may start, and what they must not
    /// conflict with.
    struct LoadPlan: Sendable {
        var lane: LaneKey
        var capacity: Int
        var busy: HeldWrites.Busy
        /// Held writes from at or after this offset wait: the messages before them may not all have
        /// been read since the partition came to this member, and an earlier write of their records may
        /// be among them.
        var readThrough: Int64
        /// Auto-batch groups with a full batch held.
        var fullGroups: [String]
    }

    struct Lane: Sendable {
        var entries: [ScheduledEntry] = []
        /// Held writes of the lane in the database.
        var held = 0
        /// What the held writes occupy, while there are few enough to keep in memory.
        var heldKeys: [String: Int] = [:]
        var heldObjects: [String: Int] = [:]
        var heldBarriers: [String: Int] = [:]
        /// More held writes than can be tracked: every new write of the lane is held until none is.
        var overflow = false
        /// Auto-batched writes held and not taken, per group.
        var groups: [String: Int] = [:]
        /// The connection's pacing keeps every call back until then.
        var pacedUntil: ContinuousClock.Instant?
        var wantsLoad = false
        var loading = false
        var wakeAt: ContinuousClock.Instant?
        /// Its partition is being taken away: nothing more starts.
        var draining = false
        /// The last load found as much due as it could take: held writes wait for room, so writes in
        /// memory leave them half the lane.
        var heldDue = false
        /// What the entries being held occupy (keys, objects, barrier objects), counted.
        var holding = Occupied()

        /// Entries in phase `.running`, counted as they come and go.
        var running = 0
        /// Entries in phase `.waiting` from messages (not from the held writes), counted likewise.
        var waiting = 0

        /// Where the entry with `id` is: entries are appended as they are made, so their ids ascend.
        func index(of id: Int) -> Int? {
            var low = 0
            var high = entries.count
            while low < high {
                let middle = (low + high) / 2
                let found = entries[middle].id
                if found == id { return middle }
                if found < id { low = middle + 1 } else { high = middle }
            }
            return nil
        }
        var isIdle: Bool { entries.isEmpty && held == 0 && !loading }
    }

    /// What a set of writes occupies, counted, so that a write can be checked against all of them at
    /// once.
    struct Occupied: Sendable {
        var keys: [String: Int] = [:]
        var objects: [String: Int] = [:]
        var barriers: [String: Int] = [:]

        mutating func add(_ order: WriteOrder) {
            for key in order.keys { keys[key, default: 0] += 1 }
            objects[order.object, default: 0] += 1
            if order.barrier { barriers[order.object, default: 0] += 1 }
        }

        mutating func remove(_ order: WriteOrder) {
            for key in order.keys { Schedule.decrement(&keys, key) }
            Schedule.decrement(&objects, order.object)
            if order.barrier { Schedule.decrement(&barriers, order.object) }
        }

        /// Whether a later write conflicts with any of them (see `WriteOrder.conflicts`).
        func conflicts(with order: WriteOrder) -> Bool {
            if barriers[order.object] != nil || (order.barrier && objects[order.object] != nil) { return true }
            return order.keys.contains { keys[$0] != nil }
        }
    }

    enum PartitionPhase: Sendable {
        /// Handed over (the `generation`th time, its committed offset `committed`); what it holds is being
        /// read. Messages wait here meanwhile.
        case loading(generation: Int, committed: Int64, waiting: [ScheduledItem])
        /// Every message before `readThrough` was read since it came, or committed before.
        case ready(readThrough: Int64)
    }

    let settings: Settings
    var lanes: [LaneKey: Lane] = [:]
    var partitions: [TopicPartition: PartitionPhase] = [:]
    var stopping = false
    var nextId = 0
    /// Something changed that the loader of held writes should look at.
    var loaderNeeded = false

    /// Whether the loader should look at the lanes again since it was last asked; resets.
    mutating func takeLoaderNeeded() -> Bool {
        defer { loaderNeeded = false }
        return loaderNeeded
    }

    init(settings: Settings) {
        self.settings = settings
    }

    // MARK: arrivals

    /// A write arrives from its message.
    mutating func accept(_ item: ScheduledItem, lane key: LaneKey, now: ContinuousClock.Instant) -> [Action] {
        switch partitions[key.partition] {
        case .loading(let generation, let committed, var waiting)?:
            waiting.append(item)
            partitions[key.partition] = .loading(generation: generation, committed: committed, waiting: waiting)
            return []
        case .ready(let readThrough)?:
            if item.seq >= readThrough { partitions[key.partition] = .ready(readThrough: item.seq + 1) }
        case nil:
            return item.message.map { [.release([$0])] } ?? []
        }
        guard !stopping, lanes[key]?.draining != true else { return item.message.map { [.release([$0])] } ?? [] }
        // Taken out of the dictionary while it changes, so that its entries are not copied on write.
        var lane = lanes.removeValue(forKey: key) ?? Lane()
        nextId += 1
        var entry = ScheduledEntry(id: nextId, lane: key, items: [item], order: item.order, phase: .waiting,
                                   stop: item.order.barrier ? StopFlag() : nil)
        var actions: [Action] = []
        let full = lane.entries.count >= settings.maxQueued
        if let (due, reason) = holdAtArrival(item, lane, now: now) ?? (full ? (0, .laneFull) : nil) {
            entry.phase = .holding
            entry.dueIn = due
            entry.holdReason = reason
            lane.holding.add(entry.order)
            lane.entries.append(entry)
            actions.append(.hold(entry))
            if full { actions += holdWaiting(&lane, behind: nil, reason: .laneFull) }
        } else {
            lane.entries.append(entry)
            countWaiting(&lane, 1)
            actions += startable(&lane)
        }
        lanes[key] = lane
        if waitingInMemory > settings.memoryBudget { actions += holdLongestQueue() }
        return actions
    }

    /// Writes from messages waiting in memory, across lanes.
    var waitingInMemory = 0

    /// Writes from messages that began (`change` > 0) or stopped waiting in memory in `lane`: counted
    /// for the writer (its memory budget) and for the lane (the longest queue), always together.
    mutating func countWaiting(_ lane: inout Lane, _ change: Int) {
        waitingInMemory += change
        lane.waiting += change
    }

    /// Holds every waiting write of the lane with the most of them.
    mutating func holdLongestQueue() -> [Action] {
        guard let key = lanes.max(by: { $0.value.waiting < $1.value.waiting })?.key, var lane = lanes.removeValue(forKey: key) else {
            return []
        }
        let actions = holdWaiting(&lane, behind: nil, reason: .memoryBudget)
        lanes[key] = lane
        return actions
    }

    /// Seconds until a write arriving now is due, when it must be held at once: it is auto-batched (it
    /// waits for its group), its connection is paced past the threshold, or something earlier of its
    /// records is held (or being held). Nil: it may wait in memory.
    func holdAtArrival(_ item: ScheduledItem, _ lane: Lane, now: ContinuousClock.Instant) -> (dueIn: Double, reason: HoldReason)? {
        if let delay = item.request.autoBatchDelaySeconds, item.order.batchGroup != nil {
            let limit = settings.autoBatchMaxDelay > 0 ? min(delay, settings.autoBatchMaxDelay) : delay
            let waited = Timestamp.parse(item.request.acceptedAt).map { -$0.timeIntervalSinceNow } ?? 0
            return (max(0, limit - waited), .autoBatch)
        }
        if let paced = lane.pacedUntil, paced > now { return (WriteExecution.seconds(until: paced), .paced) }
        if lane.overflow { return (0, .overflow) }
        let order = item.order
        if order.keys.contains(where: { lane.heldKeys[$0] != nil }) || lane.heldBarriers[order.object] != nil
            || (order.barrier && lane.heldObjects[order.object] != nil)
        {
            return (0, .ordering)
        }
        if lane.holding.conflicts(with: order) { return (0, .ordering) }
        // Behind a running bulk write of its object it would wait for the whole file.
        if lane.entries.contains(where: { ($0.phase == .running || $0.phase == .finishing) && $0.order.barrier && $0.order.object == order.object }) {
            return (0, .ordering)
        }
        return nil
    }

    /// Marks the waiting entries that may start now as running, in order: the lane has room and no
    /// earlier entry in memory shares their records.
    mutating func startable(_ lane: inout Lane) -> [Action] {
        guard !stopping, !lane.draining else { return [] }
        var running = lane.running
        // While held writes are due, writes from messages leave them half the lane, so that neither starves.
        let limit = lane.held > 0 && lane.heldDue ? settings.concurrency - max(1, settings.concurrency / 2) : settings.concurrency
        var actions: [Action] = []
        for index in lane.entries.indices {
            guard running < settings.concurrency else { break }
            guard lane.entries[index].phase == .waiting else { continue }
            // Read in place: an entry is large, and this runs each time a write of the lane ends.
            let isHeld = lane.entries[index].isHeld
            guard isHeld || running < limit else { continue }
            let order = lane.entries[index].order
            guard !(lane.entries.startIndex..<index).contains(where: { lane.entries[$0].order.conflicts(with: order) }) else { continue }
            lane.entries[index].phase = .running
            if !isHeld { countWaiting(&lane, -1) }
            running += 1
            actions.append(.run(lane.entries[index]))
        }
        lane.running = running
        return actions
    }

    /// Holds the waiting entries from messages behind a held write of their records (or all of them,
    /// when `behind` is nil), in order, so that none of them overtakes it. Waiting entries taken from the
    /// held writes behind it go back to them (their rows are still there); with `behind` nil they stay,
    /// as they take nothing of the consumer's budget.
    mutating func holdWaiting(_ lane: inout Lane, behind order: WriteOrder?, reason: HoldReason = .ordering) -> [Action] {
        guard !stopping, !lane.draining else { return [] }
        var held: [WriteOrder] = order.map { [$0] } ?? []
        var actions: [Action] = []
        var returned: Set<Int> = []
        for index in lane.entries.indices where lane.entries[index].phase == .waiting {
            let entry = lane.entries[index]
            guard order == nil ? !entry.isHeld : held.contains(where: { $0.conflicts(with: entry.order) }) else { continue }
            held.append(entry.order)
            if entry.isHeld {
                returned.insert(entry.id)
                continue
            }
            lane.entries[index].phase = .holding
            lane.entries[index].dueIn = 0
            lane.entries[index].holdReason = reason
            lane.holding.add(entry.order)
            countWaiting(&lane, -1)
            actions.append(.hold(lane.entries[index]))
        }
        if !returned.isEmpty {
            for entry in lane.entries where returned.contains(entry.id) { returnToHeld(entry, in: &lane) }
            lane.entries.removeAll { returned.contains($0.id) }
            wantLoad(&lane)
        }
        return actions
    }

    /// An entry taken from the held writes that will not run now: its auto-batch groups count it again.
    func returnToHeld(_ entry: ScheduledEntry, in lane: inout Lane) {
        for item in entry.items { if let group = item.order.batchGroup { lane.groups[group, default: 0] += 1 } }
    }

    // MARK: endings

    /// A running entry's provider calls are over: its slot goes to the next waiting write while it
    /// records and publishes its result.
    mutating func called(_ entry: ScheduledEntry) -> [Action] {
        guard var lane = lanes.removeValue(forKey: entry.lane) else { return [] }
        var actions: [Action] = []
        if let index = lane.index(of: entry.id), lane.entries[index].phase == .running {
            lane.entries[index].phase = .finishing
            lane.running -= 1
            actions = startable(&lane)
        }
        lanes[entry.lane] = lane
        return actions
    }

    /// A running entry ended: each item completed or is held. `pacedUntil`: the connection's pacing
    /// holds every call until then.
    mutating func ended(_ entry: ScheduledEntry, _ ends: [ItemEnd], pacedUntil: ContinuousClock.Instant?) -> [Action] {
        guard var lane = remove(entry) else { return [] }
        var anyHeld = false
        for (item, end) in zip(entry.items, ends) {
            switch end {
            case .completed:
                if item.isHeld { untrack(item.order, in: &lane) }
            case .held(let inserted):
                anyHeld = true
                if !item.isHeld && inserted { track(item.order, in: &lane) }
                if item.isHeld, let group = item.order.batchGroup { lane.groups[group, default: 0] += 1 }
            }
        }
        if let pacedUntil, lane.pacedUntil.map({ $0 < pacedUntil }) ?? true { lane.pacedUntil = pacedUntil }
        var actions: [Action] = []
        if anyHeld { actions += holdWaiting(&lane, behind: entry.order) }
        if lane.held > 0 { wantLoad(&lane) }
        actions += startable(&lane)
        store(lane, entry.lane)
        return actions
    }

    mutating func wantLoad(_ lane: inout Lane) {
        lane.wantsLoad = true
        loaderNeeded = true
    }

    /// An entry held at arrival is stored (`inserted`: it was not held already).
    mutating func holdStored(_ entry: ScheduledEntry, inserted: Bool) -> [Action] {
        guard var lane = remove(entry) else { return [] }
        if inserted, let item = entry.items.first { track(item.order, in: &lane) }
        if lane.held > 0 { wantLoad(&lane) }
        let actions = startable(&lane)
        store(lane, entry.lane)
        return actions
    }

    /// An entry that will not run here (its partition went, or it was cancelled): forgotten; a held
    /// item stays held.
    mutating func dropped(_ entry: ScheduledEntry) {
        guard var lane = remove(entry) else { return }
        if entry.isHeld && entry.phase == .running { returnToHeld(entry, in: &lane) }
        store(lane, entry.lane)
    }

    mutating func remove(_ entry: ScheduledEntry) -> Lane? {
        guard var lane = lanes.removeValue(forKey: entry.lane) else { return nil }
        guard let index = lane.index(of: entry.id) else {
            lanes[entry.lane] = lane
            return nil
        }
        let removed = lane.entries.remove(at: index)
        if removed.phase == .running { lane.running -= 1 }
        if removed.phase == .waiting && !removed.isHeld { countWaiting(&lane, -1) }
        if removed.phase == .holding { lane.holding.remove(removed.order) }
        return lane
    }

    /// Whether the entry is still one this member runs (not forgotten with its partition).
    func contains(_ entry: ScheduledEntry) -> Bool {
        lanes[entry.lane].map { $0.index(of: entry.id) != nil } ?? false
    }

    mutating func store(_ lane: Lane, _ key: LaneKey) {
        lanes[key] = lane.isIdle && !lane.draining ? nil : lane
    }

    mutating func track(_ order: WriteOrder, in lane: inout Lane) {
        lane.held += 1
        if let group = order.batchGroup {
            lane.groups[group, default: 0] += 1
            if lane.groups[group] == 100 { wantLoad(&lane) }
        }
        guard !lane.overflow else { return }
        for key in order.keys where !key.hasPrefix("op:") { lane.heldKeys[key, default: 0] += 1 }
        lane.heldObjects[order.object, default: 0] += 1
        if order.barrier { lane.heldBarriers[order.object, default: 0] += 1 }
        if lane.heldKeys.count > settings.maxTrackedKeys { overflow(&lane) }
    }

    /// A held write is gone (its group count went down when it was taken).
    mutating func untrack(_ order: WriteOrder, in lane: inout Lane) {
        lane.held = max(0, lane.held - 1)
        if lane.held == 0 {
            lane.overflow = false
            lane.heldKeys = [:]
            lane.heldObjects = [:]
            lane.heldBarriers = [:]
            lane.groups = [:]
            return
        }
        guard !lane.overflow else { return }
        for key in order.keys where !key.hasPrefix("op:") { Self.decrement(&lane.heldKeys, key) }
        Self.decrement(&lane.heldObjects, order.object)
        if order.barrier { Self.decrement(&lane.heldBarriers, order.object) }
    }

    func overflow(_ lane: inout Lane) {
        lane.overflow = true
        lane.heldKeys = [:]
        lane.heldObjects = [:]
        lane.heldBarriers = [:]
    }

    static func decrement(_ counts: inout [String: Int], _ key: String) {
        guard let count = counts[key] else { return }
        counts[key] = count > 1 ? count - 1 : nil
    }

}

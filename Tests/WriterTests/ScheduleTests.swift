import Foundation
import Kafka
import Shared
import Testing

@testable import Writer

/// The writer's lanes, decision by decision: what starts, what waits in memory, what is held.
@Suite("Write schedule")
struct ScheduleTests {
    static let partition = TopicPartition(topic: "write-requests", partition: 0)
    let now = ContinuousClock.now

    func lane(_ installation: String) -> LaneKey { LaneKey(installationId: installation, partition: Self.partition) }

    /// A write of `installation` as its message brings it.
    func item(
        _ installation: String, _ offset: Int64, type: WriteType = .update, record: String? = nil, batch: [String]? = nil,
        object: String = "contact", bulk: Bool = false, autoBatch: Double? = nil
    ) -> ScheduledItem {
        let request = WriteRequestMessage(
            operationId: "op-\(installation)-\(offset)", projectId: "p", integrationId: "i", installationId: installation, groupRef: "g",
            provider: .salesforce, objectName: object, type: bulk ? .upsert : type, mode: bulk ? .bulk : .asynchronous,
            record: [:], recordId: batch == nil ? record : nil, associations: nil, replyTo: nil, acceptedAt: Timestamp.now(),
            batch: batch.map { $0.map { BatchRecord(record: [:], recordId: $0, associations: nil) } },
            autoBatchDelaySeconds: autoBatch,
            bulk: bulk ? BulkWrite(primaryKey: "Email", header: ["Email"], recordsURL: "https://files.example.com/a.csv", bytes: nil) : nil)
        let message = KafkaMessage(topic: Self.partition.topic, partition: 0, offset: offset, key: Array(installation.utf8), value: [])
        return ScheduledItem(request: request, message: message, seq: offset, carried: Carried(), order: WriteOrder(request))
    }

    func ready(_ settings: Schedule.Settings = .init()) -> Schedule {
        var schedule = Schedule(settings: settings)
        let generations = schedule.assigned([(Self.partition, 0)])
        _ = schedule.partitionLoaded(Self.partition, generation: generations[0].1, held: [:], orders: [:], now: now)
        return schedule
    }

    func runs(_ actions: [Schedule.Action]) -> [String] {
        actions.compactMap { if case .run(let entry) = $0 { entry.items.first?.request.operationId } else { nil } }
    }

    func holds(_ actions: [Schedule.Action]) -> [String] {
        actions.compactMap { if case .hold(let entry) = $0 { entry.items.first?.request.operationId } else { nil } }
    }

    func entry(_ schedule: Schedule, _ operationId: String) -> ScheduledEntry? {
        schedule.lanes.values.flatMap(\.entries).first { $0.items.contains { $0.request.operationId == operationId } }
    }

    @Test("a connection with nothing running starts at once, however many writes another connection has waiting")
    func fairness() {
        var schedule = ready(.init(concurrency: 2, maxQueued: 50))
        var started: [String] = []
        for offset in 0..<40 { started += runs(schedule.accept(item("a", Int64(offset), record: "r\(offset)"), lane: lane("a"), now: now)) }
        #expect(started == ["op-a-0", "op-a-1"], "the lane's concurrency bounds what runs")
        #expect(runs(schedule.accept(item("b", 40, record: "x"), lane: lane("b"), now: now)) == ["op-b-40"])
    }

    @Test("two writes conflict exactly when they share a key, or one is a bulk write of the same object; writes sent together occupy every key of each")
    func conflicts() {
        func order(_ keys: Set<String>, object: String = "contact", barrier: Bool = false) -> WriteOrder {
            WriteOrder(object: object, keys: keys, barrier: barrier, batchGroup: nil)
        }
        let first = order(["op:1", "id:contact/r1"])
        #expect(first.conflicts(with: order(["op:2", "id:contact/r1"])) && order(["op:2", "id:contact/r1"]).conflicts(with: first))
        #expect(!first.conflicts(with: order(["op:3", "id:contact/r2"])))
        #expect(order(["op:4"], barrier: true).conflicts(with: order(["op:5"])) && order(["op:5"]).conflicts(with: order(["op:4"], barrier: true)))
        #expect(!order(["op:4"], barrier: true).conflicts(with: order(["op:5"], object: "account")))
        let batch = order(Set((1...100).map { "id:contact/b\($0)" } + ["op:6"]))
        #expect(batch.conflicts(with: order(["op:7", "id:contact/b57"])))
        #expect(!batch.conflicts(with: order(["op:7", "id:contact/b101"])))
        let joined = order(["op:8", "id:contact/r8"]).joined([order(["op:9", "id:contact/r9"])])
        #expect(joined.keys == ["op:8", "id:contact/r8", "op:9", "id:contact/r9"])
        #expect(joined.conflicts(with: order(["op:10", "id:contact/r9"])))
        // Against the keys themselves, for sets of every size.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let a = Set((0..<Int.random(in: 1...6, using: &generator)).map { _ in "k\(Int.random(in: 0..<40, using: &generator))" })
            let b = Set((0..<Int.random(in: 1...6, using: &generator)).map { _ in "k\(Int.random(in: 0..<40, using: &generator))" })
            #expect(order(a).conflicts(with: order(b)) == !a.isDisjoint(with: b), "\(a) \(b)")
        }
    }

    @Test("one record's writes run one after the other in order; other records run beside them")
    func recordOrder() throws {
        var schedule = ready()
        #expect(runs(schedule.accept(item("a", 0, record: "r1"), lane: lane("a"), now: now)) == ["op-a-0"])
        #expect(runs(schedule.accept(item("a", 1, record: "r1"), lane: lane("a"), now: now)).isEmpty)
        #expect(runs(schedule.accept(item("a", 2, record: "r2"), lane: lane("a"), now: now)) == ["op-a-2"])
        let first = try #require(entry(schedule, "op-a-0"))
        #expect(runs(schedule.ended(first, [.completed], pacedUntil: nil)) == ["op-a-1"])
    }

    @Test("a write whose provider call is over gives its slot to the next write while it publishes, and still holds back its records")
    func slotAfterCall() throws {
        var schedule = ready(.init(concurrency: 1, maxQueued: 50))
        #expect(runs(schedule.accept(item("a", 0, record: "r1"), lane: lane("a"), now: now)) == ["op-a-0"])
        #expect(runs(schedule.accept(item("a", 1, record: "r1"), lane: lane("a"), now: now)).isEmpty)
        #expect(runs(schedule.accept(item("a", 2, record: "r2"), lane: lane("a"), now: now)).isEmpty, "one slot, taken")
        let first = try #require(entry(schedule, "op-a-0"))
        #expect(runs(schedule.called(first)) == ["op-a-2"], "the next write of another record takes the slot; r1's next waits")
        #expect(runs(schedule.called(first)).isEmpty, "told twice, it frees nothing more")
        #expect(runs(schedule.ended(first, [.completed], pacedUntil: nil)).isEmpty, "the slot is op-a-2's")
        #expect(runs(schedule.ended(try #require(entry(schedule, "op-a-2")), [.completed], pacedUntil: nil)) == ["op-a-1"])
    }

    @Test("a batch occupies every record it writes: a later single write of one of them waits for it, and it for earlier ones")
    func batchOrder() throws {
        var schedule = ready()
        #expect(runs(schedule.accept(item("a", 0, record: "r1"), lane: lane("a"), now: now)) == ["op-a-0"])
        #expect(runs(schedule.accept(item("a", 1, batch: ["r1", "r2", "r3"]), lane: lane("a"), now: now)).isEmpty)
        #expect(runs(schedule.accept(item("a", 2, record: "r3"), lane: lane("a"), now: now)).isEmpty)
        #expect(runs(schedule.accept(item("a", 3, record: "r4"), lane: lane("a"), now: now)) == ["op-a-3"])
        #expect(runs(schedule.ended(try #require(entry(schedule, "op-a-0")), [.completed], pacedUntil: nil)) == ["op-a-1"])
        #expect(runs(schedule.ended(try #require(entry(schedule, "op-a-1")), [.completed], pacedUntil: nil)) == ["op-a-2"])
    }

    @Test("a bulk write waits for earlier writes of its object and holds back later ones; other objects go on")
    func bulkBarrier() throws {
        var schedule = ready()
        #expect(runs(schedule.accept(item("a", 0, record: "r1"), lane: lane("a"), now: now)) == ["op-a-0"])
        #expect(runs(schedule.accept(item("a", 1, bulk: true), lane: lane("a"), now: now)).isEmpty)
        #expect(runs(schedule.accept(item("a", 2, type: .create), lane: lane("a"), now: now)).isEmpty, "a create of the object waits too")
        #expect(runs(schedule.accept(item("a", 3, record: "x", object: "account"), lane: lane("a"), now: now)) == ["op-a-3"])
        #expect(runs(schedule.ended(try #require(entry(schedule, "op-a-0")), [.completed], pacedUntil: nil)) == ["op-a-1"])
        #expect(runs(schedule.ended(try #require(entry(schedule, "op-a-1")), [.completed], pacedUntil: nil)) == ["op-a-2"])
    }

    @Test("beyond its memory a lane holds new writes and every waiting one; while it holds a record's write, that record's later writes are held")
    func memoryAndHolds() throws {
        var schedule = ready(.init(concurrency: 1, maxQueued: 3))
        #expect(runs(schedule.accept(item("a", 0, record: "r1"), lane: lane("a"), now: now)) == ["op-a-0"])
        _ = schedule.accept(item("a", 1, record: "r2"), lane: lane("a"), now: now)
        _ = schedule.accept(item("a", 2, record: "r3"), lane: lane("a"), now: now)
        let full = schedule.accept(item("a", 3, record: "r4"), lane: lane("a"), now: now)
        #expect(Set(holds(full)) == ["op-a-1", "op-a-2", "op-a-3"])
        for id in ["op-a-1", "op-a-2", "op-a-3"] { _ = schedule.holdStored(try #require(entry(schedule, id)), inserted: true) }
        #expect(schedule.lanes[lane("a")]?.held == 3)
        // r2 is held: its next write is held behind it; a record with nothing held waits in memory.
        #expect(holds(schedule.accept(item("a", 4, record: "r2"), lane: lane("a"), now: now)) == ["op-a-4"])
        let other = schedule.accept(item("a", 5, record: "r9"), lane: lane("a"), now: now)
        #expect(holds(other).isEmpty && runs(other).isEmpty)
    }

    @Test("a running write that must wait is held, and the waiting writes of its records are held behind it")
    func heldWhileRunning() throws {
        var schedule = ready()
        _ = schedule.accept(item("a", 0, record: "r1"), lane: lane("a"), now: now)
        _ = schedule.accept(item("a", 1, record: "r1"), lane: lane("a"), now: now)
        _ = schedule.accept(item("a", 2, record: "r2"), lane: lane("a"), now: now)
        let actions = schedule.ended(try #require(entry(schedule, "op-a-0")), [.held(inserted: true)], pacedUntil: nil)
        #expect(holds(actions) == ["op-a-1"])
        #expect(schedule.lanes[lane("a")]?.held == 1)
        let load = schedule.loadPlans(now: now)
        #expect(load.map(\.lane) == [lane("a")])
        #expect(load.first?.busy.keys.contains("id:contact/r1") == true, "the write being held keeps its record busy")
    }

    @Test("while a connection is paced past the threshold its new writes are held until then")
    func paced() throws {
        var schedule = ready()
        _ = schedule.accept(item("a", 0, record: "r1"), lane: lane("a"), now: now)
        _ = schedule.ended(try #require(entry(schedule, "op-a-0")), [.held(inserted: true)], pacedUntil: now + .seconds(5))
        let actions = schedule.accept(item("a", 1, record: "r9"), lane: lane("a"), now: now)
        #expect(holds(actions) == ["op-a-1"])
        let held = try #require(entry(schedule, "op-a-1"))
        #expect(held.dueIn > 4 && held.dueIn <= 5)
    }

    @Test("auto-batched writes are held until their group is due")
    func autoBatch() throws {
        var schedule = ready(.init(autoBatchMaxDelay: 2))
        #expect(holds(schedule.accept(item("a", 0, type: .create, autoBatch: 300), lane: lane("a"), now: now)) == ["op-a-0"])
        let held = try #require(entry(schedule, "op-a-0"))
        #expect(held.dueIn > 1.5 && held.dueIn <= 2)
    }

    @Test("a group of auto-batched writes is full at 100 held writes; those taken to run no longer count")
    func fullGroups() throws {
        var schedule = ready()
        for offset in 0..<100 {
            _ = schedule.accept(item("a", Int64(offset), type: .create, autoBatch: 300), lane: lane("a"), now: now)
            _ = schedule.holdStored(try #require(entry(schedule, "op-a-\(offset)")), inserted: true)
        }
        let plans = schedule.loadPlans(now: now)
        #expect(plans.first?.fullGroups == ["contact|create"])
        let taken = (0..<100).map { offset -> ScheduledItem in
            var held = item("a", Int64(offset), type: .create, autoBatch: 300)
            held.message = nil
            return held
        }
        #expect(schedule.loaded(lane("a"), [taken], wakeAt: nil).count == 1)
        for offset in 100..<105 {
            _ = schedule.accept(item("a", Int64(offset), type: .create, autoBatch: 300), lane: lane("a"), now: now)
            _ = schedule.holdStored(try #require(entry(schedule, "op-a-\(offset)")), inserted: true)
        }
        #expect(schedule.loadPlans(now: now).allSatisfy { $0.fullGroups.isEmpty }, "five waiting are not a full group")
    }

    @Test("a held write taken again runs only if nothing in memory conflicts with it")
    func loading() throws {
        var schedule = ready()
        _ = schedule.accept(item("a", 0, record: "r1"), lane: lane("a"), now: now)
        _ = schedule.ended(try #require(entry(schedule, "op-a-0")), [.held(inserted: true)], pacedUntil: nil)
        #expect(runs(schedule.accept(item("a", 5, record: "r5"), lane: lane("a"), now: now)) == ["op-a-5"])
        let plans = schedule.loadPlans(now: now)
        #expect(plans.count == 1)
        var heldItem = item("a", 0, record: "r1")
        heldItem.message = nil
        var conflicting = item("a", 3, record: "r5")
        conflicting.message = nil
        let actions = schedule.loaded(lane("a"), [[heldItem], [conflicting]], wakeAt: nil)
        #expect(runs(actions) == ["op-a-0"])
        #expect(runs(schedule.ended(try #require(entry(schedule, "op-a-0")), [.completed], pacedUntil: nil)).isEmpty)
        #expect(schedule.lanes[lane("a")]?.held == 0)
    }

    @Test("a long held backlog comes back in large loads: what cannot start waits in memory and starts as running writes end")
    func largeLoads() throws {
        var schedule = Schedule(settings: .init(concurrency: 2, maxQueued: 10))
        let generation = schedule.assigned([(Self.partition, 0)])[0].1
        let orders = (0..<8).map { WriteOrder(item("a", Int64($0), record: "r\($0)").request) }
        _ = schedule.partitionLoaded(Self.partition, generation: generation, held: ["a": .init(held: 8, groups: [:])],
                                     orders: ["a": orders], now: now)
        let plan = try #require(schedule.loadPlans(now: now).first)
        #expect(plan.capacity == 10, "a load may take as much as the lane's memory, not only its free running slots")
        let taken = (0..<8).map { offset -> [ScheduledItem] in
            var held = item("a", Int64(offset), record: "r\(offset)")
            held.message = nil
            return [held]
        }
        #expect(runs(schedule.loaded(lane("a"), taken, wakeAt: nil)) == ["op-a-0", "op-a-1"])
        #expect(schedule.waitingInMemory == 0, "held writes waiting in memory take nothing of the consumer's budget")
        #expect(schedule.loadPlans(now: now).isEmpty, "with enough taken to fill the running slots, nothing more is read")
        // A new write of a taken record waits behind it in the database; one of another record waits in memory.
        #expect(holds(schedule.accept(item("a", 20, record: "r5"), lane: lane("a"), now: now)) == ["op-a-20"])
        #expect(holds(schedule.accept(item("a", 21, record: "r9"), lane: lane("a"), now: now)).isEmpty)
        var started: [String] = []
        for offset in 0..<8 {
            started += runs(schedule.ended(try #require(entry(schedule, "op-a-\(offset)")), [.completed], pacedUntil: nil))
        }
        #expect(started == ["op-a-2", "op-a-3", "op-a-4", "op-a-5", "op-a-6", "op-a-7", "op-a-21"])
        #expect(schedule.lanes[lane("a")]?.held == 0)
    }

    @Test("messages wait while a partition's held writes are read; a partition being taken away lets its waiting writes go")
    func partitions() throws {
        var schedule = Schedule(settings: .init(concurrency: 1))
        let generation = schedule.assigned([(Self.partition, 0)])[0].1
        #expect(schedule.accept(item("a", 0, record: "r1"), lane: lane("a"), now: now).isEmpty)
        let order = WriteOrder(item("a", -1, record: "r1").request)
        let loaded = schedule.partitionLoaded(
            Self.partition, generation: generation, held: ["a": .init(held: 1, groups: [:])], orders: ["a": [order]], now: now)
        #expect(holds(loaded) == ["op-a-0"], "a record with a held write waits behind it")
        _ = schedule.accept(item("a", 1, record: "r2"), lane: lane("a"), now: now)
        _ = schedule.accept(item("a", 2, record: "r3"), lane: lane("a"), now: now)
        let revoking = schedule.revoking([Self.partition])
        guard case .release(let messages)? = revoking.first else {
            Issue.record("nothing let go: \(revoking)")
            return
        }
        #expect(messages.map(\.offset) == [2])
        #expect(runs(schedule.ended(try #require(entry(schedule, "op-a-1")), [.completed], pacedUntil: nil)).isEmpty)
        schedule.revoked([Self.partition])
        #expect(schedule.lanes.isEmpty)
    }

    @Test("held writes after the committed offset wait until the messages before them were read again")
    func readThrough() throws {
        var schedule = Schedule(settings: .init())
        let generation = schedule.assigned([(Self.partition, 90)])[0].1
        let held = WriteOrder(item("a", 95, record: "r1").request)
        _ = schedule.partitionLoaded(Self.partition, generation: generation, held: ["a": .init(held: 1, groups: [:])],
                                     orders: ["a": [held]], now: now)
        #expect(schedule.loadPlans(now: now).first?.readThrough == 90, "a write held at 95 waits: 90 to 94 are not read yet")
        _ = schedule.loaded(lane("a"), [], wakeAt: nil)
        // The older write of its record comes again and is held before it; the lane reads on past 95.
        #expect(holds(schedule.accept(item("a", 90, record: "r1"), lane: lane("a"), now: now)) == ["op-a-90"])
        _ = schedule.holdStored(try #require(entry(schedule, "op-a-90")), inserted: true)
        for offset in 91...96 { _ = schedule.accept(item("a", Int64(offset), type: .create), lane: lane("a"), now: now) }
        #expect(schedule.loadPlans(now: now).first?.readThrough == 97)
    }

    @Test("when writes waiting in memory pass the budget, the longest queue is held")
    func memoryBudget() {
        var schedule = ready(.init(concurrency: 1, memoryBudget: 4))
        for offset in 0..<4 { _ = schedule.accept(item("a", Int64(offset), record: "r\(offset)"), lane: lane("a"), now: now) }
        for offset in 10..<13 { _ = schedule.accept(item("b", Int64(offset), record: "x\(offset)"), lane: lane("b"), now: now) }
        #expect(schedule.waitingInMemory <= 4)
        #expect(schedule.lanes[lane("a")]?.entries.filter { $0.phase == .holding }.count == 3, "a's three waiting writes are held")
        #expect(schedule.lanes[lane("a")]?.entries.filter { $0.phase == .holding }.allSatisfy { $0.holdReason == .memoryBudget } == true)
        #expect(schedule.lanes[lane("a")]?.waiting == 0 && schedule.lanes[lane("b")]?.waiting == 2)
    }
}

import Kafka
import Logging
import Metrics
import Pipeline
import ServiceLifecycle
import Shared
import Synchronization

/// Consumes `write-requests` and runs each write in its connection's lane (see `Schedule`): at once
/// when its lane has room and nothing earlier of its records is in the way; held in the database when it
/// must wait longer than the hold threshold, and taken again when it is due. A message is finished
/// (its offset committable) once its result is published or its hold is stored; a write whose handling
/// was cancelled or given up is abandoned, never committed. A partition is handed to another member
/// only once none of its writes (from messages or from the held writes) runs here.
///
/// A graceful stop begins nothing more, lets the running writes end (a bulk write stops after its
/// current chunk), and leaves what waited in memory uncommitted for the next owner.
final class WriteScheduler: Service, CustomStringConvertible {
    var description: String { "WriteScheduler" }

    let consumer: KafkaConsumer
    let core: SchedulerCore
    let execution: WriteExecution
    let held: HeldWrites
    /// Where holds, releases and holds again are stored, with the attempts of the writes running meanwhile.
    let journal: WriterJournal
    let logger: Logger
    /// Held writes of a partition whose orders are kept in memory when it is handed over, at most.
    static let trackedOnAssignment = 20_000

    init(
        consumer: KafkaConsumer, settings: Schedule.Settings, execution: WriteExecution, held: HeldWrites, journal: WriterJournal,
        logger: Logger
    ) {
        self.consumer = consumer
        self.execution = execution
        self.held = held
        self.journal = journal
        self.logger = logger
        core = SchedulerCore(settings: settings, consumer: consumer)
        consumer.setRebalanceListener(core)
    }

    func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.dispatch() }
                group.addTask { await self.loadHeldWrites() }
                for await job in core.jobs {
                    group.addTask { await self.perform(job) }
                }
            }
        } onGracefulShutdown: {
            self.core.stop()
            self.consumer.stopDelivering()
        }
        logger.info("stopped writing")
    }

    // MARK: arrivals

    /// Takes what the consumer hands out, a batch at a time: the batch's writes enter the schedule in
    /// one change of it, in order.
    private func dispatch() async {
        for await delivered in consumer.batches {
            var arrivals: [(item: ScheduledItem, lane: LaneKey)] = []
            arrivals.reserveCapacity(delivered.count)
            for message in delivered {
                let request: WriteRequestMessage
                do {
                    request = try JSONCoding.decode(WriteRequestMessage.self, from: message.value)
                } catch {
                    core.submit(.deadLetter(message, reason: "\(error)"))
                    continue
                }
                let item = ScheduledItem(
                    request: request, message: message, seq: message.offset,
                    carried: Carried(), order: WriteOrder(request))
                arrivals.append((item, LaneKey(installationId: request.installationId, partition: message.topicPartition)))
            }
            guard !arrivals.isEmpty else { continue }
            core.update { schedule in
                let now = ContinuousClock.now
                var actions: [Schedule.Action] = []
                for arrival in arrivals { actions += schedule.accept(arrival.item, lane: arrival.lane, now: now) }
                return actions
            }
        }
    }

    private func perform(_ job: SchedulerCore.Job) async {
        switch job {
        case .run(let entry): await run(entry)
        case .hold(let entries): await hold(entries)
        case .deadLetter(let message, let reason): await deadLetter(message, reason: reason)
        case .loadPartition(let partition, let generation): await loadPartition(partition, generation: generation)
        }
    }

    // MARK: running

    private func run(_ entry: ScheduledEntry) async {
        let message = entry.items.first?.message
        let fromHeld = entry.items.contains(where: \.isHeld)
        guard !core.isStopping, message.map(consumer.begin) ?? true else {
            message.map(consumer.skipped)
            core.update { $0.dropped(entry); return [] }
            return
        }
        if fromHeld {
            // Announced before it is checked: a partition taken away after this waits for it; one taken
            // away (and maybe handed back) before it has forgotten the entry.
            guard consumer.beginWork(on: entry.lane.partition) else {
                core.update { $0.dropped(entry); return [] }
                return
            }
            guard core.state.withLock({ $0.contains(entry) }) else {
                consumer.endWork(on: entry.lane.partition)
                return
            }
        }
        defer { if fromHeld { consumer.endWork(on: entry.lane.partition) } }
        do {
            let outcomes: [Handled]
            // Once its provider calls are over, its running slot goes to the next write of its lane.
            let called: @Sendable () -> Void = { self.core.update { $0.called(entry) } }
            if entry.isGroup {
                outcomes = try await execution.handleGroup(entry.items.map { ($0.request, $0.carried) }, called: called)
            } else {
                let item = entry.items[0]
                outcomes = [try await execution.handle(item.request, carried: item.carried, held: item.isHeld, stop: entry.stop,
                                                       called: called)]
            }
            var ends: [ItemEnd] = []
            var pacedUntil: ContinuousClock.Instant?
            var released: [String] = []
            var again: [HeldWrites.Again] = []
            for (item, outcome) in zip(entry.items, outcomes) {
                switch outcome {
                case .completed:
                    ends.append(.completed)
                    if item.isHeld { released.append(item.request.operationId) }
                case .hold(let dueIn, let carried, let paced):
                    Meters.counter("writeback_writes_held_total", [("reason", paced ? "pacing" : "retry")]).increment()
                    if paced {
                        let until = ContinuousClock.now + .milliseconds(Int(dueIn * 1000))
                        pacedUntil = max(pacedUntil ?? until, until)
                    }
                    if item.isHeld {
                        again.append(HeldWrites.Again(operationId: item.request.operationId, dueIn: dueIn, carried: carried))
                        ends.append(.held(inserted: false))
                    } else {
                        let hold = HeldWrites.Hold(
                            request: item.request, bytes: item.text, lane: entry.lane, seq: item.seq, order: item.order, dueIn: dueIn,
                            carried: carried, began: true)
                        let inserted = try await untilSucceeded("holding a write", logger: logger) { try await journal.hold(hold) }
                        logger.debug("write held", metadata: [
                            "operation": "\(item.request.operationId)", "dueIn": "\(dueIn)", "inserted": "\(inserted)", "lane": "\(entry.lane)",
                        ])
                        ends.append(.held(inserted: inserted))
                    }
                }
            }
            if !released.isEmpty {
                let operations = released
                try await untilSucceeded("forgetting held writes", logger: logger) { try await journal.release(operations) }
            }
            if !again.isEmpty {
                let waits = again
                try await untilSucceeded("holding writes again", logger: logger) { try await journal.holdAgain(waits) }
            }
            message.map(consumer.finished)
            core.update { $0.ended(entry, ends, pacedUntil: pacedUntil) }
        } catch {
            // Cancelled (shutdown): nothing of it is committed; a held write stays held.
            message.map(consumer.abandoned)
            core.update { $0.dropped(entry); return [] }
        }
    }

    /// Stores the write of a message that must wait from its arrival.
    /// Stores the writes of messages that must wait from their arrival, in one statement.
    private func hold(_ entries: [ScheduledEntry]) async {
        var holding: [(entry: ScheduledEntry, message: KafkaMessage, hold: HeldWrites.Hold)] = []
        for entry in entries {
            guard let item = entry.items.first, let message = item.message else { continue }
            guard !core.isStopping, consumer.begin(message) else {
                consumer.skipped(message)
                core.update { $0.dropped(entry); return [] }
                continue
            }
            holding.append((entry, message, HeldWrites.Hold(
                request: item.request, bytes: item.text, lane: entry.lane, seq: item.seq, order: item.order, dueIn: entry.dueIn,
                carried: item.carried)))
        }
        guard !holding.isEmpty else { return }
        do {
            let holds = holding.map(\.hold)
            let inserted = try await untilSucceeded("holding writes", logger: logger) { try await journal.hold(holds) }
            for ((entry, message, hold), inserted) in zip(holding, inserted) {
                Meters.counter("writeback_writes_held_total", [("reason", entry.holdReason.rawValue)]).increment()
                consumer.finished(message)
                core.update { $0.holdStored(entry, inserted: inserted) }
            }
        } catch {
            for (entry, message, _) in holding {
                consumer.abandoned(message)
                core.update { $0.dropped(entry); return [] }
            }
        }
    }

    private func deadLetter(_ message: KafkaMessage, reason: String) async {
        guard consumer.begin(message) else {
            consumer.skipped(message)
            return
        }
        do {
            try await execution.letters.unreadable(message, reason: reason)
            consumer.finished(message)
        } catch {
            consumer.abandoned(message)
        }
    }

    // MARK: held writes

    /// Takes held writes again when their lanes have room and they are due, until the stop.
    private func loadHeldWrites() async {
        while !core.isStopping {
            let plans = core.state.withLock { $0.loadPlans(now: .now) }
            for plan in plans { await load(plan) }
            if plans.isEmpty { await core.wake.wait(until: core.state.withLock { $0.nextWake }) }
        }
    }

    private func load(_ plan: Schedule.LoadPlan) async {
        let lane = plan.lane
        do {
            let room = await execution.pacers.pacer(for: lane.installationId).room()
            let requested = min(plan.capacity, room.count)
            var slots = requested
            var candidates: [[HeldWrites.Row]] = []
            var taken: Set<String> = []
            var groups: Set<String> = []
            func take(group name: String) async throws {
                guard groups.insert(name).inserted else { return }
                let rows = try await held.group(lane, name, busy: plan.busy, readThrough: plan.readThrough, limit: 100)
                    .filter { !taken.contains($0.request.operationId) }
                guard !rows.isEmpty else { return }
                candidates.append(rows)
                taken.formUnion(rows.map(\.request.operationId))
                slots -= 1
            }
            for name in plan.fullGroups where slots > 0 { try await take(group: name) }
            var nextDueIn: Double?
            if slots > 0 {
                let due = try await held.due(lane, busy: plan.busy, readThrough: plan.readThrough, limit: slots)
                nextDueIn = due.nextDueIn
                for row in due.rows where slots > 0 && !taken.contains(row.request.operationId) {
                    if let name = row.batchGroup {
                        try await take(group: name)
                    } else {
                        candidates.append([row])
                        taken.insert(row.request.operationId)
                        slots -= 1
                    }
                }
            }
            var wakeAt: ContinuousClock.Instant?
            if room.count == 0 {
                wakeAt = room.next
            } else if candidates.isEmpty, let wait = nextDueIn {
                wakeAt = .now + .milliseconds(Int(wait * 1000) + 1)
            }
            logger.debug("held writes loaded", metadata: [
                "lane": "\(lane)", "room": "\(room.count)", "candidates": "\(candidates.count)", "wake": "\(wakeAt.map { "\($0)" } ?? "-")",
                "busy": "\(plan.busy.operations)", "slots": "\(slots)",
            ])
            let items = candidates.map { rows in
                rows.map { row in
                    ScheduledItem(request: row.request, message: nil, seq: row.seq, carried: row.carried, order: WriteOrder(row.request))
                }
            }
            core.update { $0.loaded(lane, items, wakeAt: wakeAt, more: requested > 0 && candidates.count >= requested) }
        } catch {
            logger.warning("reading held writes failed; trying again", metadata: ["lane": "\(lane)", "error": "\(error)"])
            core.update { $0.loadFailed(lane, retryAt: .now + .seconds(1)); return [] }
        }
    }

    /// Reads what a partition handed to this member holds, before any of its messages is handled.
    private func loadPartition(_ partition: TopicPartition, generation: Int) async {
        do {
            let summary = try await untilSucceeded("reading held writes", logger: logger) { try await held.summary(partition) }
            let total = summary.values.reduce(0) { $0 + $1.held }
            let orders = total == 0
                ? [:]
                : try await untilSucceeded("reading held writes", logger: logger) {
                    try await held.orders(partition, limit: Self.trackedOnAssignment)
                }
            if total > 0 { logger.info("partition holds writes", metadata: ["partition": "\(partition)", "held": "\(total)"]) }
            core.update { $0.partitionLoaded(partition, generation: generation, held: summary, orders: orders, now: .now) }
        } catch {
            // Stopping: the partition's messages stay uncommitted.
        }
    }
}

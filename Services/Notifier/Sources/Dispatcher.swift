import Foundation
import Logging
import Pipeline
import Postgres
import ServiceLifecycle
import Shared
import Synchronization

/// Sends the deliveries that are due: claims them from the control database (leased, so that a crash
/// leaves them due again), at most `maxInFlight` at a time, `maxInFlightPerDestination` per destination
/// and `maxInFlightPerProject` per project, so that a slow or dead destination holds only its own share
/// and a project's dead destinations only the project's, and records each attempt. Woken when the consumer stored new deliveries and when an attempt ends;
/// otherwise it looks every `pollInterval` (retries come due). A graceful stop takes no new delivery
/// and lets the attempts under way end (each is bounded by the timeout).
final class Dispatcher: Service, CustomStringConvertible, Sendable {
    var description: String { "Dispatcher" }

    let database: PostgresPool
    let sender: WebhookSender
    let publisher: NotificationPublisher
    let configuration: NotifierConfiguration
    let logger: Logger
    let wake = WakeSignal()
    /// The attempts' records, gathered: those ending at about the same time go in one transaction, at
    /// most every 10 ms under load. Each answers the destinations its flush disabled.
    private let records: GroupCommit<NotificationStatements.Record, Result<[PostgresRow], any Error>>
    /// Attempts running, per destination and per project.
    private let running = Mutex<(destinations: [String: Int], projects: [String: Int])>(([:], [:]))
    private let stopping = Atomic<Bool>(false)
    /// Where each destination's last claim ended, and when the cursors were last let go of (each poll
    /// interval, a claim reads every destination's due deliveries from the start).
    private let cursors = Mutex<(after: [String: NotificationStatements.Cursor], since: ContinuousClock.Instant)>(([:], .now))

    init(database: PostgresPool, sender: WebhookSender, publisher: NotificationPublisher, configuration: NotifierConfiguration,
         logger: Logger) {
        self.database = database
        self.sender = sender
        self.publisher = publisher
        self.configuration = configuration
        self.logger = logger
        let disableAfter = configuration.disableAfter
        records = GroupCommit(limit: 500, interval: .milliseconds(10)) { records in
            func flush(_ records: [NotificationStatements.Record]) async throws -> [PostgresRow] {
                let rows = try await database.pipeline(
                    [PostgresPool.customPlans] + NotificationStatements.record(records, disableAfter: disableAfter))
                return rows.last?.rows.filter { $0["disabled"] != nil } ?? []
            }
            do {
                // The first record of a flush tells of what it disabled, once.
                return [.success(try await flush(records))] + Array(repeating: .success([]), count: max(0, records.count - 1))
            } catch {
                // One record the database refuses must not fail the others: each alone, then.
                guard records.count > 1 else { return [.failure(error)] }
                var answers: [Result<[PostgresRow], any Error>] = []
                for record in records {
                    do { answers.append(.success(try await flush([record]))) } catch { answers.append(.failure(error)) }
                }
                return answers
            }
        }
    }

    /// A lease outlasts the attempt it covers (its timeout bounds the transfers, not a slow name lookup
    /// or the retries of its record) by a wide margin.
    var lease: Double { configuration.timeout * 2 + 30 }

    func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await withDiscardingTaskGroup { group in
                    while !stopping.load(ordering: .relaxed) && !Task.isCancelled {
                        let busy = running.withLock { $0 }
                        let free = configuration.maxInFlight - busy.destinations.values.reduce(0, +)
                        if free > 0 {
                            do {
                                for delivery in try await claim(busy: busy, limit: free) {
                                    running.withLock {
                                        $0.destinations[delivery.destinationId, default: 0] += 1
                                        $0.projects[delivery.projectId, default: 0] += 1
                                    }
                                    group.addTask {
                                        // The destination's share is its requests in flight: free once the
                                        // answer is in, while the record (which ends the lease) is written.
                                        await self.attempt(delivery) {
                                            self.running.withLock {
                                                Self.release(&$0.destinations, delivery.destinationId)
                                                Self.release(&$0.projects, delivery.projectId)
                                            }
                                            self.wake.notify()
                                        }
                                    }
                                }
                            } catch {
                                logger.warning("looking for due deliveries failed; trying again", metadata: ["error": "\(error)"])
                            }
                        }
                        await pruneWhenDue()
                        await wake.wait(until: .now + configuration.pollInterval)
                        // Under load, what ends within a few milliseconds is claimed for together.
                        try? await Task.sleep(for: Self.claimGap)
                    }
                }
            } onCancel: {
                self.wake.notify()
            }
        } onGracefulShutdown: {
            self.stopping.store(true, ordering: .relaxed)
            self.wake.notify()
        }
    }

    /// When old events were last looked for.
    private let pruned = Mutex<ContinuousClock.Instant?>(nil)

    /// Removes the events kept longer than `retention` (and their deliveries and attempts), a few
    /// thousand at a time, once per tenth of the retention (at most every 10 minutes, at least every second).
    private func pruneWhenDue() async {
        let every = Duration.milliseconds(Int(min(600, max(1, configuration.retention / 10)) * 1000))
        let due = pruned.withLock { last -> Bool in
            guard last.map({ ContinuousClock.now - $0 >= every }) ?? true else { return false }
            last = .now
            return true
        }
        guard due else { return }
        do {
            var removed = 0
            repeat {
                let statement = NotificationStatements.prune(retention: configuration.retention, limit: 5_000)
                removed = try await database.query(statement.sql, statement.parameters).affected
                if removed > 0 { logger.info("removed old notifications", metadata: ["events": "\(removed)"]) }
            } while removed == 5_000 && !stopping.load(ordering: .relaxed)
        } catch {
            logger.warning("removing old notifications failed; trying again later", metadata: ["error": "\(error)"])
        }
    }

    /// The least time between two claims: a claim costs a round trip whatever it takes, and attempts
    /// that end meanwhile join the next.
    static let claimGap = Duration.milliseconds(2)

    private static func release(_ counts: inout [String: Int], _ key: String) {
        counts[key, default: 1] -= 1
        if counts[key] == 0 { counts[key] = nil }
    }

    private func claim(busy: (destinations: [String: Int], projects: [String: Int]), limit: Int) async throws -> [WebhookSender.Delivery] {
        let interval = configuration.pollInterval
        let after = cursors.withLock { state -> [String: NotificationStatements.Cursor] in
            if ContinuousClock.now - state.since >= interval {
                state = ([:], .now)
            }
            return state.after
        }
        let statement = NotificationStatements.claim(
            running: busy.destinations, runningProjects: busy.projects, after: after,
            perDestination: configuration.maxInFlightPerDestination, perProject: configuration.maxInFlightPerProject, limit: limit,
            lease: lease)
        let rows = try await database.pipeline([PostgresPool.customPlans, statement])[1].rows
        cursors.withLock { state in
            for row in rows {
                guard let destination = row["destination_id"], let due = row["due"], let id = row["id"] else { continue }
                let cursor = NotificationStatements.Cursor(due: due, id: id)
                if state.after[destination].map({ $0 < cursor }) ?? true { state.after[destination] = cursor }
            }
        }
        return try rows.map { row in
            WebhookSender.Delivery(
                id: try row.string("id"), attempt: row.int("attempts") ?? 1, round: row.int("round") ?? 1,
                eventId: try row.string("event_id"), body: Array(try row.string("body").utf8),
                destinationId: try row.string("destination_id"), url: try row.string("url"), sealedHeaders: row["headers"],
                sealedSecret: try row.string("signing_secret"), projectId: try row.string("project_id"),
                created: Double(row["created"] ?? "") ?? 0)
        }
    }

    private func attempt(_ delivery: WebhookSender.Delivery, answered: () -> Void) async {
        let startedAt = Timestamp.now()
        let start = ContinuousClock.now
        let result = await sender.send(delivery)
        answered()
        let elapsed = ContinuousClock.now - start
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        let outcome: String
        switch result.outcome {
        case .delivered: outcome = "delivered"
        case .retry(.some): outcome = "retry"
        case .retry(nil), .failed: outcome = "failed"
        }
        Meters.counter("writeback_webhook_attempts_total", [("outcome", outcome)]).increment()
        if result.outcome == .delivered {
            Meters.timer("writeback_webhook_delay_seconds").recordNanoseconds(
                Int64(max(0, Date().timeIntervalSince1970 - delivery.created) * 1e9))
        } else {
            logger.info("webhook attempt failed", metadata: [
                "delivery": "\(delivery.id)", "destination": "\(delivery.destinationId)", "attempt": "\(delivery.attempt)",
                "status": "\(result.status.map(String.init) ?? "none")", "outcome": "\(outcome)",
                "error": "\(result.error ?? "")"])
        }
        let record = NotificationStatements.Record(
            delivery: delivery.id, attempt: delivery.attempt, destination: delivery.destinationId, startedAt: startedAt,
            durationMs: milliseconds, status: result.status, error: result.error, outcome: result.outcome)
        for trial in 1...5 {
            do {
                for row in try await records.submit(record).get() { await destinationDisabled(row) }
                return
            } catch {
                logger.warning("recording a webhook attempt failed", metadata: ["delivery": "\(delivery.id)", "trial": "\(trial)",
                                                                                "error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(200 * trial))
            }
        }
        // Not recorded: the lease ends and the delivery is tried again.
    }

    /// Tells the project that a destination was disabled (`destination.webhook.disabled`), through the
    /// `notifications` topic like any event.
    private func destinationDisabled(_ row: PostgresRow) async {
        let id = row["disabled"] ?? ""
        let error = row["error"]
        logger.warning("webhook destination disabled: every attempt failed", metadata: ["destination": "\(id)"])
        var data: [String: JSONValue] = [
            "destination": ["id": .string(id), "name": .string(row["name"] ?? ""), "type": "webhook"],
            "reason": .string("every attempt failed for \(Int(configuration.disableAfter)) s"),
        ]
        if let since = row["failing_since"] { data["failingSince"] = .string(since) }
        if let error { data["lastError"] = .string(error) }
        await publisher.tell(NotificationEvent(type: .destinationWebhookDisabled, projectId: row["project_id"] ?? "", data: .object(data)))
    }
}

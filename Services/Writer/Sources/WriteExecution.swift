import Connectors
import Foundation
import HTTPClient
import Kafka
import Logging
import Metrics
import Pipeline
import ProviderAccess
import Shared

/// How handling a write ended.
enum Handled: Sendable, Equatable {
    /// Its result is published.
    case completed
    /// It waits: not before `dueIn` seconds from now, carrying what it made so far. `paced` when its
    /// connection's limit holds it (then every write of the connection waits as long).
    case hold(dueIn: Double, carried: Carried, paced: Bool)
}

/// One write request, from its delivery to its published result. A class: every write's task and
/// closures hold it, and a reference is one count where a struct of these services is a count each.
final class WriteExecution: Sendable {
    let configuration: WriterConfiguration
    let logger: Logger
    /// The write's rows: its attempt, and its hold when it waits.
    let journal: WriterJournal
    let installations: InstallationStore
    let tokens: TokenRefresher
    let pacers: ConnectionPacers
    let connectors: Connectors
    let producer: KafkaProducer
    let letters: DeadLetters
    /// Where the CSVs of bulk writes sent as `recordsCSV` are held.
    let bulkUploads: BulkUploads?

    init(
        configuration: WriterConfiguration, logger: Logger, journal: WriterJournal, installations: InstallationStore,
        tokens: TokenRefresher, pacers: ConnectionPacers, connectors: Connectors, producer: KafkaProducer, letters: DeadLetters,
        bulkUploads: BulkUploads?
    ) {
        self.configuration = configuration
        self.logger = logger
        self.journal = journal
        self.installations = installations
        self.tokens = tokens
        self.pacers = pacers
        self.connectors = connectors
        self.producer = producer
        self.letters = letters
        self.bulkUploads = bulkUploads
    }

    /// The longest a write waits in memory (for its connection's pacing, between tries); a longer wait
    /// is a hold.
    var holdThreshold: Duration { .milliseconds(Int(configuration.holdThreshold * 1000)) }

    /// Handles one write: publishes its stored result when it was answered before, or calls the provider
    /// and publishes the result, or answers that it must wait. `held`: it comes from the held writes (a
    /// write marked held otherwise is a repeated message of one that is held, which the held one does).
    /// `called`: its provider calls are over (it goes on to record and publish the result).
    func handle(
        _ request: WriteRequestMessage, carried: Carried, held: Bool, stop: StopFlag? = nil, called: @Sendable () -> Void = {}
    ) async throws -> Handled {
        var logger = self.logger
        logger[metadataKey: "operation"] = "\(request.operationId)"
        do {
            let start = try await untilSucceeded("recording the attempt", logger: logger) {
                try await journal.begin(request.operationId, held: held)
            }
            let result: Recorded
            switch start {
            case .completed(let stored):
                Meters.counter("writeback_redeliveries_total", [("state", "answered")]).increment()
                logger.debug("redelivered request already answered; publishing its result again")
                result = try Recorded(stored)
            case .held where !held:
                logger.debug("a repeated request of a held write; the held write goes on")
                return .completed
            case .fresh, .held:
                switch try await write(request, carried: carried, interrupted: false, stop: stop, logger: logger, called: called) {
                case .done(let answered): result = answered
                case .hold(let hold): return hold
                }
            case .interrupted(let previous):
                Meters.counter("writeback_redeliveries_total", [("state", "interrupted")]).increment()
                logger.warning("request was in flight when a writer stopped; sending it again",
                               metadata: ["deliveries": "\(previous + 1)"])
                switch try await write(request, carried: carried, interrupted: true, stop: stop, logger: logger, called: called) {
                case .done(let answered): result = answered
                case .hold(let hold): return hold
                }
            }
            try await untilSucceeded("publishing the result", logger: logger) { try await publish(result, of: request) }
            return .completed
        } catch {
            // Only cancellation (shutdown, a partition taken away) ends the retries above: nothing is
            // committed, and the request comes back.
            logger.info("write left for redelivery", metadata: ["error": "\(error)"])
            throw error
        }
    }

    /// What writing came to: a result, recorded, or a wait.
    enum Written: Sendable {
        case done(Recorded)
        case hold(Handled)
    }

    /// Calls the provider, paced by the connection's limits, retrying passing failures until the write's
    /// retry deadline, and records the result before returning it; or answers how long it must wait.
    func write(
        _ request: WriteRequestMessage, carried: Carried, interrupted: Bool, stop: StopFlag?, logger: Logger,
        called: @Sendable () -> Void = {}
    ) async throws -> Written {
        let found = try await untilSucceeded("reading the installation", logger: logger) {
            try await installations.context(request.installationId)
        }
        let result: WriteResultMessage
        if let context = found, let bulk = request.bulk {
            var execution = BulkExecution(execution: self, request: request, bulk: bulk, context: context, stop: stop, logger: logger)
            result = try await execution.write()
        } else {
            switch try await providerCall(request, context: found, carried: carried, interrupted: interrupted, logger: logger) {
            case .answered(let call): result = answer(request, call)
            case .hold(let hold): return .hold(hold)
            }
        }
        called()
        let recorded = try Recorded(result)
        try await record([(recorded, request)], logger: logger)
        return .done(recorded)
    }

    /// Stores the results of writes, together, so that a redelivered request is answered from its own.
    func record(_ answered: [(recorded: Recorded, request: WriteRequestMessage)], logger: Logger) async throws {
        for (recorded, request) in answered {
            let result = recorded.result
            logger.info("write answered", metadata: [
                "operation": "\(result.operationId)", "success": "\(result.success)",
                "status": "\(result.providerStatus.map(String.init) ?? "-")", "type": "\(request.type.rawValue)",
                "provider": "\(request.provider.rawValue)",
            ])
        }
        let results = answered.map(\.recorded)
        try await untilSucceeded("recording the result", logger: logger) { try await journal.complete(results) }
        for (_, request) in answered where request.bulk != nil {
            if let bulkUploads { try? await bulkUploads.remove(request.operationId) }
        }
    }

    /// What calling the provider for a single or batch write came to (nothing is called when the
    /// installation is gone).
    func providerCall(
        _ request: WriteRequestMessage, context found: InstallationContext?, carried: Carried, interrupted: Bool, logger: Logger
    ) async throws -> CallResult {
        guard let context = found else { return .answered(Self.gone(request.installationId, carried: carried, interrupted: interrupted)) }
        let write = prepare(request, context)
        let batch = request.batch.map { records in
            records.map { providerWrite($0.record, recordId: $0.recordId, associations: $0.associations, of: request, context) }
        }
        let connector = connectors.connector(for: request.provider)
        let allOrNone = request.allOrNone ?? false
        return try await callProvider(
            context, provider: request.provider, idempotent: request.type.isIdempotent, deadline: retryDeadline(of: request),
            carried: carried, interrupted: interrupted, maxWait: holdThreshold, logger: logger
        ) { connection in
            if let batch { return await connector.writeBatch(batch, allOrNone: allOrNone, connection: connection) }
            return await connector.write(write, connection: connection)
        }
    }

    /// The call of a write whose installation was removed: nothing is sent; it fails, dead-lettered.
    static func gone(_ installationId: String, carried: Carried, interrupted: Bool) -> ProviderCall {
        ProviderCall(
            outcome: .rejected(WriteError(message: "installation \(installationId) no longer exists", deadLettered: true), status: 0),
            calls: carried.calls, possiblyDuplicated: carried.possiblyDuplicated || interrupted)
    }

    /// Writes auto-batched writes of one installation, object and type in one provider batch call; each
    /// keeps its own operation, result and change event. Answers each write's outcome, in order.
    func handleGroup(
        _ writes: [(request: WriteRequestMessage, carried: Carried)], called: @Sendable () -> Void = {}
    ) async throws -> [Handled] {
        var logger = self.logger
        logger[metadataKey: "autoBatch"] = "\(writes.count)"
        var outcomes = [Handled?](repeating: nil, count: writes.count)
        var sending: [(index: Int, interrupted: Bool)] = []
        let operationIds = writes.map(\.request.operationId)
        let starts = try await untilSucceeded("recording the attempts", logger: logger) { try await journal.begin(operationIds, held: true) }
        for (index, (write, start)) in zip(writes, starts).enumerated() {
            switch start {
            case .completed(let stored):
                let recorded = try Recorded(stored)
                try await untilSucceeded("publishing the result", logger: logger) { try await publish(recorded, of: write.request) }
                outcomes[index] = .completed
            case .fresh, .held:
                sending.append((index, false))
            case .interrupted:
                sending.append((index, true))
            }
        }
        guard let first = sending.first.map({ writes[$0.index].request }) else { return outcomes.map { $0 ?? .completed } }
        let found = try await untilSucceeded("reading the installation", logger: logger) {
            try await installations.context(first.installationId)
        }
        var calls: [ProviderCall]
        if let context = found {
            let batch = sending.map { entry in
                let request = writes[entry.index].request
                return providerWrite(request.record, recordId: request.recordId, associations: request.associations, of: request, context)
            }
            let connector = connectors.connector(for: first.provider)
            // The group is tried until the latest of its writes' deadlines, each write keeps its own flag.
            let deadline = sending.map { retryDeadline(of: writes[$0.index].request) }.max() ?? .now
            let carried = Carried(calls: sending.map { writes[$0.index].carried.calls }.max() ?? 0)
            let result = try await callProvider(
                context, provider: first.provider, idempotent: first.type.isIdempotent, deadline: deadline, carried: carried,
                interrupted: false, maxWait: holdThreshold, logger: logger
            ) { connection in
                await connector.writeBatch(batch, allOrNone: false, connection: connection)
            }
            switch result {
            case .hold(.hold(let dueIn, let held, let paced)):
                for entry in sending {
                    var own = held
                    own.possiblyDuplicated = held.possiblyDuplicated || writes[entry.index].carried.possiblyDuplicated
                    outcomes[entry.index] = .hold(dueIn: dueIn, carried: own, paced: paced)
                }
                return outcomes.map { $0 ?? .completed }
            case .hold(.completed):
                return outcomes.map { $0 ?? .completed }
            case .answered(let call):
                Meters.counter("writeback_auto_batch_calls_total", [("provider", first.provider.rawValue)]).increment()
                logger.debug("auto-batched writes sent", metadata: ["calls": "\(call.calls)"])
                calls = sending.indices.map { position in
                    var share = call
                    share.items = nil
                    share.possiblyDuplicated = call.possiblyDuplicated || sending[position].interrupted
                        || writes[sending[position].index].carried.possiblyDuplicated
                    if case .applied = call.outcome, let items = call.items, position < items.count { share.outcome = items[position] }
                    return share
                }
            }
        } else {
            calls = sending.map { Self.gone(first.installationId, carried: writes[$0.index].carried, interrupted: $0.interrupted) }
        }
        called()
        let answered = try zip(sending, calls).map { entry, call in
            (recorded: try Recorded(answer(writes[entry.index].request, call)), request: writes[entry.index].request)
        }
        try await record(answered, logger: logger)
        try await untilSucceeded("publishing the results", logger: logger) { try await publish(answered) }
        for entry in sending { outcomes[entry.index] = .completed }
        return outcomes.map { $0 ?? .completed }
    }

    /// What calling the provider for a write (or a batch of writes) came to.
    struct ProviderCall: Sendable {
        var outcome: ConnectorOutcome
        /// Each record's outcome, when the provider answered a batch.
        var items: [ConnectorOutcome]?
        var calls: Int
        var possiblyDuplicated: Bool
    }

    /// A provider call's end: an answer (or the last failure at the deadline), or a wait too long to
    /// spend in memory.
    enum CallResult: Sendable {
        case answered(ProviderCall)
        case hold(Handled)
    }

    /// Sends `send` to the installation's provider, paced by the connection's limits: renews a refused
    /// token once, waits out rate limits, and retries passing failures until `deadline`. A wait longer
    /// than `maxWait` (for the connection's pacing, or before the next try) ends the call with a hold;
    /// nil waits as long as it takes (a bulk write's chunks).
    func callProvider(
        _ context: InstallationContext, provider: Provider, idempotent: Bool, deadline: ContinuousClock.Instant,
        carried: Carried = Carried(), interrupted: Bool, maxWait: Duration?, logger: Logger,
        send: (Connection) async -> ConnectorResponse
    ) async throws -> CallResult {
        var possiblyDuplicated = interrupted || carried.possiblyDuplicated
        var calls = carried.calls
        var outcome: ConnectorOutcome
        var items: [ConnectorOutcome]?
        var connection = context.connection
        var renewed = false
        let connector = connectors.connector(for: provider)
        let pacer = pacers.pacer(for: context.installationId)
        outcome = .retryable(
            WriteError(message: "no provider call could start before the retry deadline: the connection is held at its rate limit",
                       code: "RATE_LIMITED"),
            status: nil, notSent: true)
        while true {
            // Calls start only before the deadline; a write read after its deadline still gets one.
            let latest = calls == 0 ? max(deadline, .now + .seconds(1)) : deadline
            switch try await pacer.acquire(before: latest, waitingAtMost: maxWait) {
            case .go:
                break
            case .later(let at):
                let carried = Carried(calls: calls, possiblyDuplicated: possiblyDuplicated)
                return .hold(.hold(dueIn: Self.seconds(until: at), carried: carried, paced: true))
            case .pastDeadline:
                return .answered(ProviderCall(outcome: outcome, items: items, calls: calls, possiblyDuplicated: possiblyDuplicated))
            }
            calls += 1
            let started = ContinuousClock.now
            let response = await HTTPClient.$share.withValue(context.installationId) { await send(connection) }
            items = response.items
            await pacer.finished(response)
            outcome = response.outcome
            let providerName = provider.rawValue
            Meters.timer("writeback_provider_call_duration_seconds", [("provider", providerName)])
                .record(duration: ContinuousClock.now - started)
            Meters.counter("writeback_provider_calls_total", [("provider", providerName), ("outcome", outcome.name)])
                .increment()
            if case .unauthorized(let error, let status) = outcome {
                // The token expired or was revoked; nothing was applied. Renew it once and send again.
                guard !renewed else {
                    outcome = .rejected(reconnect("the provider refused the renewed token: \(error.message)", error), status: status)
                    break
                }
                renewed = true
                let refused = connection
                let refresh = try await untilSucceeded("renewing the token", logger: logger) {
                    try await HTTPClient.$share.withValue(context.installationId) {
                        try await tokens.renew(context, refused: refused, with: connector)
                    }
                }
                switch refresh {
                case .refreshed:
                    connection = try await installations.context(context.installationId)?.connection ?? connection
                    logger.info("access token renewed; sending the write again")
                    continue
                case .refused(let refusal):
                    outcome = .rejected(reconnect(refusal.message, refusal), status: status)
                case .unavailable(let failure):
                    outcome = .retryable(failure, status: nil, notSent: true)
                    renewed = false
                }
            }
            switch outcome {
            case .rateLimited(let error, _, let daily):
                // Not applied; the pacer holds this connection's calls until its limit has room.
                logger.notice("provider refused the call for the connection's rate limit; waiting for room",
                              metadata: ["error": "\(error.message)", "daily": "\(daily)"])
                continue
            case .retryable(let error, _, let notSent):
                if !notSent && !idempotent { possiblyDuplicated = true }
                let wait = backoff(afterCall: calls)
                guard ContinuousClock.now + .seconds(wait) < deadline else { break }
                logger.notice("provider call failed for a passing reason; trying again",
                              metadata: ["error": "\(error.message)", "call": "\(calls)", "wait": "\(wait)"])
                if let maxWait, .seconds(wait) > maxWait {
                    return .hold(.hold(dueIn: wait, carried: Carried(calls: calls, possiblyDuplicated: possiblyDuplicated), paced: false))
                }
                try await Task.sleep(for: .seconds(wait))
                continue
            default:
                break
            }
            break
        }
        return .answered(ProviderCall(outcome: outcome, items: items, calls: calls, possiblyDuplicated: possiblyDuplicated))
    }

    /// Seconds from now until `instant` (0 when it is past).
    static func seconds(until instant: ContinuousClock.Instant) -> Double {
        let components = (instant - .now).components
        return max(0, Double(components.seconds) + Double(components.attoseconds) / 1e18)
    }

}

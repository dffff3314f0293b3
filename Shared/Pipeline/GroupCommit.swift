import Synchronization

/// Gathers what many tasks submit at about the same time into one call of `flush` (one database
/// transaction for many writes). The first submitter flushes what has gathered; while it does, others
/// gather behind it, and when it is done the oldest of them flushes next. No task of its own: whoever
/// waits does the work. A failed flush fails every submission in it. (The writer's journal and the
/// notifier's attempt records.)
///
/// Flushes are paced by a bucket of `burst` tokens refilled one per `interval`: under load a flush
/// starts at most every `interval` on average (unless `limit` items wait), and what arrives meanwhile
/// joins it, so that the flushes per second stay bounded however fast items come; a light load (a few
/// flushes in a row, then a pause) is flushed at once, and so is a lone item after a lone item (one
/// client's writes one after another: nothing would join it, and waiting would only slow them).
public final class GroupCommit<Item: Sendable, Answer: Sendable>: Sendable {
    private enum Turn: Sendable {
        case done(Result<Answer, any Error>)
        /// The submitter flushes the next group.
        case lead
    }

    private final class Ticket: Sendable {
        let item: Item
        let turn = Mutex<(turn: Turn?, continuation: CheckedContinuation<Turn, Never>?)>((nil, nil))
        init(_ item: Item) { self.item = item }

        func give(_ turn: Turn) {
            let continuation = self.turn.withLock { state -> CheckedContinuation<Turn, Never>? in
                if let continuation = state.continuation {
                    state.continuation = nil
                    return continuation
                }
                state.turn = turn
                return nil
            }
            continuation?.resume(returning: turn)
        }

        func wait() async -> Turn {
            await withCheckedContinuation { continuation in
                let ready = self.turn.withLock { state -> Turn? in
                    if let turn = state.turn {
                        state.turn = nil
                        return turn
                    }
                    state.continuation = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }

    private struct State {
        var waiting: [Ticket] = []
        var flushing = false
        /// Flushes that may start at once, and when they were last counted.
        var tokens: Double
        var counted = ContinuousClock.now
        /// How many items the last flush took.
        var lastGroup = 0
    }

    private let state: Mutex<State>
    private let limit: Int
    private let interval: Duration
    private let burst: Double
    private let flush: @Sendable ([Item]) async throws -> [Answer]

    /// `flush` answers each item, in order; at most `limit` items go in one call, and calls start at
    /// most every `interval` on average, with bursts of `burst`.
    public init(limit: Int = 500, interval: Duration = .zero, burst: Int = 4, flush: @escaping @Sendable ([Item]) async throws -> [Answer]) {
        self.limit = limit
        self.interval = interval
        self.burst = Double(max(1, burst))
        state = Mutex(State(tokens: Double(max(1, burst))))
        self.flush = flush
    }

    public func submit(_ item: Item) async throws -> Answer {
        let ticket = Ticket(item)
        let leads = state.withLock { state -> Bool in
            state.waiting.append(ticket)
            if state.flushing { return false }
            state.flushing = true
            return true
        }
        if leads { ticket.give(.lead) }
        while true {
            switch await ticket.wait() {
            case .done(let result):
                return try result.get()
            case .lead:
                await flushGroup()
            }
        }
    }

    /// Flushes what has gathered (once the interval since the last flush has passed, or the group is
    /// full), then hands the lead to the oldest waiting submitter, if any.
    private func flushGroup() async {
        let wait = state.withLock { state -> Duration in
            guard interval > .zero else { return .zero }
            let now = ContinuousClock.now
            state.tokens = min(burst, state.tokens + (now - state.counted) / interval)
            state.counted = now
            // A full group goes at once, borrowing its token; so does a lone item after a lone item.
            guard state.tokens < 1, state.waiting.count < limit, state.waiting.count > 1 || state.lastGroup > 1 else { return .zero }
            return interval * (1 - state.tokens)
        }
        // A cancelled wait flushes at once: what gathered is still answered.
        if wait > .zero { try? await Task.sleep(for: wait, tolerance: .microseconds(100)) }
        let group = state.withLock { state -> [Ticket] in
            let group = Array(state.waiting.prefix(limit))
            state.waiting.removeFirst(group.count)
            state.lastGroup = group.count
            if interval > .zero {
                let now = ContinuousClock.now
                state.tokens = min(burst, state.tokens + (now - state.counted) / interval) - 1
                state.counted = now
            }
            return group
        }
        do {
            let answers = try await flush(group.map(\.item))
            for (ticket, answer) in zip(group, answers) { ticket.give(.done(.success(answer))) }
        } catch {
            for ticket in group { ticket.give(.done(.failure(error))) }
        }
        let next = state.withLock { state -> Ticket? in
            guard let next = state.waiting.first else {
                state.flushing = false
                return nil
            }
            return next
        }
        next?.give(.lead)
    }
}

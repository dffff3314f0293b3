import Synchronization

/// Gathers what many tasks submit at about the same time into one call of `flush` (one database
/// statement for many writes). The first submitter flushes what has gathered; while it does, others
/// gather behind it, and when it is done the oldest of them flushes next. No task of its own: whoever
/// waits does the work. A failed flush fails every submission in it.
final class GroupCommit<Item: Sendable, Answer: Sendable>: Sendable {
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

    private let state = Mutex<(waiting: [Ticket], flushing: Bool)>(([], false))
    private let limit: Int
    private let flush: @Sendable ([Item]) async throws -> [Answer]

    /// `flush` answers each item, in order; at most `limit` items go in one call.
    init(limit: Int = 500, flush: @escaping @Sendable ([Item]) async throws -> [Answer]) {
        self.limit = limit
        self.flush = flush
    }

    func submit(_ item: Item) async throws -> Answer {
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

    /// Flushes what has gathered, then hands the lead to the oldest waiting submitter, if any.
    private func flushGroup() async {
        let group = state.withLock { state -> [Ticket] in
            let group = Array(state.waiting.prefix(limit))
            state.waiting.removeFirst(group.count)
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

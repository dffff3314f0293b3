import Connectors
import Synchronization

/// Paces the provider calls of one connection (installation) from the limits the provider reports, so
/// that a connection runs close to its allowed rate without being refused, and a connection held back
/// by its limit delays only its own writes.
///
/// - Until the first answer, one call at a time: it tells the window (HubSpot's `X-HubSpot-RateLimit-Max`
///   calls per `-Interval-Milliseconds`), or that there is none (Salesforce reports only its 24-hour
///   allocation).
/// - With a window, calls start only while fewer than `max` started within the last window (stretched
///   by `margin`), so no window of the provider's, sliding or fixed, sees more than `max`.
/// - A window refusal (429) holds every call for a whole window: at most one refusal per window. A daily
///   refusal (HubSpot `DAILY`, Salesforce 403 REQUEST_LIMIT_EXCEEDED) or a reported daily budget of 0
///   holds for `dailyPause`, doubling while refusals go on, up to `maxDailyPause`; then one call probes.
/// - Waiting calls start in arrival order; a call whose start would fall past its deadline is told so,
///   and one that would wait longer than it may is told when it could start, so that it waits
///   elsewhere (held durably) instead of in memory.
actor ConnectionPacer {
    struct Settings: Sendable {
        var margin = 0.02
        var dailyPause: Duration = .seconds(60)
        var maxDailyPause: Duration = .seconds(3600)
    }

    /// Whether a call may start.
    enum Admission: Sendable, Equatable {
        /// Now: every `.go` is followed by `finished(_:)`.
        case go
        /// Not within the wait allowed; not before this instant (or, while a probing call is out, not
        /// before it answers: then the instant is now).
        case later(ContinuousClock.Instant)
        /// Not before the call's deadline.
        case pastDeadline
    }

    private struct Waiter {
        let id: Int
        let deadline: ContinuousClock.Instant
        /// The latest it waits here; later starts are answered `.later`.
        let patience: ContinuousClock.Instant
        let continuation: CheckedContinuation<Admission, any Error>
    }

    private let settings: Settings
    private let clock = ContinuousClock()
    private var window: (max: Int, length: Duration)?
    private var learned = false
    private var inFlight = 0
    /// Start times of the calls within the last window.
    private var started: [ContinuousClock.Instant] = []
    private var heldUntil: ContinuousClock.Instant?
    private var dailyRefusals = 0
    private var waiters: [Waiter] = []
    private var nextWaiterId = 0
    private var timer: Task<Void, Never>?
    private var timerAt: ContinuousClock.Instant?

    init(settings: Settings) {
        self.settings = settings
    }

    /// Waits until a call may start, at most `maxWait` (nil: as long as it takes): `.go`, or when it
    /// could start instead, or `.pastDeadline` when that would be after `deadline`. Throws
    /// CancellationError when the waiting task is cancelled.
    func acquire(before deadline: ContinuousClock.Instant, waitingAtMost maxWait: Duration? = nil) async throws -> Admission {
        let now = clock.now
        if waiters.isEmpty {
            switch nextStart(now) {
            case .now:
                start(now)
                return .go
            case .at(let at) where at > deadline:
                return .pastDeadline
            case .at(let at) where maxWait.map({ at > now + $0 }) ?? false:
                return .later(at)
            default:
                break
            }
        }
        let id = nextWaiterId
        nextWaiterId += 1
        let patience = maxWait.map { now + $0 } ?? deadline
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                waiters.append(Waiter(id: id, deadline: deadline, patience: min(patience, deadline), continuation: continuation))
                dispatch()
                if maxWait != nil { arm(patience) }
            }
        } onCancel: {
            Task { await self.cancel(id) }
        }
    }

    /// How many calls may start now (without a wait), and, when none may, when one may next (nil:
    /// when the probing call in flight answers).
    func room() -> (count: Int, next: ContinuousClock.Instant?) {
        let now = clock.now
        switch nextStart(now) {
        case .afterProbe:
            return (0, nil)
        case .at(let at):
            return (0, at)
        case .now:
            if heldUntil.map({ $0 > now }) ?? false { return (0, heldUntil) }
            if !learned || (heldUntil != nil && dailyRefusals > 0) { return (max(0, 1 - waiters.count), nil) }
            guard let window else { return (Int.max, nil) }
            return (max(0, window.max - started.count - waiters.count), nil)
        }
    }

    /// Learns from a call's answer (or its absence) and lets waiting calls go when they may.
    func finished(_ response: ConnectorResponse) {
        inFlight -= 1
        let now = clock.now
        if response.answered { learned = true }
        if let limits = response.limits {
            if let max = limits.windowMax, max > 0, let seconds = limits.windowSeconds, seconds > 0 {
                window = (max, .milliseconds(Int(seconds * 1000)))
            }
            if limits.windowRemaining == 0, let length = stretchedWindow {
                hold(until: (started.first ?? now) + length)
            }
            if limits.dailyRemaining == 0 { holdForDailyLimit(now) }
        }
        switch response.outcome {
        case .rateLimited(_, _, let daily):
            if daily {
                holdForDailyLimit(now)
            } else {
                hold(until: now + (stretchedWindow ?? .seconds(10)))
            }
        case .applied, .rejected:
            dailyRefusals = 0
        default:
            break
        }
        dispatch()
    }

    private var stretchedWindow: Duration? {
        window.map { $0.length * (1 + settings.margin) }
    }

    private func holdForDailyLimit(_ now: ContinuousClock.Instant) {
        dailyRefusals += 1
        let doubling = settings.dailyPause * Int(1 << min(dailyRefusals - 1, 20))
        hold(until: now + min(doubling, settings.maxDailyPause))
    }

    private func hold(until instant: ContinuousClock.Instant) {
        if heldUntil.map({ $0 < instant }) ?? true { heldUntil = instant }
    }

    private enum NextStart {
        case now
        case at(ContinuousClock.Instant)
        /// When the probing call in flight answers (`finished` dispatches again).
        case afterProbe
    }

    private func nextStart(_ now: ContinuousClock.Instant) -> NextStart {
        if let heldUntil, heldUntil > now { return .at(heldUntil) }
        if !learned || (heldUntil != nil && dailyRefusals > 0) {
            // Probing: one call at a time until an answer tells the limits (or that a hold is over).
            return inFlight > 0 ? .afterProbe : .now
        }
        guard let window, let length = stretchedWindow else { return .now }
        if let first = started.firstIndex(where: { $0 + length > now }) { started.removeFirst(first) } else { started.removeAll() }
        guard started.count >= window.max else { return .now }
        return .at(started[started.count - window.max] + length)
    }

    private func start(_ now: ContinuousClock.Instant) {
        inFlight += 1
        if window != nil || !learned { started.append(now) }
    }

    /// Starts the waiters that may start now, in order; tells those whose deadline or patience comes
    /// first; sets a timer for the rest (or leaves them to the probe's answer).
    private func dispatch() {
        while !waiters.isEmpty {
            let now = clock.now
            switch nextStart(now) {
            case .now:
                let waiter = waiters.removeFirst()
                start(now)
                waiter.continuation.resume(returning: .go)
            case .at(let at):
                waiters.removeAll { waiter in
                    if waiter.deadline < at {
                        waiter.continuation.resume(returning: .pastDeadline)
                        return true
                    }
                    if waiter.patience < at {
                        waiter.continuation.resume(returning: .later(at))
                        return true
                    }
                    return false
                }
                if !waiters.isEmpty { arm(at) }
                return
            case .afterProbe:
                // Those out of patience wait elsewhere, to be let go when the probe answers.
                waiters.removeAll { waiter in
                    guard waiter.patience <= now else { return false }
                    waiter.continuation.resume(returning: waiter.deadline <= now ? .pastDeadline : .later(now))
                    return true
                }
                if let soonest = waiters.map(\.patience).min() { arm(soonest) }
                return
            }
        }
    }

    private func arm(_ at: ContinuousClock.Instant) {
        if let timerAt, timerAt <= at, timer != nil { return }
        timer?.cancel()
        timerAt = at
        timer = Task {
            try? await Task.sleep(until: at, clock: .continuous)
            guard !Task.isCancelled else { return }
            self.timerFired()
        }
    }

    private func timerFired() {
        timer = nil
        timerAt = nil
        dispatch()
    }

    private func cancel(_ id: Int) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: index).continuation.resume(throwing: CancellationError())
    }
}

/// One pacer per installation, made on first use.
final class ConnectionPacers: Sendable {
    private let settings: ConnectionPacer.Settings
    private let pacers = Mutex<[String: ConnectionPacer]>([:])

    init(settings: ConnectionPacer.Settings) {
        self.settings = settings
    }

    func pacer(for installationId: String) -> ConnectionPacer {
        pacers.withLock { pacers in
            if let pacer = pacers[installationId] { return pacer }
            let pacer = ConnectionPacer(settings: settings)
            pacers[installationId] = pacer
            return pacer
        }
    }
}

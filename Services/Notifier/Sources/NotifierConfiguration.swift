import HTTPClient
import Pipeline
import Secrets

public struct NotifierConfiguration: Sendable {
    /// The `notifications` consumer (group `writeback-notifier`) and the control database.
    public var consumer: ConsumerServiceConfiguration
    /// Opens the destinations' sealed signing secrets and headers (`WRITEBACK_ENCRYPTION_KEY`).
    public var secrets: SecretBox
    /// Which destination URLs may be called: public addresses only, unless allowed
    /// (`WRITEBACK_WEBHOOK_URL_ALLOW`); checked again at every attempt and redirect.
    public var guardrail = URLGuard()
    /// Seconds one attempt may take, redirects included (`NOTIFIER_TIMEOUT_SECONDS`, default 15).
    public var timeout: Double = 15
    /// The most bytes of a destination's answer read (`NOTIFIER_MAX_RESPONSE_BYTES`, default 65536); the
    /// rest is not read, and the attempt counts by its status.
    public var maxResponseBytes = 64 << 10
    /// Attempts under way at once, over all destinations (`NOTIFIER_MAX_IN_FLIGHT`, default 512: libcurl
    /// runs them on one thread, and an attempt waiting for an answer costs a socket).
    public var maxInFlight = 512
    /// Attempts under way at once to one destination (`NOTIFIER_MAX_IN_FLIGHT_PER_DESTINATION`, default 32),
    /// so that a slow destination holds at most this many of `maxInFlight`.
    public var maxInFlightPerDestination = 32
    /// Attempts under way at once for one project (`NOTIFIER_MAX_IN_FLIGHT_PER_PROJECT`, default 128), so
    /// that one project's slow destinations leave the rest to the others.
    public var maxInFlightPerProject = 128
    /// When a delivery that failed in a way worth trying again is tried again.
    public var schedule = RetrySchedule.standard
    /// A destination whose every attempt failed for this long is disabled
    /// (`NOTIFIER_DISABLE_AFTER_SECONDS`, default 432000: five days).
    public var disableAfter: Double = 432_000
    /// How long an event and its deliveries and attempts are kept once none of its deliveries is
    /// pending (`NOTIFIER_RETENTION_DAYS`, default 30); looked for every tenth of it, at most every 10
    /// minutes and at least every second.
    public var retention: Double = 30 * 86_400
    /// How often the deliveries due are looked for when nothing wakes the notifier
    /// (`NOTIFIER_POLL_MS`, default 500).
    public var pollInterval: Duration = .milliseconds(500)

    public init(consumer: ConsumerServiceConfiguration, secrets: SecretBox) {
        self.consumer = consumer
        self.secrets = secrets
    }
}

/// The waits before the attempts after the first: `NOTIFIER_RETRY_SCHEDULE`, seconds separated by commas.
/// The default is Standard Webhooks' own: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — eight attempts over
/// about 27.6 hours. Waits of a minute or more are spread by up to a tenth, so that the deliveries of
/// one outage do not all come back at the same second.
public struct RetrySchedule: Sendable, Equatable {
    public var delays: [Double]

    public static let standard = RetrySchedule(delays: [5, 300, 1800, 7200, 18000, 36000, 36000])

    public init(delays: [Double]) {
        self.delays = delays
    }

    /// Reads `5,300,1800`; nil when it is not a list of non-negative numbers.
    public init?(text: String) {
        let parts = text.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, parts.allSatisfy({ ($0 ?? -1) >= 0 }) else { return nil }
        delays = parts.compactMap { $0 }
    }

    /// The wait after the `attempt`-th failed attempt (1: the first), or nil when none is left.
    public func delay(afterAttempt attempt: Int) -> Double? {
        guard attempt >= 1, attempt <= delays.count else { return nil }
        let delay = delays[attempt - 1]
        return delay >= 60 ? delay * Double.random(in: 0.9...1.0) : delay
    }
}

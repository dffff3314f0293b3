import Metrics
import Synchronization

/// Counters and timers made once per label and dimensions, then reused. Making one asks the metrics
/// backend for it each time (its name checked, a lock taken, its series looked up): about a microsecond,
/// for each of the few a write counts in each process. The process's registry is made the backend
/// before the first is made, so that none is kept bound to swift-metrics' no-op default (a test process
/// that reaches a meter gets that registry too, and cannot bootstrap another backend).
public enum Meters {
    private struct Made {
        var counters: [String: Counter] = [:]
        var timers: [String: Metrics.Timer] = [:]
    }

    private static let made: Mutex<Made> = {
        _ = MetricsEndpoint.registry
        return Mutex(Made())
    }()

    public static func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
        reused(\.counters, label, dimensions) { Counter(label: label, dimensions: dimensions) }
    }

    public static func timer(_ label: String, _ dimensions: [(String, String)] = []) -> Metrics.Timer {
        reused(\.timers, label, dimensions) { Metrics.Timer(label: label, dimensions: dimensions) }
    }

    /// The meter made for the label and dimensions, made now if none was. The key is the label and
    /// each dimension, apart by a byte no label or value holds.
    private static func reused<Meter: Sendable>(
        _ kind: WritableKeyPath<Made, [String: Meter]>, _ label: String, _ dimensions: [(String, String)], make: () -> Meter
    ) -> Meter {
        var key = label
        for (name, value) in dimensions { key += "\u{1F}\(name)\u{1F}\(value)" }
        return made.withLock { made in
            if let meter = made[keyPath: kind][key] { return meter }
            let meter = make()
            made[keyPath: kind][key] = meter
            return meter
        }
    }
}

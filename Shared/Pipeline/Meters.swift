import Metrics
import Synchronization

/// Counters and timers made once per label and dimensions, then reused. Making one asks the metrics
/// backend for it each time (its name checked, a lock taken, its series looked up): about a microsecond,
/// for each of the few a write counts in each process. The process's registry is made the backend
/// before the first is made, so that none is kept bound to swift-metrics' no-op default (a test process
/// that reaches a meter gets that registry too, and cannot bootstrap another backend).
public enum Meters {
    private static let counters: Mutex<[String: Counter]> = {
        _ = MetricsEndpoint.registry
        return Mutex([:])
    }()
    private static let timers: Mutex<[String: Metrics.Timer]> = {
        _ = MetricsEndpoint.registry
        return Mutex([:])
    }()

    public static func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
        let key = key(label, dimensions)
        return counters.withLock { cache in
            if let counter = cache[key] { return counter }
            let counter = Counter(label: label, dimensions: dimensions)
            cache[key] = counter
            return counter
        }
    }

    public static func timer(_ label: String, _ dimensions: [(String, String)] = []) -> Metrics.Timer {
        let key = key(label, dimensions)
        return timers.withLock { cache in
            if let timer = cache[key] { return timer }
            let timer = Metrics.Timer(label: label, dimensions: dimensions)
            cache[key] = timer
            return timer
        }
    }

    /// The label and each dimension, apart by a byte no label or value holds.
    private static func key(_ label: String, _ dimensions: [(String, String)]) -> String {
        var key = label
        for (name, value) in dimensions { key += "\u{1F}\(name)\u{1F}\(value)" }
        return key
    }
}

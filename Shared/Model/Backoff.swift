/// Waits that double from `initial` up to `ceiling` seconds, with the lower half random when `jittered`
/// (so that what failed together does not come back together).
public struct Backoff: Sendable, Equatable {
    public var initial: Double
    public var ceiling: Double
    public var jittered: Bool

    public init(initial: Double, ceiling: Double, jittered: Bool = false) {
        self.initial = initial
        self.ceiling = ceiling
        self.jittered = jittered
    }

    /// The wait after the `attempt`th failure (1 for the first).
    public func delay(after attempt: Int) -> Double {
        var wait = initial
        for _ in 1..<max(1, attempt) where wait < ceiling { wait *= 2 }
        wait = min(ceiling, wait)
        return jittered ? wait / 2 + Double.random(in: 0...(wait / 2)) : wait
    }
}

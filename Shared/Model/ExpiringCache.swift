import Foundation
import Synchronization

/// Values kept for a short time, so that data read on every request (API keys, integrations,
/// installations) is not read from the database each time. A change to that data takes effect within
/// `lifetime`. A `lifetime` of zero keeps nothing.
public final class ExpiringCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Entry {
        var value: Value
        var expires: ContinuousClock.Instant
    }

    private let entries = Mutex<[Key: Entry]>([:])
    private let lifetime: Duration
    private let capacity: Int

    public init(lifetime: Duration, capacity: Int = 10_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// Forgets one value.
    public func remove(_ key: Key) {
        entries.withLock { _ = $0.removeValue(forKey: key) }
    }

    /// Forgets every value.
    public func removeAll() {
        entries.withLock { $0.removeAll() }
    }

    /// Replaces a value (after the caller changed it at its source).
    public func set(_ value: Value, for key: Key) {
        guard lifetime > .zero else { return }
        entries.withLock { $0[key] = Entry(value: value, expires: ContinuousClock.now + lifetime) }
    }

    /// The cached value, or the one `load` finds (kept if it is not nil).
    public func value(for key: Key, load: () async throws -> Value?) async rethrows -> Value? {
        let now = ContinuousClock.now
        if let entry = entries.withLock({ $0[key] }), entry.expires > now { return entry.value }
        guard let value = try await load() else { return nil }
        guard lifetime > .zero else { return value }
        entries.withLock { entries in
            if entries.count >= capacity { entries = entries.filter { $0.value.expires > now } }
            if entries.count < capacity { entries[key] = Entry(value: value, expires: now + lifetime) }
        }
        return value
    }
}

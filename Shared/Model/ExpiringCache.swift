import Foundation
import Synchronization

/// Values kept for a short time, so that data read on every request (API keys, integrations,
/// installations) is not read from the database each time. A change to that data takes effect within
/// `lifetime`. A `lifetime` of zero keeps nothing.
///
/// A key is loaded once however many ask for it at the same time: those that come while its load runs
/// wait for that load. A value asked for in the last quarter of its lifetime is loaded again in the
/// background while it is still answered, so a key in steady use never expires under its users and
/// none of them waits for the database at the turn of its lifetime (a load that fails leaves the value
/// until it expires). What `set`, `remove` and `removeAll` change is never undone by a load that was
/// running when they were called: its result is not kept.
public final class ExpiringCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private struct Entry {
        /// nil while the key's first load runs.
        var value: Value?
        var expires: ContinuousClock.Instant
        /// From when an answer of `value` starts a load of the key in the background.
        var renews: ContinuousClock.Instant
        /// The load running for this key, and its number (a finished load is kept only if it is still
        /// the entry's).
        var loading: Task<Value?, any Error>?
        var load = 0
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var loads = 0
    }

    private enum Found {
        case value(Value)
        case loading(Task<Value?, any Error>)
    }

    private let state = Mutex(State())
    private let lifetime: Duration
    private let capacity: Int

    public init(lifetime: Duration, capacity: Int = 10_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    /// Forgets one value.
    public func remove(_ key: Key) {
        state.withLock { _ = $0.entries.removeValue(forKey: key) }
    }

    /// Forgets every value.
    public func removeAll() {
        state.withLock { $0.entries.removeAll() }
    }

    /// Replaces a value (after the caller changed it at its source).
    public func set(_ value: Value, for key: Key) {
        guard lifetime > .zero else { return }
        let now = ContinuousClock.now
        state.withLock { $0.entries[key] = fresh(value, at: now) }
    }

    /// The cached value, or the one `load` finds (kept if it is not nil).
    public func value(for key: Key, load: @escaping @Sendable () async throws -> Value?) async throws -> Value? {
        guard lifetime > .zero else { return try await load() }
        let now = ContinuousClock.now
        let found: Found? = state.withLock { state in
            if var entry = state.entries[key] {
                if let value = entry.value, entry.expires > now {
                    if entry.loading == nil && entry.renews <= now {
                        (entry.loading, entry.load) = start(key, load: load, in: &state)
                        state.entries[key] = entry
                    }
                    return .value(value)
                }
                if let loading = entry.loading { return .loading(loading) }
            }
            if state.entries.count >= capacity {
                state.entries = state.entries.filter { $0.value.expires > now || $0.value.loading != nil }
                guard state.entries.count < capacity else { return nil }
            }
            let (loading, number) = start(key, load: load, in: &state)
            state.entries[key] = Entry(value: nil, expires: now, renews: now, loading: loading, load: number)
            return .loading(loading)
        }
        switch found {
        case .value(let value): return value
        case .loading(let loading): return try await loading.value
        case nil: return try await load()  // full of keys in use: not kept
        }
    }

    private func fresh(_ value: Value, at now: ContinuousClock.Instant) -> Entry {
        Entry(value: value, expires: now + lifetime, renews: now + lifetime * 0.75)
    }

    /// Starts a load of `key` (under the lock); its result replaces the entry only if the entry is still
    /// the one this load was started for, and lives from when the load started (what it read may be as
    /// old as that).
    private func start(
        _ key: Key, load: @escaping @Sendable () async throws -> Value?, in state: inout State
    ) -> (Task<Value?, any Error>, Int) {
        state.loads += 1
        let number = state.loads
        let started = ContinuousClock.now
        let task = Task {
            do {
                let value = try await load()
                finished(key, number, started: started, value.map { .success($0) })
                return value
            } catch {
                finished(key, number, started: started, .failure(error))
                throw error
            }
        }
        return (task, number)
    }

    /// A load's end: a value is kept, nil forgets the key, a failure leaves a value still valid as it is
    /// (and the next background load waits for half of what is left of its life).
    private func finished(_ key: Key, _ number: Int, started: ContinuousClock.Instant, _ result: Result<Value, any Error>?) {
        let now = ContinuousClock.now
        state.withLock { state in
            guard var entry = state.entries[key], entry.load == number, entry.loading != nil else { return }
            switch result {
            case .success(let value):
                state.entries[key] = fresh(value, at: started)
            case .failure where entry.value != nil && entry.expires > now:
                entry.loading = nil
                entry.renews = now + (entry.expires - now) / 2
                state.entries[key] = entry
            case .failure, nil:
                state.entries.removeValue(forKey: key)
            }
        }
    }
}

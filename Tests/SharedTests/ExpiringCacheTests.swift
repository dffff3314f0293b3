import Shared
import Synchronization
import Testing

@Suite("Expiring cache")
struct ExpiringCacheTests {
    /// A loader that counts its calls and answers what `answer` holds, after `gate` opens.
    final class Loader: Sendable {
        let calls = Atomic<Int>(0)
        let answer: Mutex<String?>
        let gate = Gate()

        init(_ answer: String?) { self.answer = Mutex(answer) }

        @Sendable func load() async throws -> String? {
            calls.add(1, ordering: .relaxed)
            await gate.passed()
            return answer.withLock { $0 }
        }
    }

    /// Closed until `open()`: whoever waits in `passed()` waits for it.
    final class Gate: Sendable {
        private let state = Mutex<(open: Bool, waiting: [CheckedContinuation<Void, Never>])>((true, []))

        func close() { state.withLock { $0.open = false } }

        func open() {
            let waiting = state.withLock { state in
                state.open = true
                defer { state.waiting = [] }
                return state.waiting
            }
            for continuation in waiting { continuation.resume() }
        }

        func passed() async {
            await withCheckedContinuation { continuation in
                let open = state.withLock { state in
                    if !state.open { state.waiting.append(continuation) }
                    return state.open
                }
                if open { continuation.resume() }
            }
        }

        var waiting: Int { state.withLock { $0.waiting.count } }
    }

    /// Polls until `condition` holds (at most 5 s).
    func eventually(_ condition: () -> Bool) async throws {
        for _ in 0..<500 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
    }

    /// A cache of lifetime 4 s whose key holds `loader`'s first answer and, past three quarters of its
    /// life, is being loaded again in the background (held at the loader's gate, to answer `next`).
    func loadingBehind(_ loader: Loader, next: String) async throws -> ExpiringCache<String, String> {
        let cache = ExpiringCache<String, String>(lifetime: .seconds(4))
        #expect(try await cache.value(for: "key", load: loader.load) == "old")
        loader.answer.withLock { $0 = next }
        loader.gate.close()
        try await Task.sleep(for: .milliseconds(3200))
        // Past three quarters (and 800 ms before the end, room for a slow machine): the old value,
        // without waiting for the load it starts.
        #expect(try await cache.value(for: "key", load: loader.load) == "old")
        try await eventually { loader.gate.waiting == 1 }
        return cache
    }

    @Test("requests that miss the same key at the same time wait for one load of it")
    func oneLoadForManyMisses() async throws {
        let cache = ExpiringCache<String, String>(lifetime: .seconds(60))
        let loader = Loader("project-1")
        loader.gate.close()
        let answers = Task {
            try await withThrowingTaskGroup(of: String?.self) { group in
                for _ in 0..<20 { group.addTask { try await cache.value(for: "key", load: loader.load) } }
                return try await group.reduce(into: [String?]()) { $0.append($1) }
            }
        }
        try await eventually { loader.gate.waiting == 1 }
        try await Task.sleep(for: .milliseconds(50))
        loader.gate.open()
        let values = try await answers.value
        #expect(values == Array(repeating: "project-1", count: 20))
        #expect(loader.calls.load(ordering: .relaxed) == 1)
        // Kept: the next request does not load.
        #expect(try await cache.value(for: "key", load: loader.load) == "project-1")
        #expect(loader.calls.load(ordering: .relaxed) == 1)
    }

    @Test("a value in the last quarter of its lifetime is answered at once and loaded again behind it")
    func renewsBeforeExpiry() async throws {
        let loader = Loader("old")
        let cache = try await loadingBehind(loader, next: "new")
        #expect(loader.calls.load(ordering: .relaxed) == 2)
        // Asked again while that load runs: still the old value, and no second load.
        #expect(try await cache.value(for: "key", load: loader.load) == "old")
        #expect(loader.calls.load(ordering: .relaxed) == 2)
        loader.gate.open()
        // The renewed value replaces the old one once its load ends; asking meanwhile loads nothing more.
        var value: String?
        for _ in 0..<100 {
            value = try await cache.value(for: "key", load: loader.load)
            if value == "new" { break }
            try await Task.sleep(for: .milliseconds(2))
        }
        #expect(value == "new")
        #expect(loader.calls.load(ordering: .relaxed) == 2)
    }

    @Test("a value past its lifetime is not answered: the request waits for a new load")
    func expiredIsLoaded() async throws {
        let cache = ExpiringCache<String, String>(lifetime: .milliseconds(100))
        let loader = Loader("old")
        #expect(try await cache.value(for: "key", load: loader.load) == "old")
        loader.answer.withLock { $0 = "new" }
        try await Task.sleep(for: .milliseconds(150))
        #expect(try await cache.value(for: "key", load: loader.load) == "new")
        #expect(loader.calls.load(ordering: .relaxed) == 2)
    }

    @Test("a key removed while its load runs is not put back by that load")
    func removalWins() async throws {
        let loader = Loader("old")
        let cache = try await loadingBehind(loader, next: "old")
        // The key's data changes at its source, and the cache is told.
        cache.remove("key")
        loader.answer.withLock { $0 = "changed" }
        let after = Loader("changed")
        #expect(try await cache.value(for: "key", load: after.load) == "changed")
        loader.gate.open()
        try await Task.sleep(for: .milliseconds(50))
        #expect(try await cache.value(for: "key", load: after.load) == "changed")
        #expect(after.calls.load(ordering: .relaxed) == 1)
    }

    @Test("a key whose load finds nothing or fails is not kept")
    func nothingKept() async throws {
        let cache = ExpiringCache<String, String>(lifetime: .seconds(60))
        let missing = Loader(nil)
        #expect(try await cache.value(for: "key", load: missing.load) == nil)
        #expect(try await cache.value(for: "key", load: missing.load) == nil)
        #expect(missing.calls.load(ordering: .relaxed) == 2)
        struct Refused: Error {}
        await #expect(throws: Refused.self) { try await cache.value(for: "other") { throw Refused() } }
        #expect(try await cache.value(for: "other") { "found" } == "found")
    }
}

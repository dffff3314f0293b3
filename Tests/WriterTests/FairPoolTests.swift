import Foundation
import Synchronization
import Testing
import ThreadPool

/// The thread pool that provider calls run on, shared between connections.
@Suite("Fair thread pool")
struct FairPoolTests {
    /// What ran, in the order it started, and the most jobs of each share at once.
    final class Record: Sendable {
        private let state = Mutex<(running: [String: Int], most: [String: Int], started: [String])>(([:], [:], []))

        func start(_ share: String, _ label: String) {
            state.withLock { state in
                state.running[share, default: 0] += 1
                state.most[share] = max(state.most[share] ?? 0, state.running[share]!)
                state.started.append(label)
            }
        }

        func end(_ share: String) { state.withLock { $0.running[share]! -= 1 } }
        var started: [String] { state.withLock { $0.started } }
        func most(_ share: String) -> Int { state.withLock { $0.most[share] ?? 0 } }
    }

    @Test("a share with nothing running starts before the jobs another share has queued, and no share takes every thread")
    func fairness() async throws {
        let pool = ThreadConfinedPool<Int>(name: "fair-test", size: 8, makeResource: { 0 }, isBroken: { _ in false })
        defer { pool.shutdown() }
        let record = Record()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for number in 0..<40 {
                group.addTask {
                    try await pool.run(share: "busy") { _ in
                        record.start("busy", "busy-\(number)")
                        Thread.sleep(forTimeInterval: 0.2)
                        record.end("busy")
                    }
                }
            }
            try await Task.sleep(for: .milliseconds(50))
            group.addTask {
                try await pool.run(share: "quiet") { _ in
                    record.start("quiet", "quiet")
                    record.end("quiet")
                }
            }
            try await group.waitForAll()
        }
        let quiet = try #require(record.started.firstIndex(of: "quiet"))
        #expect(quiet <= 6, "the quiet share started after \(quiet) jobs of the busy one")
        #expect(record.most("busy") <= 6, "one share ran \(record.most("busy")) of 8 threads at once")
    }
}

import Pipeline
import Synchronization
import Testing

@testable import Writer

@Suite("Group commit")
struct GroupCommitTests {
    @Test("what many tasks submit at once goes out in few calls, and each gets its own answer")
    func gathers() async throws {
        let calls = Mutex<[Int]>([])
        let commit = GroupCommit<Int, Int>(limit: 50) { items in
            calls.withLock { $0.append(items.count) }
            try await Task.sleep(for: .milliseconds(20))
            return items.map { $0 * 2 }
        }
        let answers = try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            for number in 0..<200 { group.addTask { (number, try await commit.submit(number)) } }
            var answers: [Int: Int] = [:]
            for try await (number, answer) in group { answers[number] = answer }
            return answers
        }
        #expect(answers.count == 200)
        #expect(answers.allSatisfy { $0.value == $0.key * 2 })
        let sizes = calls.withLock { $0 }
        #expect(sizes.reduce(0, +) == 200)
        #expect(sizes.count < 40, "\(sizes.count) calls for 200 submissions")
        #expect(sizes.allSatisfy { $0 <= 50 })
    }

    @Test("a failed call fails the submissions in it, and the next call goes on")
    func failure() async throws {
        struct Refused: Error {}
        let first = Mutex(true)
        let commit = GroupCommit<Int, Int>(limit: 10) { items in
            if first.withLock({ let was = $0; $0 = false; return was }) { throw Refused() }
            return items
        }
        await #expect(throws: Refused.self) { try await commit.submit(1) }
        #expect(try await commit.submit(2) == 2)
    }

    @Test("under load a flush starts at most every interval, and a submission after a quiet time is flushed at once")
    func interval() async throws {
        let starts = Mutex<[ContinuousClock.Instant]>([])
        let commit = GroupCommit<Int, Int>(limit: 1_000, interval: .milliseconds(50), burst: 1) { items in
            starts.withLock { $0.append(.now) }
            // A database round trip: what arrives meanwhile gathers behind it.
            try await Task.sleep(for: .milliseconds(2))
            return items
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for round in 0..<10 {
                for number in 0..<20 {
                    group.addTask {
                        let answer = try await commit.submit(round * 100 + number)
                        #expect(answer == round * 100 + number)
                    }
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            try await group.waitForAll()
        }
        let flushed = starts.withLock { $0 }
        let gaps = zip(flushed.dropFirst(), flushed.dropFirst(2)).map { $1 - $0 }
        #expect(flushed.count <= 5, "\(flushed.count) flushes for 200 submissions over 100 ms")
        #expect(gaps.allSatisfy { $0 >= .milliseconds(49) }, "after the first, flushes are paced: \(gaps)")
        try await Task.sleep(for: .milliseconds(100))
        let quiet = ContinuousClock.now
        let answer = try await commit.submit(7)
        #expect(answer == 7)
        #expect(ContinuousClock.now - quiet < .milliseconds(40), "after a quiet time the flush does not wait")
    }

    @Test("one client's submissions one after another are never held back: nothing would join them")
    func loneClient() async throws {
        let commit = GroupCommit<Int, Int>(limit: 1_000, interval: .milliseconds(200), burst: 1) { $0 }
        let began = ContinuousClock.now
        for number in 0..<10 {
            let answer = try await commit.submit(number)
            #expect(answer == number)
        }
        #expect(ContinuousClock.now - began < .milliseconds(100), "ten flushes one after another did not wait for the bucket")
    }
}

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
}

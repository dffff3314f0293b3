import Foundation
import Kafka
import Logging
import Postgres
import Shared
import TestSupport
import Testing

@testable import Writer

/// The writer's rows, many writes' at a time, on a real control database.
@Suite("Writer journal")
struct WriterJournalTests {
    let logger = Logger(label: "journal-tests")

    func request(_ operationId: String, record: String = "r1") -> WriteRequestMessage {
        WriteRequestMessage(
            operationId: operationId, projectId: UUID().uuidString.lowercased(), integrationId: UUID().uuidString.lowercased(),
            installationId: "6f1d0a52-6a63-4b0d-9a35-2f4a5f3e9c11", groupRef: "g", provider: .salesforce, objectName: "contact",
            type: .update, mode: .asynchronous, record: ["LastName": "Lovelace"], recordId: record, associations: nil, replyTo: nil,
            acceptedAt: Timestamp.now())
    }

    func result(_ request: WriteRequestMessage) -> WriteResultMessage {
        WriteResultMessage(
            request: request, success: true, recordId: request.recordId, data: ["LastName": "Lovelace"], error: nil, providerStatus: 204,
            possiblyDuplicated: false, attempts: 1, completedAt: Timestamp.now(), version: Timestamp.microsNow())
    }

    func hold(_ request: WriteRequestMessage, seq: Int64, began: Bool = false, calls: Int = 0) -> HeldWrites.Hold {
        HeldWrites.Hold(
            request: request, bytes: (try? JSONCoding.encodeString(request)) ?? "", lane: LaneKey(
                installationId: request.installationId, partition: TopicPartition(topic: "write-requests", partition: 3)),
            seq: seq, order: WriteOrder(request), dueIn: 0, carried: Carried(calls: calls), began: began)
    }

    func id() -> String { UUID().uuidString.lowercased() }

    @Test("a provider's answer holding NUL is recorded, with U+FFFD in its place, rather than refused for ever")
    func nulInAnswer() async throws {
        let database = try await freshControlDatabase("journal_nul", connections: 2)
        defer { database.shutdown() }
        let journal = WriterJournal(database: database, interval: .zero, logger: logger)
        let operation = id()
        var answer = result(request(operation))
        answer.data = ["LastName": "Love\u{0}lace", "Odd\u{0}Key": "x", "Path": "C:\\u0000 is text"]
        _ = try await journal.begin([operation])
        let recorded = try Recorded(answer)
        #expect(try JSONCoding.decode(WriteResultMessage.self, from: recorded.bytes).data?["LastName"] == "Love\u{FFFD}lace",
                "the bytes published and stored are the replaced ones")
        #expect(recorded.result.data?["LastName"] == "Love\u{FFFD}lace" && recorded.result.data?["Odd\u{FFFD}Key"] == "x")
        #expect(recorded.result.data?["Path"] == "C:\\u0000 is text", "text that only looks like the escape is kept")
        try await journal.complete([recorded])
        let starts = try await journal.begin([operation])
        guard case .completed(let stored) = starts[0] else { Issue.record("\(starts[0])"); return }
        #expect(stored.data?["LastName"] == "Love\u{FFFD}lace")
    }

    @Test("writes begun together each learn how they start: new, held, interrupted, or answered before with the stored result")
    func starts() async throws {
        let database = try await freshControlDatabase("journal", connections: 2)
        defer { database.shutdown() }
        let journal = WriterJournal(database: database, interval: .zero, logger: logger)
        let (fresh, crashed, answered, held) = (id(), id(), id(), id())
        // What earlier deliveries left: one in flight (its writer crashed), one completed, one held after it began.
        _ = try await journal.begin([crashed, answered, held])
        try await journal.complete([try Recorded(result(request(answered)))])
        #expect(try await journal.hold(hold(request(held), seq: 4, began: true)))

        let starts = try await journal.begin([fresh, crashed, answered, held])
        guard case .fresh = starts[0] else { Issue.record("\(starts[0])"); return }
        guard case .interrupted(let deliveries) = starts[1] else { Issue.record("\(starts[1])"); return }
        #expect(deliveries == 1)
        guard case .completed(let stored) = starts[2] else { Issue.record("\(starts[2])"); return }
        #expect(stored.operationId == answered && stored.providerStatus == 204)
        guard case .held = starts[3] else { Issue.record("\(starts[3])"); return }
        let states = try await database.query(
            "SELECT operation_id::text AS id, state, attempts FROM write_attempts ORDER BY operation_id")
        let byId = Dictionary(uniqueKeysWithValues: try states.rows.map { (try $0.string("id"), ($0["state"], $0.int("attempts"))) })
        #expect(byId[crashed]?.0 == "in_flight" && byId[crashed]?.1 == 2, "another delivery counted")
        #expect(byId[held]?.0 == "held", "a repeated message does not take a held write out of the table")

        // The held write itself goes in flight again.
        guard case .held = try await journal.begin(held, held: true) else { Issue.record("not held"); return }
        #expect(try await database.query("SELECT state FROM write_attempts WHERE operation_id = $1::uuid", [held]).first?["state"]
            == "in_flight")
    }

    @Test("what many writes record at once goes in one transaction, and one operation twice in it is applied in order")
    func together() async throws {
        let database = try await freshControlDatabase("journaltogether", connections: 2)
        defer { database.shutdown() }
        let journal = WriterJournal(database: database, interval: .milliseconds(30), logger: logger)
        let operations = (0..<40).map { _ in id() }
        let repeated = operations[0]
        let before = try await database.query("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
            .first?.int("xact_commit") ?? 0
        // Forty writes begin at once, and the first's message twice (a redelivery racing the first).
        let starts = try await withThrowingTaskGroup(of: (String, WriterJournal.Start).self) { group in
            for operation in operations + [repeated] {
                group.addTask { (operation, try await journal.begin(operation)) }
            }
            return try await group.reduce(into: [(String, WriterJournal.Start)]()) { $0.append($1) }
        }
        let ofRepeated = starts.filter { $0.0 == repeated }.map(\.1)
        #expect(ofRepeated.count == 2)
        #expect(ofRepeated.contains { if case .fresh = $0 { true } else { false } })
        #expect(ofRepeated.contains { if case .interrupted = $0 { true } else { false } }, "the second sees the first in flight")
        #expect(starts.filter { $0.0 != repeated }.allSatisfy { if case .fresh = $0.1 { true } else { false } })
        try await journal.complete(try operations.map { try Recorded(result(request($0))) })
        // A moment for the statistics collector.
        try await Task.sleep(for: .milliseconds(700))
        let after = try await database.query("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
            .first?.int("xact_commit") ?? 0
        #expect(after - before <= 8, "\(after - before) transactions for 41 begins and 40 completions")
        #expect(try await database.query("SELECT count(*) AS n FROM write_attempts WHERE state = 'completed'").first?.int("n") == 40)
    }

    @Test("holds: a repeated message of a held operation keeps one row; held again it waits anew; released it is gone")
    func holds() async throws {
        let database = try await freshControlDatabase("journalholds", connections: 2)
        defer { database.shutdown() }
        let journal = WriterJournal(database: database, interval: .zero, logger: logger)
        let first = request(id(), record: "r1")
        let second = request(id(), record: "r2")
        #expect(try await journal.hold(hold(first, seq: 10)))
        #expect(try await journal.hold(hold(second, seq: 11)))
        #expect(try await !journal.hold(hold(first, seq: 12, calls: 3)), "held already: not anew")
        let row = try await database.query(
            "SELECT calls, seq, keys::text AS keys FROM held_writes WHERE operation_id = $1::uuid", [first.operationId]).first
        #expect(row?.int("calls") == 3, "the row carries the most calls")
        #expect(row?.int64("seq") == 10, "and keeps its place")
        #expect(row?["keys"] == "{id:contact/r1}", "it keeps the record it writes, not its operation")
        try await journal.holdAgain([HeldWrites.Again(operationId: second.operationId, dueIn: 60, carried: Carried(calls: 1))])
        let due = try await database.query(
            "SELECT due_at > now() + interval '50 seconds' AS later FROM held_writes WHERE operation_id = $1::uuid", [second.operationId])
        #expect(due.first?.bool("later") == true)
        try await journal.release([first.operationId, second.operationId])
        #expect(try await database.query("SELECT count(*) AS n FROM held_writes").first?.int("n") == 0)
    }

    @Test("a lane's held writes are taken in order: not behind an earlier held write of their record, nor behind a held bulk write of their object")
    func candidates() async throws {
        let database = try await freshControlDatabase("journalcandidates", connections: 2)
        defer { database.shutdown() }
        let journal = WriterJournal(database: database, interval: .zero, logger: logger)
        func held(_ seq: Int64, object: String = "contact", keys: Set<String> = [], barrier: Bool = false) -> (String, HeldWrites.Hold) {
            var made = hold(request(id()), seq: seq)
            made.order = WriteOrder(object: object, keys: keys, barrier: barrier, batchGroup: nil)
            return (made.request.operationId, made)
        }
        let writes = [
            held(1, keys: ["id:contact/r1"]), held(2, keys: ["id:contact/r1"]), held(3), held(4, barrier: true), held(5),
            held(6, object: "account"),
        ]
        _ = try await journal.hold(writes.map(\.1))
        let lane = writes[0].1.lane
        let due = try await HeldWrites(database: database).due(lane, busy: HeldWrites.Busy(), readThrough: 100, limit: 10)
        #expect(due.rows.map(\.seq) == [1, 3, 6], "taken: \(due.rows.map(\.seq))")
        #expect(due.rows.first?.request.operationId == writes[0].0)
        // With the first update of r1 running (busy), its record is occupied: the second still waits for it.
        let busy = HeldWrites.Busy(operations: [writes[0].0], keys: ["id:contact/r1"], objects: ["contact"])
        let next = try await HeldWrites(database: database).due(lane, busy: busy, readThrough: 100, limit: 10)
        #expect(next.rows.map(\.seq) == [3, 6], "taken: \(next.rows.map(\.seq))")
        // Once the bulk write is gone, the write behind it may go.
        try await journal.release([writes[0].0, writes[1].0, writes[2].0, writes[3].0])
        let after = try await HeldWrites(database: database).due(lane, busy: HeldWrites.Busy(), readThrough: 100, limit: 10)
        #expect(after.rows.map(\.seq) == [5, 6], "taken: \(after.rows.map(\.seq))")
    }

    @Test("a lane's held writes are loaded through their indexes in order whatever the table's statistics: no sort of the lane, no scan of the table")
    func candidatesPlan() async throws {
        let database = try await freshControlDatabase("journalplan", connections: 2)
        defer { database.shutdown() }
        let journal = WriterJournal(database: database, interval: .zero, logger: logger)
        // The statistics of an empty table, then a backlog of 3,000 writes of 50 records, a bulk write every 500.
        _ = try await database.query("ANALYZE held_writes")
        let holds = (1...3000).map { seq in
            var made = hold(request(id(), record: "r\(seq % 50)"), seq: Int64(seq))
            made.order = WriteOrder(object: "contact", keys: ["id:contact/r\(seq % 50)"], barrier: seq % 500 == 0, batchGroup: nil)
            return made
        }
        _ = try await journal.hold(holds)
        let held = HeldWrites(database: database)
        let lane = holds[0].lane
        let plan = try await HeldWrites.inLaneOrder(
            database, "EXPLAIN " + HeldWrites.candidates("s.due_at <= now()"),
            held.parameters(lane, busy: HeldWrites.Busy(), readThrough: 5000, limit: 500))
        let text = plan.values.compactMap { $0.first ?? nil }.joined(separator: "\n")
        #expect(!text.contains("Seq Scan"), "\(text)")
        #expect(!text.contains("Sort"), "\(text)")
        // Each record's first write, all before the first bulk write, in order.
        let due = try await held.due(lane, busy: HeldWrites.Busy(), readThrough: 5000, limit: 500)
        #expect(due.rows.map(\.seq) == Array(1...50))
    }
}

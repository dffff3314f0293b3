import Logging
import Pipeline
import Postgres
import Shared
import Synchronization

/// The writer's rows in the control database: a row per request in `write_attempts` (marked in flight
/// before the provider call, completed with the result after it, so a redelivered request is never sent
/// again once answered) and the writes that wait in `held_writes`. What the writes running at about the
/// same time record goes to the database together: one statement per kind for all of them, in one round
/// trip and one transaction, at most every `interval` under load (`GroupCommit`). A set the database
/// refuses is split until the refused entry is alone; that one fails only its own write.
struct WriterJournal: Sendable {
    typealias Statement = (sql: String, parameters: [String?])

    /// What one write (or one group of auto-batched writes) records.
    enum Entry: Sendable {
        /// Mark these requests in flight (`held`: the callers are the held writes themselves).
        case begin([String], held: Bool)
        /// Store each request's result.
        case complete([(operationId: String, result: String)])
        /// Hold writes.
        case hold([HeldWrites.Hold])
        /// Hold again writes taken from the table.
        case holdAgain([HeldWrites.Again])
        /// Forget held writes whose results are published.
        case release([String])

        var operations: [String] {
            switch self {
            case .begin(let ids, _), .release(let ids): ids
            // Closures rather than key paths: a key path over a hold copies the whole hold.
            case .complete(let results): results.map { $0.operationId }
            case .hold(let holds): holds.map { $0.request.operationId }
            case .holdAgain(let again): again.map { $0.operationId }
            }
        }
    }

    enum Answer: Sendable {
        case started([Start])
        /// Per hold: held anew (false: it was held already, by an earlier message of its operation).
        case held([Bool])
        case done
    }

    /// How a request's attempt starts.
    enum Start: Sendable {
        /// First delivery: go ahead.
        case fresh
        /// Held before (its wait was stored, no call in flight): go ahead with what it carries, when
        /// taken from the held writes.
        case held
        /// Delivered before, and that delivery's provider call may have happened (crash while in flight).
        case interrupted(attempts: Int)
        /// Answered before: publish this result again, call nothing.
        case completed(WriteResultMessage)
    }

    private let commit: GroupCommit<Entry, Result<Answer, PostgresError>>

    init(database: PostgresPool, interval: Duration, logger: Logger) {
        commit = GroupCommit(limit: 500, interval: interval) { entries in
            let refusals = Mutex<[Int: PostgresError]>([:])
            let answers = try await database.apply(
                together: Self.plan(entries), statements: { Self.statements($0) }, answers: { try Self.answers($0, $1) }, logger: logger
            ) { item, error in
                refusals.withLock { $0[item.index] = error }
            }
            return answers.enumerated().map { index, answer in
                answer.map { .success($0) } ?? .failure(refusals.withLock { $0[index] } ?? PostgresError(.query, "refused"))
            }
        }
    }

    private func submit(_ entry: Entry) async throws -> Answer {
        try await commit.submit(entry).get()
    }

    // MARK: what the writes record

    /// Marks requests in flight: a new row, a held one taken again, or one more delivery of a row still
    /// in flight; a completed row is left as it is and its result returned. `held`: the callers are the
    /// held writes themselves (only then does a held row go in flight again).
    func begin(_ operationIds: [String], held: Bool = false) async throws -> [Start] {
        guard case .started(let starts) = try await submit(.begin(operationIds, held: held)) else {
            throw PostgresError(.decoding, "write_attempts answered no start")
        }
        return starts
    }

    func begin(_ operationId: String, held: Bool = false) async throws -> Start {
        try await begin([operationId], held: held)[0]
    }

    func complete(_ results: [Recorded]) async throws {
        guard !results.isEmpty else { return }
        _ = try await submit(.complete(results.map { ($0.result.operationId, String(decoding: $0.bytes, as: UTF8.self)) }))
    }

    /// Holds a write; answers whether it was held anew (false: a repeated message of a held operation).
    func hold(_ hold: HeldWrites.Hold) async throws -> Bool {
        try await self.hold([hold]).first ?? false
    }

    /// Holds writes, each operation at most once; answers for each whether it was held anew.
    func hold(_ holds: [HeldWrites.Hold]) async throws -> [Bool] {
        guard case .held(let inserted) = try await submit(.hold(holds)) else { return holds.map { _ in false } }
        return inserted
    }

    func holdAgain(_ again: [HeldWrites.Again]) async throws {
        guard !again.isEmpty else { return }
        _ = try await submit(.holdAgain(again))
    }

    func release(_ operationIds: [String]) async throws {
        guard !operationIds.isEmpty else { return }
        _ = try await submit(.release(operationIds))
    }

    // MARK: statements

    /// An entry with its place in a flush: its statements run in its round (an operation appears at
    /// most once in a round, as a statement may touch a row only once; rounds run in the order their
    /// entries came), with the other entries of its round and kind. Any part of a planned flush is
    /// planned as well, so a set the database refuses is split without planning it again.
    struct Planned: Sendable {
        var index: Int
        var entry: Entry
        var round: Int
        var kind: Kind
    }

    static func plan(_ entries: [Entry]) -> [Planned] {
        var round = 0
        var seen: Set<String> = []
        return entries.enumerated().map { index, entry in
            let operations = entry.operations
            if operations.contains(where: seen.contains) {
                round += 1
                seen = []
            }
            seen.formUnion(operations)
            return Planned(index: index, entry: entry, round: round, kind: Kind(entry))
        }
    }

    /// The kinds of entry, in the order their statements run within a round.
    enum Kind: Int, CaseIterable, Hashable, Sendable {
        case begin, beginHeld, complete, hold, holdAgain, release

        init(_ entry: Entry) {
            switch entry {
            case .begin(_, let held): self = held ? .beginHeld : .begin
            case .complete: self = .complete
            case .hold: self = .hold
            case .holdAgain: self = .holdAgain
            case .release: self = .release
            }
        }
    }

    /// The planned entries by statement, in the order the statements run.
    static func groups(_ planned: [Planned]) -> [(kind: Kind, members: [Planned])] {
        var groups: [Int: [Planned]] = [:]
        for item in planned { groups[item.round * Kind.allCases.count + item.kind.rawValue, default: []].append(item) }
        return groups.keys.sorted().map { key in (Kind(rawValue: key % Kind.allCases.count)!, groups[key]!) }
    }

    static func statements(_ planned: [Planned]) -> [Statement] {
        groups(planned).map { kind, members -> Statement in
            switch kind {
            case .begin, .beginHeld:
                return WriteAttemptRows.begin(members.flatMap(\.entry.operations), held: kind == .beginHeld)
            case .complete:
                return WriteAttemptRows.complete(members.flatMap { item -> [(operationId: String, result: String)] in
                    if case .complete(let results) = item.entry { return results }
                    return []
                })
            case .hold:
                return HeldWrites.holdStatement(members.flatMap { item -> [HeldWrites.Hold] in
                    if case .hold(let holds) = item.entry { return holds }
                    return []
                })
            case .holdAgain:
                return HeldWrites.holdAgainStatement(members.flatMap { item -> [HeldWrites.Again] in
                    if case .holdAgain(let again) = item.entry { return again }
                    return []
                })
            case .release:
                return HeldWrites.releaseStatement(members.flatMap(\.entry.operations))
            }
        }
    }

    /// Each planned entry's answer from the rows of `statements(planned)`, in the same order.
    static func answers(_ planned: [Planned], _ rows: [PostgresRows]) throws -> [Answer] {
        var answers: [Int: Answer] = [:]
        for ((kind, members), answered) in zip(groups(planned), rows) {
            switch kind {
            case .begin, .beginHeld:
                let starts = try WriteAttemptRows.starts(answered)
                for item in members {
                    answers[item.index] = .started(try item.entry.operations.map { id in
                        guard let start = starts[id] else { throw PostgresError(.decoding, "write_attempts answered no row for \(id)") }
                        return start
                    })
                }
            case .hold:
                // Held anew: the first of an operation's holds in the statement, when its row is new.
                var inserted = Set(answered.values.compactMap { $0[0] })
                for item in members { answers[item.index] = .held(item.entry.operations.map { inserted.remove($0) != nil }) }
            case .complete, .holdAgain, .release:
                break
            }
        }
        return planned.map { answers[$0.index] ?? .done }
    }
}

/// A write's result with its JSON, encoded once: stored as its attempt's result and published as it is.
struct Recorded: Sendable {
    var result: WriteResultMessage
    var bytes: [UInt8]

    init(_ result: WriteResultMessage) throws {
        // A provider's answer may hold NUL, which the journal's jsonb (and the operations service's)
        // cannot store: stored as it is, the result would be refused, and recorded again, for ever.
        let encoded = try JSONCoding.encode(result)
        bytes = try encoded.storableJSON()
        self.result = bytes == encoded ? result : try JSONCoding.decode(WriteResultMessage.self, from: bytes)
    }
}

/// The SQL of `write_attempts`, a set of requests at a time.
enum WriteAttemptRows {
    /// Marks requests in flight in one statement: a new row each, a held one taken again (when `held`),
    /// or one more delivery of a row still in flight; a completed row is left as it is. Answers, per
    /// request, its state before (the subquery of RETURNING sees the rows as they were before the
    /// statement), its deliveries, its stored result and whether its row is new. The statements of the
    /// journal name the rows they touch by `= ANY` of an array, so that their cached plans read the
    /// primary key whatever the table's size was when they were planned.
    static func begin(_ operationIds: [String], held: Bool) -> WriterJournal.Statement {
        var seen: Set<String> = []
        let unique = operationIds.filter { seen.insert($0).inserted }
        return ("""
            INSERT INTO write_attempts (operation_id, state)
            SELECT id, 'in_flight' FROM unnest($1::uuid[]) AS g(id) ORDER BY id
            ON CONFLICT (operation_id) DO UPDATE SET
                attempts = write_attempts.attempts + CASE WHEN write_attempts.state = 'in_flight' THEN 1 ELSE 0 END,
                state = CASE WHEN write_attempts.state = 'held' AND $2::boolean THEN 'in_flight' ELSE write_attempts.state END,
                started_at = CASE WHEN write_attempts.state = 'in_flight' OR $2::boolean THEN now() ELSE write_attempts.started_at END
            RETURNING operation_id::text AS id, attempts, result::text AS result, (xmax = 0) AS inserted,
                      (SELECT w.state FROM write_attempts w WHERE w.operation_id = write_attempts.operation_id) AS previous
            """, [PostgresArray.literal(unique), held ? "true" : "false"])
    }

    /// Each request's start, by operation id, from the rows of `begin`.
    static func starts(_ rows: PostgresRows) throws -> [String: WriterJournal.Start] {
        var starts: [String: WriterJournal.Start] = [:]
        for row in rows.rows {
            let id = try row.string("id")
            if row.bool("inserted") == true {
                starts[id] = .fresh
            } else if row["previous"] == "completed", let text = row["result"] {
                starts[id] = .completed(try JSONCoding.decode(WriteResultMessage.self, from: text))
            } else if row["previous"] == "held" {
                starts[id] = .held
            } else {
                // In flight before (or inserted by another at the same moment): a call may have happened.
                starts[id] = .interrupted(attempts: max(1, (row.int("attempts") ?? 2) - 1))
            }
        }
        return starts
    }

    /// Stores each request's result.
    static func complete(_ results: [(operationId: String, result: String)]) -> WriterJournal.Statement {
        ("""
         UPDATE write_attempts w SET state = 'completed', result = g.result, completed_at = now()
         FROM unnest($1::uuid[], $2::jsonb[]) AS g(id, result)
         WHERE w.operation_id = ANY($1::uuid[]) AND w.operation_id = g.id
         """, [PostgresArray.literal(results.map(\.operationId)), PostgresArray.literal(results.map(\.result))])
    }
}

import Foundation
import Kafka
import Postgres
import Shared
import Synchronization

/// What a write carries from one attempt to the next while it is held.
struct Carried: Sendable, Equatable {
    /// Provider calls made for it so far.
    var calls = 0
    /// One of them may have applied it (a create sent again after a crash, or after an unanswered call).
    var possiblyDuplicated = false
}

/// A connection's writes in one partition: the unit of order, concurrency and holds in the writer.
struct LaneKey: Hashable, Sendable, CustomStringConvertible {
    var installationId: String
    var partition: TopicPartition

    var description: String { "\(installationId)@\(partition)" }
}

/// The writes that wait, in the control database's `held_writes`: a write that has to wait longer than
/// the hold threshold (a rate-limit hold, a retry backoff, a daily-limit pause, an auto-batch delay)
/// is kept there with the offset of its message as its place in its connection's order, so that its
/// offset may be committed and it survives any restart. A held write is taken again when it is due and
/// nothing earlier of its records waits; it leaves the table only once its result is published.
struct HeldWrites: Sendable {
    let database: PostgresPool

    /// One write to hold.
    struct Hold: Sendable {
        var request: WriteRequestMessage
        var bytes: String
        var lane: LaneKey
        var seq: Int64
        var order: WriteOrder
        /// Seconds from now until it is due (0: due now).
        var dueIn: Double
        var carried: Carried
        /// It had begun (it holds after a provider call or a wait in memory), as opposed to held at its
        /// arrival.
        var began = false
    }

    /// A held write taken to run.
    struct Row: Sendable {
        var request: WriteRequestMessage
        var seq: Int64
        var carried: Carried
        var batchGroup: String?
    }

    /// What a partition holds, per connection, when it is handed to this writer.
    struct Summary: Sendable {
        var held: Int
        /// Auto-batched writes waiting, per group.
        var groups: [String: Int]
    }

    /// What the lane runs or is about to hold in memory: a held write that conflicts with any of it
    /// waits.
    struct Busy: Sendable {
        var operations: [String] = []
        var keys: Set<String> = []
        /// Objects with a barrier (bulk write) in memory: nothing of them may start.
        var barrierObjects: Set<String> = []
        /// Objects with any write in memory: a barrier of them may not start.
        var objects: Set<String> = []
    }

    private static let separator = "\u{1F}"

    /// What a held row stores of a write's keys: the records it writes. Its operation is the row's
    /// primary key, so no two held writes share it.
    static func recordKeys(_ order: WriteOrder) -> [String] {
        order.keys.filter { !$0.hasPrefix("op:") }.sorted()
    }

    /// A write taken from the table that must wait once more.
    struct Again: Sendable {
        var operationId: String
        var dueIn: Double
        var carried: Carried
    }

    /// Holds writes in one statement, answering the operations it held anew. Each operation at most
    /// once (a statement touches a row once): a write held already (a repeated message of its operation)
    /// keeps its row, which then carries the most calls, any possible duplicate, and the later due time
    /// of the two. A write that had begun (`Hold.began`) is marked held in `write_attempts`, so that
    /// taking it again is not mistaken for a crash in flight; one held at its arrival leaves
    /// `write_attempts` alone (another message of its operation may be running).
    static func holdStatement(_ given: [Hold]) -> (sql: String, parameters: [String?]) {
        // Two messages of one operation in one statement: one row, which carries the most of both.
        var holds: [Hold] = []
        var positions: [String: Int] = [:]
        for hold in given {
            guard let position = positions[hold.request.operationId] else {
                positions[hold.request.operationId] = holds.count
                holds.append(hold)
                continue
            }
            holds[position].carried.calls = max(holds[position].carried.calls, hold.carried.calls)
            holds[position].carried.possiblyDuplicated = holds[position].carried.possiblyDuplicated || hold.carried.possiblyDuplicated
            holds[position].dueIn = max(holds[position].dueIn, hold.dueIn)
            holds[position].began = holds[position].began || hold.began
        }
        let columns: [(name: String, type: String)] = [
            ("operation_id", "uuid"), ("installation_id", "uuid"), ("topic", "text"), ("partition", "int"), ("seq", "bigint"),
            ("due_in", "float8"), ("object_name", "text"), ("keys", "text"), ("barrier", "boolean"), ("batch_group", "text"),
            ("calls", "int"), ("possibly_duplicated", "boolean"), ("request", "text"),
        ]
        // Every column in one pass, each hold read once (a hold is large: a copy per column was a fifth of
        // holding's cost).
        var values = [[String?]](repeating: [], count: columns.count)
        for column in values.indices { values[column].reserveCapacity(holds.count) }
        var began: [String?] = []
        for index in holds.indices {
            let hold = holds[index]
            let row: [String?] = [
                hold.request.operationId, hold.lane.installationId, hold.lane.partition.topic, String(hold.lane.partition.partition),
                String(hold.seq), String(max(0, hold.dueIn)), hold.order.object, recordKeys(hold.order).joined(separator: separator),
                hold.order.barrier ? "true" : "false", hold.order.batchGroup, String(hold.carried.calls),
                hold.carried.possiblyDuplicated ? "true" : "false", hold.bytes,
            ]
            for column in values.indices { values[column].append(row[column]) }
            if hold.began { began.append(hold.request.operationId) }
        }
        let arrays = columns.enumerated().map { "$\($0.offset + 1)::\($0.element.type)[]" }.joined(separator: ", ")
        return ("""
            WITH given AS (SELECT * FROM unnest(\(arrays)) AS g(\(columns.map(\.name).joined(separator: ", ")))),
            held AS (
                INSERT INTO held_writes (operation_id, installation_id, topic, partition, seq, due_at, object_name, keys, barrier,
                                         batch_group, calls, possibly_duplicated, request)
                SELECT operation_id, installation_id, topic, partition, seq, now() + due_in * interval '1 second', object_name,
                       string_to_array(keys, chr(31)), barrier, batch_group, calls, possibly_duplicated, request
                FROM given ORDER BY operation_id
                ON CONFLICT (operation_id) DO UPDATE SET
                    calls = GREATEST(held_writes.calls, EXCLUDED.calls),
                    possibly_duplicated = held_writes.possibly_duplicated OR EXCLUDED.possibly_duplicated,
                    due_at = GREATEST(held_writes.due_at, EXCLUDED.due_at)
                RETURNING operation_id, (xmax = 0) AS inserted
            ), marked AS (
                UPDATE write_attempts SET state = 'held' WHERE operation_id = ANY($\(columns.count + 1)::uuid[]) AND state = 'in_flight'
            )
            SELECT operation_id::text AS operation_id FROM held WHERE inserted
            """, values.map { PostgresArray.literal($0) } + [PostgresArray.literal(began)])
    }

    /// Holds again writes that were taken from the table and must wait once more.
    static func holdAgainStatement(_ holds: [Again]) -> (sql: String, parameters: [String?]) {
        ("""
         WITH given AS (SELECT * FROM unnest($1::uuid[], $2::float8[], $3::int[], $4::boolean[]) AS g(id, wait, calls, duplicated)),
         held AS (
             UPDATE held_writes h SET due_at = now() + given.wait * interval '1 second', calls = given.calls,
                 possibly_duplicated = given.duplicated
             FROM given WHERE h.operation_id = ANY($1::uuid[]) AND h.operation_id = given.id
         )
         UPDATE write_attempts SET state = 'held' WHERE operation_id = ANY($1::uuid[]) AND state = 'in_flight'
         """,
         [PostgresArray.literal(holds.map(\.operationId)), PostgresArray.literal(holds.map { String(max(0, $0.dueIn)) }),
          PostgresArray.literal(holds.map { String($0.carried.calls) }),
          PostgresArray.literal(holds.map { $0.carried.possiblyDuplicated ? "true" : "false" })])
    }

    /// Forgets held writes whose results are published.
    static func releaseStatement(_ operationIds: [String]) -> (sql: String, parameters: [String?]) {
        ("DELETE FROM held_writes WHERE operation_id = ANY($1::uuid[])", [PostgresArray.literal(operationIds)])
    }

    /// The held writes of a lane that may run now, in order: due, not in memory, and with nothing earlier
    /// of their records (or object, for barriers) held or busy. At most `limit`. With them, in the same
    /// statement (so the same `now()`), the seconds until the next write that is not due yet becomes due
    /// (nil: none).
    func due(_ lane: LaneKey, busy: Busy, readThrough: Int64, limit: Int) async throws -> (rows: [Row], nextDueIn: Double?) {
        let found = try await Self.inLaneOrder(database, """
            WITH candidates AS (\(Self.candidates("s.due_at <= now()"))),
            upcoming AS (
                SELECT EXTRACT(EPOCH FROM min(due_at) - now())::float8 AS wait FROM held_writes
                WHERE installation_id = $1::uuid AND topic = $2 AND partition = $3::int AND due_at > now()
            )
            SELECT u.wait, c.* FROM upcoming u LEFT JOIN candidates c ON true ORDER BY c.seq
            """, parameters(lane, busy: busy, readThrough: readThrough, limit: limit))
        let wait = found.first?["wait"].flatMap { Double($0) }
        return (try rows(found.rows.filter { $0["request"] != nil }), wait)
    }

    /// The held writes of an auto-batch group that may go now, in order, at most `limit`, due or not:
    /// a group goes when its earliest is due.
    func group(_ lane: LaneKey, _ group: String, busy: Busy, readThrough: Int64, limit: Int) async throws -> [Row] {
        let found = try await Self.inLaneOrder(
            database, Self.candidates("s.batch_group = $10"), parameters(lane, busy: busy, readThrough: readThrough, limit: limit) + [group])
        return try rows(found.rows)
    }

    /// Runs a query of a lane's candidates so that it reads the lane in order (`held_writes_lane`) and
    /// stops at its limit, whatever the table's statistics. The table fills and empties by the thousand
    /// between two ANALYZEs, so the planner often believes it nearly empty: it would fetch every due
    /// write of the lane, sort them and keep the first few, and scan the whole table for each
    /// candidate's earlier writes, a cost that grows with the backlog on every load. Sorting and
    /// sequential scans are set aside for this one transaction (every condition has its index; what
    /// must still be sorted, the few rows found, is), and so is JIT compilation, which those penalties
    /// would otherwise set off at every load.
    static func inLaneOrder(_ database: PostgresPool, _ sql: String, _ parameters: [String?]) async throws -> PostgresRows {
        let answers = try await database.pipeline([
            ("SELECT set_config('enable_sort', 'off', true), set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)", []),
            (sql, parameters),
        ])
        return answers[1]
    }

    /// The held writes of a lane under `condition` that may run: read past (`readThrough`), not in
    /// memory, and nothing earlier of their records or object held or busy. The lane's held bulk writes
    /// (barriers) are read once, not once per candidate.
    static func candidates(_ condition: String) -> String {
        """
        WITH barriers AS MATERIALIZED (
            SELECT object_name, min(seq) AS seq FROM held_writes
            WHERE barrier AND installation_id = $1::uuid AND topic = $2 AND partition = $3::int GROUP BY object_name
        )
        SELECT s.request, s.seq, s.calls, s.possibly_duplicated, s.batch_group FROM held_writes s
        WHERE s.installation_id = $1::uuid AND s.topic = $2 AND s.partition = $3::int AND \(condition)
          AND s.seq < $9::bigint
          AND s.operation_id NOT IN (SELECT unnest($4::uuid[]))
          AND NOT (s.keys && $5::text[])
          AND s.object_name <> ALL($6::text[])
          AND NOT (s.barrier AND s.object_name = ANY($7::text[]))
          AND (s.keys = '{}' OR NOT EXISTS (SELECT 1 FROM held_writes e WHERE e.keys <> '{}' AND e.keys && s.keys
                          AND e.installation_id = s.installation_id
                          AND e.topic = s.topic AND e.partition = s.partition AND e.seq < s.seq))
          AND s.seq <= COALESCE((SELECT b.seq FROM barriers b WHERE b.object_name = s.object_name), s.seq)
          AND (NOT s.barrier OR NOT EXISTS (SELECT 1 FROM held_writes e WHERE e.installation_id = s.installation_id
                          AND e.topic = s.topic AND e.partition = s.partition AND e.object_name = s.object_name AND e.seq < s.seq))
        ORDER BY s.seq LIMIT $8::int
        """
    }

    func parameters(_ lane: LaneKey, busy: Busy, readThrough: Int64, limit: Int) -> [String?] {
        [lane.installationId, lane.partition.topic, String(lane.partition.partition), PostgresArray.literal(busy.operations),
         PostgresArray.literal(busy.keys.sorted()), PostgresArray.literal(busy.barrierObjects.sorted()), PostgresArray.literal(busy.objects.sorted()), String(limit),
         String(readThrough)]
    }

    private func rows(_ rows: [PostgresRow]) throws -> [Row] {
        try rows.map { row in
            Row(request: try JSONCoding.decode(WriteRequestMessage.self, from: try row.string("request")),
                seq: row.int64("seq") ?? 0,
                carried: Carried(calls: row.int("calls") ?? 0, possiblyDuplicated: row.bool("possibly_duplicated") ?? false),
                batchGroup: row["batch_group"])
        }
    }

    /// What a partition holds, per connection.
    func summary(_ partition: TopicPartition) async throws -> [String: Summary] {
        let rows = try await database.query(
            """
            SELECT installation_id::text AS installation, batch_group, count(*) AS held FROM held_writes
            WHERE topic = $1 AND partition = $2::int GROUP BY installation_id, batch_group
            """, [partition.topic, String(partition.partition)])
        var summary: [String: Summary] = [:]
        for row in rows.rows {
            let installation = try row.string("installation")
            let count = row.int("held") ?? 0
            summary[installation, default: Summary(held: 0, groups: [:])].held += count
            if let group = row["batch_group"] { summary[installation]!.groups[group, default: 0] += count }
        }
        return summary
    }

    /// What each held write of a partition occupies, per connection; nil when the partition holds more
    /// than `limit` (then its lanes hold every new write until they hold none).
    func orders(_ partition: TopicPartition, limit: Int) async throws -> [String: [WriteOrder]]? {
        let rows = try await database.query(
            """
            SELECT installation_id::text AS installation, object_name, barrier, batch_group, array_to_string(keys, chr(31)) AS keys
            FROM held_writes WHERE topic = $1 AND partition = $2::int LIMIT $3::int
            """, [partition.topic, String(partition.partition), String(limit + 1)])
        guard rows.count <= limit else { return nil }
        var orders: [String: [WriteOrder]] = [:]
        for row in rows.rows {
            let keys = Set((row["keys"] ?? "").split(separator: Character(Self.separator)).map(String.init))
            orders[try row.string("installation"), default: []].append(WriteOrder(
                object: try row.string("object_name"), keys: keys, barrier: row.bool("barrier") ?? false, batchGroup: row["batch_group"]))
        }
        return orders
    }

}

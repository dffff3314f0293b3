import Logging
import Pipeline
import Postgres
import Shared

/// The writer's row per request in the control database: marked in flight before the provider call and
/// completed with the result after it, so a redelivered request is never sent again once answered. The
/// statements of writes running at about the same time go to the database together, in one round trip
/// and transaction (`GroupCommit`); one the database refuses fails only its own write.
struct WriteAttempts: Sendable {
    private let statements: GroupCommit<(sql: String, parameters: [String?]), Result<PostgresRows, PostgresError>>

    init(database: PostgresPool, logger: Logger) {
        statements = GroupCommit { batch in try await database.applyEach(batch, logger: logger) }
    }

    private func query(_ sql: String, _ parameters: [String?]) async throws -> PostgresRows {
        try await statements.submit((sql, parameters)).get()
    }

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

    /// Marks the request in flight in one statement: a new row, a held one taken again, or one more
    /// delivery of a row still in flight; a completed row is left as it is and returned. (The subquery
    /// of RETURNING sees the row as it was before the statement.)
    /// `held`: the caller is the held write itself (only then does a held row go in flight again).
    func begin(_ operationId: String, held: Bool = false) async throws -> Start {
        let row = try await query(
            """
            INSERT INTO write_attempts (operation_id, state) VALUES ($1, 'in_flight')
            ON CONFLICT (operation_id) DO UPDATE SET
                attempts = write_attempts.attempts + CASE WHEN write_attempts.state = 'in_flight' THEN 1 ELSE 0 END,
                state = CASE WHEN write_attempts.state = 'held' AND $2::boolean THEN 'in_flight' ELSE write_attempts.state END,
                started_at = CASE WHEN write_attempts.state = 'in_flight' OR $2::boolean THEN now() ELSE write_attempts.started_at END
            RETURNING state, attempts, result::text AS result, (xmax = 0) AS inserted,
                      (SELECT w.state FROM write_attempts w WHERE w.operation_id = $1::uuid) AS previous
            """, [operationId, held ? "true" : "false"]
        ).first
        guard let row else { throw PostgresError(.decoding, "write_attempts returned no row") }
        if row.bool("inserted") == true { return .fresh }
        if row["state"] == "completed", let text = row["result"] {
            return .completed(try JSONCoding.decode(WriteResultMessage.self, from: text))
        }
        if row["previous"] == "held" { return .held }
        return .interrupted(attempts: (row.int("attempts") ?? 2) - 1)
    }

    func complete(_ result: WriteResultMessage) async throws {
        let text = try JSONCoding.encodeString(result)
        _ = try await query(
            "UPDATE write_attempts SET state = 'completed', result = $2::jsonb, completed_at = now() WHERE operation_id = $1",
            [result.operationId, text])
    }
}

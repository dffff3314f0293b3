import Postgres
import Shared

/// The writer's row per request in the control database: marked in flight before the provider call and
/// completed with the result after it, so a redelivered request is never sent again once answered.
struct WriteAttempts: Sendable {
    let database: PostgresPool

    enum Start: Sendable {
        /// First delivery: go ahead.
        case fresh
        /// Delivered before, and that delivery's provider call may have happened (crash while in flight).
        case interrupted(attempts: Int)
        /// Answered before: publish this result again, call nothing.
        case completed(WriteResultMessage)
    }

    func begin(_ operationId: String) async throws -> Start {
        try await database.transaction { connection in
            let existing = try connection.query(
                "SELECT state, attempts, result::text AS result FROM write_attempts WHERE operation_id = $1 FOR UPDATE",
                [operationId]
            ).first
            guard let existing else {
                try connection.query(
                    "INSERT INTO write_attempts (operation_id, state) VALUES ($1, 'in_flight')", [operationId])
                return .fresh
            }
            if existing["state"] == "completed", let text = existing["result"] {
                return .completed(try JSONCoding.decode(WriteResultMessage.self, from: text))
            }
            try connection.query(
                "UPDATE write_attempts SET attempts = attempts + 1, started_at = now() WHERE operation_id = $1",
                [operationId])
            return .interrupted(attempts: existing.int("attempts") ?? 1)
        }
    }

    func complete(_ result: WriteResultMessage) async throws {
        let text = try JSONCoding.encodeString(result)
        try await database.query(
            "UPDATE write_attempts SET state = 'completed', result = $2::jsonb, completed_at = now() WHERE operation_id = $1",
            [result.operationId, text])
    }
}

import Postgres

/// Idempotency keys per project, with a hash of the request they came with, kept 24 hours.
struct Idempotency: Sendable {
    let database: PostgresPool

    enum Claim: Sendable {
        /// The key is new (or expired): go ahead with this operation.
        case claimed
        /// The key came with another request.
        case conflict
        /// The same request was answered before (as this operation): answer the same.
        case answered(operationId: String, status: Int, body: String)
        /// The same request is still running as this operation.
        case pending(operationId: String)
    }

    func claim(project: String, key: String, fingerprint: String, operationId: String) async throws -> Claim {
        try await database.transaction { connection in
            let claimed = try connection.query(
                """
                INSERT INTO idempotency_keys (project_id, key, body_hash, operation_id)
                VALUES ($1::uuid, $2, encode(sha256(convert_to($3, 'UTF8')), 'hex'), $4::uuid)
                ON CONFLICT (project_id, key) DO UPDATE SET
                    body_hash = EXCLUDED.body_hash, operation_id = EXCLUDED.operation_id, response_status = NULL,
                    response_body = NULL, created_at = now()
                WHERE idempotency_keys.created_at < now() - interval '24 hours'
                RETURNING operation_id
                """, [project, key, fingerprint, operationId])
            if !claimed.isEmpty { return .claimed }
            guard let existing = try connection.query(
                """
                SELECT operation_id::text AS operation_id, response_status, response_body,
                       body_hash = encode(sha256(convert_to($3, 'UTF8')), 'hex') AS same
                FROM idempotency_keys WHERE project_id = $1::uuid AND key = $2
                """, [project, key, fingerprint]
            ).first else { return .claimed }
            guard existing.bool("same") == true else { return .conflict }
            if let status = existing.int("response_status"), let body = existing["response_body"] {
                return .answered(operationId: try existing.string("operation_id"), status: status, body: body)
            }
            return .pending(operationId: try existing.string("operation_id"))
        }
    }

    func store(project: String, key: String, status: Int, body: [UInt8]) async throws {
        try await database.query(
            "UPDATE idempotency_keys SET response_status = $3::int, response_body = $4 WHERE project_id = $1::uuid AND key = $2",
            [project, key, String(status), String(decoding: body, as: UTF8.self)])
    }

    /// Frees a key whose request could not be queued, so that trying again is not refused.
    func release(project: String, key: String) async throws {
        try await database.query("DELETE FROM idempotency_keys WHERE project_id = $1::uuid AND key = $2", [project, key])
    }
}

import Foundation
import Hummingbird
import Kafka
import Logging
import Metrics
import Pipeline
import Postgres
import Shared

/// The one path by which every write is handed over (Write API, bulk, unified CRM, actions): claimed
/// under its `Idempotency-Key`, published to `write-requests` under its operation, and, when the caller
/// waits, answered on completion.
///
/// Claiming a key and publishing cannot diverge: the key's row names the operation before anything is
/// published, and a request repeated with the key while that operation has no stored answer publishes
/// the same operation again (the first attempt may have died before its message was out). The writer
/// handles an operation once however often it is published, so a repeat never writes twice; it waits on
/// the same operation as the first request, and every request waiting on one operation is answered.
struct WriteSubmitter: Sendable {
    let configuration: APIConfiguration
    let database: PostgresPool
    let producer: KafkaProducer
    let completions: Completions
    let logger: Logger
}

extension WriteSubmitter {
    /// An idempotency key with what it protects: the route and the canonical request body.
    struct IdempotencyClaim: Sendable {
        var project: String
        var key: String
        var fingerprint: String
    }

    enum Submitted: Sendable {
        /// The key's first request was answered: this is its answer, to send again as it is.
        case replayed(operationId: String, status: Int, body: [UInt8])
        /// The write is on Kafka as `operationId`; `completion` when the caller waited and it completed
        /// in time.
        case accepted(operationId: String, completion: Completion?)
    }

    /// The request's `Idempotency-Key`, if it has one, with the fingerprint of `route` and the body
    /// (keys sorted, so that the same JSON written otherwise is the same request).
    func idempotencyClaim(_ request: Request, project: String, route: String, body: [String: JSONValue]) -> IdempotencyClaim? {
        guard let key = request.headers[APIHeaders.idempotencyKey], !key.isEmpty else { return nil }
        let canonical = (try? JSONCoding.encodeString(body)) ?? ""
        return IdempotencyClaim(project: project, key: key, fingerprint: "\(route)\n\(canonical)")
    }

    /// Hands a write over: claims its key (a repeat takes the first request's operation), stores a bulk
    /// write's uploaded CSV, publishes, and waits for completion when `wait` (at most
    /// `API_SYNC_TIMEOUT_SECONDS`). A write that could not be published is a 503 and leaves nothing
    /// behind, its key free again.
    func submit(_ message: WriteRequestMessage, claim: IdempotencyClaim?, wait: Bool, upload: [UInt8]? = nil) async throws -> Submitted {
        var message = message
        var repeated = false
        if let claim {
            switch try await Idempotency(database: database).claim(
                project: claim.project, key: claim.key, fingerprint: claim.fingerprint, operationId: message.operationId)
            {
            case .claimed:
                break
            case .conflict:
                throw Problem.conflict("Idempotency-Key '\(claim.key)' was used with a different request body")
            case .answered(let operationId, let status, let body):
                return .replayed(operationId: operationId, status: status, body: Array(body.utf8))
            case .pending(let first):
                // The first request may still run, or may have died before publishing: publish it again.
                message.operationId = first
                repeated = true
                if wait, let finished = await finishedOperation(first) {
                    return .accepted(operationId: first, completion: finished)
                }
            }
        }
        let operationId = message.operationId
        if wait { completions.register(operationId) }
        do {
            if let upload {
                try await database.query(
                    "INSERT INTO bulk_uploads (operation_id, csv) VALUES ($1::uuid, $2::bytea) ON CONFLICT (operation_id) DO NOTHING",
                    [operationId, "\\x" + hex(upload)])
            }
            try await producer.send(topic: Topics.writeRequests, key: message.routingKey, value: try JSONCoding.encode(message))
        } catch {
            if wait { completions.forget(operationId) }
            if !repeated {
                if upload != nil { _ = try? await database.query("DELETE FROM bulk_uploads WHERE operation_id = $1::uuid", [operationId]) }
                if let claim { try? await Idempotency(database: database).release(project: claim.project, key: claim.key) }
            }
            logger.error("could not publish a write request", metadata: ["error": "\(error)"])
            throw Problem.unavailable("the write could not be queued; nothing was written; try again")
        }
        if !repeated {
            Meters.counter("writeback_writes_accepted_total", [
                ("provider", message.provider.rawValue), ("type", message.type.rawValue), ("mode", message.mode.rawValue),
            ]).increment()
        }
        guard wait else { return .accepted(operationId: operationId, completion: nil) }
        let started = ContinuousClock.now
        let completion = await completions.wait(
            for: operationId, timeout: .milliseconds(Int(configuration.syncTimeout * 1000)),
            fallback: { await finishedOperation(operationId) })
        Meters.timer("writeback_sync_write_duration_seconds", [("status", completion == nil ? "202" : "done")])
            .record(duration: ContinuousClock.now - started)
        return .accepted(operationId: operationId, completion: completion)
    }

    /// Stores the answer a key's request got, so that a repeat gets the same; a 202 (still running) is
    /// not stored, so a repeat waits for the operation again.
    func remember(_ claim: IdempotencyClaim?, status: Int, body: [UInt8]) async {
        guard let claim, status != 202 else { return }
        try? await Idempotency(database: database).store(project: claim.project, key: claim.key, status: status, body: body)
    }

    /// The completion of an operation from the operations table, if it has a final status.
    func finishedOperation(_ operationId: String) async -> Completion? {
        guard let row = try? await database.query(
            """
            SELECT status, record_id, result_data::text AS data, errors::text AS errors, provider_status, results::text AS results
            FROM operations
            WHERE id = $1::uuid AND status IN ('success', 'failure')
            """, [operationId]
        ).first else { return nil }
        let errors = row["errors"].flatMap { try? JSONCoding.decode([WriteError].self, from: $0) }
        return Completion(
            success: row["status"] == "success", recordId: row["record_id"],
            data: row["data"].flatMap { try? JSONCoding.decode([String: JSONValue].self, from: $0) },
            error: errors?.first, providerStatus: row.int("provider_status"),
            results: row["results"].flatMap { try? JSONCoding.decode([BatchItemResult].self, from: $0) })
    }

    /// Publishes a synchronous write and waits for its completion: nil when it takes longer than
    /// `API_SYNC_TIMEOUT_SECONDS` (the write goes on as its operation).
    func publishAndWait(_ message: WriteRequestMessage) async throws -> Completion? {
        guard case .accepted(_, let completion) = try await submit(message, claim: nil, wait: true) else { return nil }
        return completion
    }
}

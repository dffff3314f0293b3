import Shared

/// The SQL that records each input of an operation: an upsert of the operation and one log row per step
/// (a redelivered step is not logged twice).
enum OperationStatements {
    typealias Statement = (String, [String?])

    /// Several data-modifying statements as one, so that they apply together in one round trip: each
    /// becomes a WITH clause named `s{index}` (so a statement may read what an earlier one returned), its
    /// placeholders numbered after the previous ones'.
    static func combined(_ statements: [Statement]) -> Statement {
        var clauses: [String] = []
        var parameters: [String?] = []
        for (index, (sql, values)) in statements.enumerated() {
            let offset = parameters.count
            var renumbered = ""
            var rest = Substring(sql)
            while let dollar = rest.firstIndex(of: "$") {
                renumbered += rest[..<dollar]
                let digits = rest[rest.index(after: dollar)...].prefix { $0.isNumber }
                renumbered += "$\(Int(digits)! + offset)"
                rest = rest[rest.index(dollar, offsetBy: digits.count + 1)...]
            }
            renumbered += rest
            clauses.append("s\(index) AS (\(renumbered))")
            parameters += values
        }
        return ("WITH " + clauses.joined(separator: ", ") + " SELECT 1", parameters)
    }

    static let columns = "id, project_id, integration_id, installation_id, group_ref, object_name, write_type, mode, create_time"

    static func identity(
        operationId: String, projectId: String, integrationId: String, installationId: String, groupRef: String,
        objectName: String, type: WriteType, mode: WriteMode, time: String
    ) -> [String?] {
        [operationId, projectId, integrationId, installationId, groupRef, objectName, type.rawValue, mode.rawValue, time]
    }

    static func log(_ operationId: String, step: String, time: String, severity: String, message: String, error: String? = nil,
                    details: [String: JSONValue] = [:]) -> Statement
    {
        var body: [String: JSONValue] = ["msg": .string(message), "operation_id": .string(operationId)]
        if let error { body["error"] = .string(error) }
        if !details.isEmpty { body["details"] = .object(details) }
        return ("""
            INSERT INTO operation_logs (operation_id, step, logged_at, severity, message)
            VALUES ($1::uuid, $2, $3::timestamptz, $4, $5::jsonb) ON CONFLICT DO NOTHING
            """, [operationId, step, time, severity, (try? JSONCoding.encodeString(body)) ?? "{}"])
    }

    static func accepted(_ request: WriteRequestMessage) -> [Statement] {
        let identity = identity(
            operationId: request.operationId, projectId: request.projectId, integrationId: request.integrationId,
            installationId: request.installationId, groupRef: request.groupRef, objectName: request.objectName,
            type: request.type, mode: request.mode, time: request.acceptedAt)
        return [
            ("""
             INSERT INTO operations (\(columns))
             VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid, $5, $6, $7, $8, $9::timestamptz)
             ON CONFLICT (id) DO UPDATE SET create_time = EXCLUDED.create_time, mode = EXCLUDED.mode
             """, identity),
            log(request.operationId, step: "accepted", time: request.acceptedAt, severity: "INFO",
                message: request.batch.map { "batch \(request.type.rawValue) of \($0.count) \(request.objectName) records accepted (\(request.mode.rawValue))" }
                    ?? "\(request.type.rawValue) of \(request.objectName) accepted (\(request.mode.rawValue))",
                details: ["groupRef": .string(request.groupRef), "recordId": request.recordId.map(JSONValue.string) ?? .null]),
        ]
    }

    static func answered(_ result: WriteResultMessage) -> [Statement] {
        let identity = identity(
            operationId: result.operationId, projectId: result.projectId, integrationId: result.integrationId,
            installationId: result.installationId, groupRef: result.groupRef, objectName: result.objectName,
            type: result.type, mode: result.mode, time: result.completedAt)
        let errors: String? = result.error.map { error in
            (try? JSONCoding.encodeString([error])) ?? "[]"
        }
        let data = result.data.flatMap { try? JSONCoding.encodeString($0) }
        let results = result.results.flatMap { try? JSONCoding.encodeString($0) }
        var statements: [Statement] = [
            ("""
             INSERT INTO operations (\(columns), provider_done, provider_success, record_id, result_data, errors,
                                     provider_status, possibly_duplicated, attempts, results, expected_changes, status)
             VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid, $5, $6, $7, $8, $9::timestamptz, true, $10::boolean, $11,
                     $12::jsonb, $13::jsonb, $14::int, $15::boolean, $16::int, $17::jsonb, $18::int,
                     CASE WHEN $10::boolean THEN 'in_progress' ELSE 'failure' END)
             ON CONFLICT (id) DO UPDATE SET
                 provider_done = true, provider_success = EXCLUDED.provider_success, record_id = EXCLUDED.record_id,
                 result_data = EXCLUDED.result_data, errors = EXCLUDED.errors, provider_status = EXCLUDED.provider_status,
                 possibly_duplicated = EXCLUDED.possibly_duplicated, attempts = EXCLUDED.attempts,
                 results = EXCLUDED.results, expected_changes = EXCLUDED.expected_changes,
                 cache_done = operations.changes_done >= EXCLUDED.expected_changes,
                 status = CASE WHEN NOT EXCLUDED.provider_success THEN 'failure'
                               WHEN operations.changes_done >= EXCLUDED.expected_changes THEN 'success' ELSE 'in_progress' END,
                 update_time = now()
             """,
             identity + [result.success ? "true" : "false", result.recordId, data, errors,
                         result.providerStatus.map(String.init), result.possiblyDuplicated ? "true" : "false",
                         String(result.attempts), results, String(Set(result.changedRecords.map(\.recordId)).count)])
        ]
        let provider = result.provider.rawValue
        let status = result.providerStatus.map { " (HTTP \($0))" } ?? ""
        if let items = result.results {
            statements.append(log(
                result.operationId, step: "provider", time: result.completedAt,
                severity: result.successCount > 0 ? "INFO" : "ERROR",
                message: "\(provider) applied the \(result.type.rawValue) of \(result.successCount) of \(items.count) records\(status)",
                error: result.successCount > 0 ? nil : result.error?.message,
                details: ["successCount": .number(Double(result.successCount)), "failureCount": .number(Double(result.failureCount)),
                          "calls": .number(Double(result.attempts))]))
            for (index, item) in items.enumerated() where !item.success {
                statements.append(log(
                    result.operationId, step: "record:\(index)", time: result.completedAt, severity: "ERROR",
                    message: "batch[\(index)] was not written", error: item.error?.message,
                    details: ["index": .number(Double(index)), "recordId": item.recordId.map(JSONValue.string) ?? .null,
                              "code": item.error?.code.map(JSONValue.string) ?? .null]))
            }
        } else if result.success {
            statements.append(log(
                result.operationId, step: "provider", time: result.completedAt, severity: "INFO",
                message: "\(provider) applied the \(result.type.rawValue)\(status)",
                details: ["recordId": result.recordId.map(JSONValue.string) ?? .null, "calls": .number(Double(result.attempts))]))
        } else {
            let error = result.error
            statements.append(log(
                result.operationId, step: "provider", time: result.completedAt, severity: "ERROR",
                message: error?.deadLettered == true ? "write dead-lettered" : "\(provider) rejected the \(result.type.rawValue)\(status)",
                error: error?.message,
                details: ["code": error?.code.map(JSONValue.string) ?? .null, "calls": .number(Double(result.attempts))]))
        }
        if result.possiblyDuplicated {
            statements.append(log(
                result.operationId, step: "possible-duplicate", time: result.completedAt, severity: "WARN",
                message: "the provider call was in flight when a writer stopped and was sent again; the provider may have applied it twice"))
        }
        return statements
    }

    static func cached(_ update: CacheUpdateMessage) -> [Statement] {
        let change = update.change
        let identity = identity(
            operationId: change.operationId, projectId: change.projectId, integrationId: change.integrationId,
            installationId: change.installationId, groupRef: change.groupRef, objectName: change.objectName,
            type: change.operation, mode: .asynchronous, time: update.updatedAt)
        // The record is counted once however often its update is delivered: the first statement inserts
        // it into operation_changes only once, and the second adds what the first inserted.
        return [
            ("""
             INSERT INTO operation_changes (operation_id, record_id) VALUES ($1::uuid, $2) ON CONFLICT DO NOTHING RETURNING 1
             """, [change.operationId, change.recordId]),
            ("""
             INSERT INTO operations (\(columns), cache_done, record_id, changes_done)
             VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid, $5, $6, $7, $8, $9::timestamptz, true, $10, 1)
             ON CONFLICT (id) DO UPDATE SET
                 changes_done = operations.changes_done + (SELECT count(*) FROM s0),
                 cache_done = operations.changes_done + (SELECT count(*) FROM s0) >= operations.expected_changes,
                 status = CASE WHEN operations.provider_done AND operations.provider_success
                                    AND operations.changes_done + (SELECT count(*) FROM s0) >= operations.expected_changes
                               THEN 'success' ELSE operations.status END,
                 update_time = now()
             """, identity + [change.recordId]),
            log(change.operationId, step: "destination:\(change.recordId)", time: update.updatedAt, severity: "INFO",
                message: update.applied ? "destination record updated" : "destination already held a newer state; kept it",
                details: ["recordId": .string(change.recordId), "version": .number(Double(change.version))]),
        ]
    }
}

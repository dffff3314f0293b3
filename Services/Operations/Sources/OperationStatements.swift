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
        let message: String
        switch request.payload {
        case .batch(let records, _):
            message = "batch \(request.type.rawValue) of \(records.count) \(request.objectName) records accepted (\(request.mode.rawValue))"
        case .bulk(let bulk):
            let source = bulk.recordsURL == nil ? "recordsCSV" : "recordsURL"
            message = "bulk \(request.type.rawValue) of \(request.objectName) records accepted from \(source)"
                + (bulk.bytes.map { " (\($0) bytes)" } ?? "") + ", rows identified by \(bulk.primaryKey)"
        case .single:
            message = "\(request.type.rawValue) of \(request.objectName) accepted (\(request.mode.rawValue))"
        }
        return [
            ("""
             INSERT INTO operations (\(columns), bulk_header)
             VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid, $5, $6, $7, $8, $9::timestamptz, $10::jsonb)
             ON CONFLICT (id) DO UPDATE SET create_time = LEAST(operations.create_time, EXCLUDED.create_time), mode = EXCLUDED.mode,
                 bulk_header = EXCLUDED.bulk_header
             """, identity + [request.bulk.flatMap { try? JSONCoding.encodeString($0.header) }]),
            log(request.operationId, step: "accepted", time: request.acceptedAt, severity: "INFO", message: message,
                details: ["groupRef": .string(request.groupRef), "recordId": request.recordId.map(JSONValue.string) ?? .null]),
        ]
    }

    /// A bulk write's progress: its counts (a later reading of the CSV replaces an earlier one's; within
    /// a reading they only grow), its provider jobs, and a failure row and log line per refused row.
    static func progressed(_ progress: BulkProgressMessage) -> [Statement] {
        let identity = identity(
            operationId: progress.operationId, projectId: progress.projectId, integrationId: progress.integrationId,
            installationId: progress.installationId, groupRef: progress.groupRef, objectName: progress.objectName,
            type: progress.type, mode: .bulk, time: progress.time)
        func newer(_ column: String) -> String {
            "\(column) = CASE WHEN EXCLUDED.bulk_run > operations.bulk_run THEN EXCLUDED.\(column) "
                + "ELSE GREATEST(operations.\(column), EXCLUDED.\(column)) END"
        }
        var statements: [Statement] = [
            ("""
             INSERT INTO operations (\(columns), bulk_run, records_processed, records_succeeded, records_failed, records_total,
                                     provider_job_ids)
             VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid, $5, $6, $7, $8, $9::timestamptz, $10::bigint, $11::bigint, $12::bigint,
                     $13::bigint, $14::bigint, $15::jsonb)
             ON CONFLICT (id) DO UPDATE SET
                 \(newer("records_processed")), \(newer("records_succeeded")), \(newer("records_failed")),
                 records_total = COALESCE(EXCLUDED.records_total,
                                          CASE WHEN EXCLUDED.bulk_run > operations.bulk_run THEN NULL ELSE operations.records_total END),
                 provider_job_ids = CASE WHEN EXCLUDED.bulk_run > operations.bulk_run
                                           OR jsonb_array_length(EXCLUDED.provider_job_ids)
                                              >= COALESCE(jsonb_array_length(operations.provider_job_ids), 0)
                                         THEN EXCLUDED.provider_job_ids ELSE operations.provider_job_ids END,
                 bulk_run = EXCLUDED.bulk_run,
                 update_time = now()
             WHERE EXCLUDED.bulk_run >= operations.bulk_run
             """,
             identity + [String(progress.run), String(progress.processed), String(progress.succeeded), String(progress.failed),
                         progress.total.map(String.init), (try? JSONCoding.encodeString(progress.jobIds)) ?? "[]"]),
            log(progress.operationId, step: "progress:\(progress.run):\(progress.processed)\(progress.total == nil ? "" : ":end")",
                time: progress.time, severity: "INFO",
                message: "\(progress.processed) rows read\(progress.total == nil ? "" : " (all)"): "
                    + "\(progress.succeeded) written, \(progress.failed) failed",
                details: ["processed": .number(Double(progress.processed)), "succeeded": .number(Double(progress.succeeded)),
                          "failed": .number(Double(progress.failed)), "jobIds": .array(progress.jobIds.map(JSONValue.string))]),
        ]
        if !progress.failures.isEmpty {
            let failures = (try? JSONCoding.encodeString(progress.failures)) ?? "[]"
            statements.append(("""
                INSERT INTO bulk_failures (operation_id, line, run, primary_key, error, code, row)
                SELECT $1::uuid, (f->>'line')::bigint, $3::bigint, f->>'primaryKey', f->>'error', f->>'code', f->'row'
                FROM jsonb_array_elements($2::jsonb) f
                ON CONFLICT (operation_id, line) DO UPDATE SET
                    run = EXCLUDED.run, primary_key = EXCLUDED.primary_key, error = EXCLUDED.error, code = EXCLUDED.code, row = EXCLUDED.row
                WHERE EXCLUDED.run > bulk_failures.run
                """, [progress.operationId, failures, String(progress.run)]))
            statements.append(("""
                INSERT INTO operation_logs (operation_id, step, logged_at, severity, message)
                SELECT $1::uuid, 'row:' || (f->>'line'), $3::timestamptz, 'ERROR',
                       jsonb_build_object('msg', 'line ' || (f->>'line') || ' (primary key ' || (f->>'primaryKey') || ') was not written',
                                          'operation_id', $1, 'error', f->>'error',
                                          'details', jsonb_build_object('line', (f->>'line')::bigint, 'primaryKey', f->>'primaryKey',
                                                                        'code', f->'code'))
                FROM jsonb_array_elements($2::jsonb) f
                ON CONFLICT DO NOTHING
                """, [progress.operationId, failures, progress.time]))
        }
        return statements
    }

    /// A bulk result's final counts, jobs and reading (all nil for other writes).
    private static func bulkCounts(_ result: WriteResultMessage) -> [String?] {
        guard result.mode == .bulk, let data = result.data else { return [nil, nil, nil, nil, nil, nil] }
        let count = { (key: String) in data[key]?.scalarText.flatMap { Double($0) }.map { String(Int($0)) } }
        return [count("processed"), count("succeeded"), count("failed"), count("total"),
                data["jobIds"].flatMap { try? JSONCoding.encodeString($0) }, count("run")]
    }

    static func answered(_ result: WriteResultMessage) -> [Statement] {
        let identity = identity(
            operationId: result.operationId, projectId: result.projectId, integrationId: result.integrationId,
            installationId: result.installationId, groupRef: result.groupRef, objectName: result.objectName,
            type: result.type, mode: result.mode, time: result.completedAt)
        /// The result's final count of its reading, unless a later reading already counts.
        func final(_ column: String) -> String {
            "\(column) = CASE WHEN EXCLUDED.records_processed IS NOT NULL AND EXCLUDED.bulk_run >= operations.bulk_run "
                + "THEN EXCLUDED.\(column) ELSE operations.\(column) END"
        }
        let errors: String? = result.error.map { error in
            (try? JSONCoding.encodeString([error])) ?? "[]"
        }
        let data = result.data.flatMap { try? JSONCoding.encodeString($0) }
        let results = result.results.flatMap { try? JSONCoding.encodeString($0) }
        var statements: [Statement] = [
            ("""
             INSERT INTO operations (\(columns), provider_done, provider_success, record_id, result_data, errors,
                                     provider_status, possibly_duplicated, attempts, results, expected_changes, status,
                                     records_processed, records_succeeded, records_failed, records_total, provider_job_ids, bulk_run)
             VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid, $5, $6, $7, $8, $9::timestamptz, true, $10::boolean, $11,
                     $12::jsonb, $13::jsonb, $14::int, $15::boolean, $16::int, $17::jsonb, $18::int,
                     CASE WHEN $10::boolean THEN 'in_progress' ELSE 'failure' END,
                     $19::bigint, $20::bigint, $21::bigint, $22::bigint, $23::jsonb, COALESCE($24::bigint, 0))
             ON CONFLICT (id) DO UPDATE SET
                 provider_done = true, provider_success = EXCLUDED.provider_success, record_id = EXCLUDED.record_id,
                 result_data = EXCLUDED.result_data, errors = EXCLUDED.errors, provider_status = EXCLUDED.provider_status,
                 possibly_duplicated = EXCLUDED.possibly_duplicated, attempts = EXCLUDED.attempts,
                 results = EXCLUDED.results, expected_changes = EXCLUDED.expected_changes,
                 cache_done = operations.changes_done >= EXCLUDED.expected_changes,
                 status = CASE WHEN NOT EXCLUDED.provider_success THEN 'failure'
                               WHEN operations.changes_done >= EXCLUDED.expected_changes THEN 'success' ELSE 'in_progress' END,
                 -- A bulk write's final counts come with its result, so that the final status is never seen
                 -- with earlier counts (its progress messages may be recorded after it).
                 \(final("records_processed")), \(final("records_succeeded")), \(final("records_failed")),
                 \(final("records_total")), \(final("provider_job_ids")),
                 bulk_run = GREATEST(operations.bulk_run, EXCLUDED.bulk_run),
                 update_time = now()
             """,
             identity + [result.success ? "true" : "false", result.recordId, data, errors,
                         result.providerStatus.map(String.init), result.possiblyDuplicated ? "true" : "false",
                         String(result.attempts), results, String(Set(result.changedRecords.map(\.recordId)).count)]
                + bulkCounts(result))
        ]
        let provider = result.provider.rawValue
        let status = result.providerStatus.map { " (HTTP \($0))" } ?? ""
        if result.mode == .bulk {
            let counts = result.data ?? [:]
            statements.append(log(
                result.operationId, step: "provider", time: result.completedAt, severity: result.success ? "INFO" : "ERROR",
                message: "bulk \(result.type.rawValue) finished: \(counts["succeeded"]?.scalarText ?? "0") of "
                    + "\(counts["processed"]?.scalarText ?? "0") rows written, \(counts["failed"]?.scalarText ?? "0") failed",
                error: result.error?.message, details: counts))
        } else if let items = result.results {
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
        // A bulk write's rows reach the destination too, but its operation follows the provider's
        // answers (a row counted once per change would cost a statement per row of a million-row file).
        guard change.line == nil else { return [] }
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

    /// A message a service could not read fails its operation, where the letter tells which, unless the
    /// operation already ended.
    static func unreadable(_ letter: DeadLetter) -> [Statement] {
        guard let source = letter.unreadable, let operation = letter.operation else { return [] }
        let errors = (try? JSONCoding.encodeString([letter.error])) ?? "[]"
        return [
            ("""
             INSERT INTO operations (\(columns), provider_done, provider_success, errors, status)
             VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid, $5, $6, $7, $8, $9::timestamptz, true, false, $10::jsonb, 'failure')
             ON CONFLICT (id) DO UPDATE SET status = 'failure', errors = EXCLUDED.errors, update_time = now()
             WHERE operations.status = 'in_progress'
             """,
             [operation.operationId, operation.projectId, operation.integrationId, operation.installationId, operation.groupRef,
              operation.objectName, operation.type, operation.mode, letter.failedAt, errors]),
            log(operation.operationId, step: "unreadable:\(source.topic):\(source.partition):\(source.offset)", time: letter.failedAt,
                severity: "ERROR", message: "\(source.service) could not read this operation's message of \(source.topic); the write was stopped",
                error: letter.error.message,
                details: ["topic": .string(source.topic), "partition": .number(Double(source.partition)),
                          "offset": .number(Double(source.offset))]),
        ]
    }
}

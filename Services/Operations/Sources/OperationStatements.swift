import Postgres
import Shared

/// The SQL that records what happens to operations, a batch of inputs at a time: an operation accepted,
/// answered by its provider, its records held by the destination, a bulk write's progress, a message some
/// service could not read. Inputs of the first three kinds become one statement per kind for the whole
/// batch, each upserting every operation it names at once (`unnest` of one array per column), and one
/// statement takes every log row (a redelivered step is not logged twice).
enum OperationStatements {
    typealias Statement = (sql: String, parameters: [String?])

    /// One message's content, read.
    enum Input: Sendable {
        case accepted(AcceptedRequest)
        case answered(AnsweredResult)
        case cached(CacheUpdateMessage)
        case progressed(BulkProgressMessage)
        case unreadable(DeadLetter)

        /// The operation it is about, where it names one.
        var operationId: String? {
            switch self {
            case .accepted(let request): request.operationId
            case .answered(let result): result.operationId
            case .cached(let update): update.identity.operationId
            case .progressed(let progress): progress.identity.operationId
            case .unreadable(let letter): letter.operation?.operationId
            }
        }
    }

    /// One row of `operation_logs`.
    struct LogRow: Sendable {
        var operationId: String
        var step: String
        var time: String
        var severity: String
        var message: String
    }

    /// Rows for an `unnest` of one array per column.
    struct Columns {
        private var columns: [[String?]]

        init(_ count: Int) { columns = Array(repeating: [], count: count) }

        var isEmpty: Bool { columns[0].isEmpty }
        /// The rows appended so far.
        var count: Int { columns[0].count }

        mutating func append(_ row: [String?]) {
            precondition(row.count == columns.count, "a row of \(row.count) values for \(columns.count) columns")
            for (index, value) in row.enumerated() { columns[index].append(value) }
        }

        var parameters: [String?] { columns.map { PostgresArray.literal($0) } }
    }

    /// The statements of a batch, to apply in this order in one transaction. Every input commutes with
    /// every other (the topics deliver them in any order), so inputs of one kind go together. A
    /// statement may upsert a row only once, so repeats of an operation within a kind are merged in the
    /// statement: the earliest acceptance, the last answer, every record held (each counted once).
    /// Rows are locked in the order of their operations, so two batches lock alike.
    static func batch(_ inputs: [Input]) -> [Statement] {
        var accepted = Columns(13)
        var requests = Columns(2)
        var answered = Columns(26)
        // The destination's updates (one row each, with the first record's id) and their records.
        var cached = Columns(10)
        var cachedRecords = Columns(4)
        var logs: [LogRow] = []
        var others: [Statement] = []
        for input in inputs {
            switch input {
            case .accepted(let request):
                var header: String?, single = false, recordId: String?
                switch request.payload {
                case .single(let id):
                    // Its acceptance is logged by its row (`operation_log_lines`).
                    (single, recordId) = (true, id)
                case .batch: logs.append(acceptedLog(request))
                case .bulk(let bulk):
                    header = try? JSONCoding.encodeString(bulk.header)
                    logs.append(acceptedLog(request))
                }
                accepted.append(identity(request.identity, mode: request.mode, time: request.acceptedAt)
                                + [header, single ? "true" : "false", recordId, request.resentFrom])
                requests.append([request.operationId, request.message])
            case .answered(let result):
                answered.append(answeredRow(result))
                logs += answeredLogs(result, providerLineInRow: result.isSingle)
            case .cached(let update):
                // (A bulk write's rows reach the destination too, but its operation follows the provider's
                // answers: their updates come here with no records.)
                guard let first = update.records.first else { continue }
                cached.append(identity(update.identity, mode: .asynchronous, time: update.updatedAt) + [first.recordId])
                let ordinal = String(cached.count)
                for record in update.records {
                    cachedRecords.append([ordinal, record.recordId, String(record.version), record.applied ? "true" : "false"])
                }
            case .progressed(let progress):
                others += progressed(progress)
                logs += progressLogs(progress)
            case .unreadable(let letter):
                guard let statement = unreadable(letter) else { continue }
                others.append(statement.upsert)
                logs.append(statement.log)
            }
        }
        var statements: [Statement] = []
        if !accepted.isEmpty {
            statements.append((acceptSQL, accepted.parameters))
            statements.append((requestSQL, requests.parameters))
        }
        if !answered.isEmpty { statements.append((answerSQL, answered.parameters)) }
        if !cached.isEmpty { statements.append((cacheSQL, cached.parameters + cachedRecords.parameters)) }
        statements += others
        if !logs.isEmpty { statements.append(logStatement(logs)) }
        return statements
    }

    // MARK: identity

    static let columns = "id, project_id, integration_id, installation_id, group_ref, object_name, write_type, mode, create_time"
    /// The identity columns of an `unnest`, as `g.` columns, with their types.
    static let identityTypes = ["uuid", "uuid", "uuid", "uuid", "text", "text", "text", "text", "timestamptz"]

    static func identity(_ id: OperationIdentity, mode: WriteMode, time: String) -> [String?] {
        [id.operationId, id.projectId, id.integrationId, id.installationId, id.groupRef, id.objectName, id.type.rawValue, mode.rawValue, time]
    }

    /// `unnest($first::type[], …) WITH ORDINALITY AS g(names…, n)`.
    static func unnest(_ names: [String], _ types: [String], from first: Int = 1, as alias: String = "g") -> String {
        let arrays = types.enumerated().map { "$\(first + $0.offset)::\($0.element)[]" }.joined(separator: ", ")
        return "unnest(\(arrays)) WITH ORDINALITY AS \(alias)(\((names + ["n"]).joined(separator: ", ")))"
    }

    static let identityNames = columns.components(separatedBy: ", ")

    // MARK: accepted

    /// An operation accepted: inserted, or its acceptance time made the earliest of those seen.
    static let acceptSQL = """
        INSERT INTO operations (\(columns), bulk_header, single_accepted, request_record_id, resent_from)
        SELECT DISTINCT ON (g.id) \(identityNames.map { "g.\($0)" }.joined(separator: ", ")), g.bulk_header, g.single, g.record_id,
               g.resent_from
        FROM \(unnest(identityNames + ["bulk_header", "single", "record_id", "resent_from"], identityTypes + ["jsonb", "boolean", "text", "uuid"]))
        ORDER BY g.id, g.create_time
        ON CONFLICT (id) DO UPDATE SET create_time = LEAST(operations.create_time, EXCLUDED.create_time), mode = EXCLUDED.mode,
            bulk_header = EXCLUDED.bulk_header, single_accepted = EXCLUDED.single_accepted,
            request_record_id = EXCLUDED.request_record_id, resent_from = EXCLUDED.resent_from
        """

    /// Each accepted request's message, once (a repeat of it is the same request).
    static let requestSQL = """
        INSERT INTO operation_requests (operation_id, message)
        SELECT DISTINCT ON (g.id) g.id, g.message FROM \(unnest(["id", "message"], ["uuid", "text"])) ORDER BY g.id
        ON CONFLICT (operation_id) DO NOTHING
        """

    static func acceptedLog(_ request: AcceptedRequest) -> LogRow {
        let type = request.identity.type.rawValue, objectName = request.identity.objectName
        let message: String
        var recordId: String?
        switch request.payload {
        case .batch(let count):
            message = "batch \(type) of \(count) \(objectName) records accepted (\(request.mode.rawValue))"
        case .bulk(let bulk):
            let source = bulk.recordsURL == nil ? "recordsCSV" : "recordsURL"
            message = "bulk \(type) of \(objectName) records accepted from \(source)"
                + (bulk.bytes.map { " (\($0) bytes)" } ?? "") + ", rows identified by \(bulk.primaryKey)"
        case .single(let id):
            message = "\(type) of \(objectName) accepted (\(request.mode.rawValue))"
            recordId = id
        }
        return log(request.operationId, step: "accepted", time: request.acceptedAt, severity: "INFO", message: message,
                   details: ["groupRef": .string(request.identity.groupRef), "recordId": recordId.map(JSONValue.string) ?? .null])
    }

    // MARK: answered

    private static let answerColumns: [(String, String)] = [
        ("success", "boolean"), ("record_id", "text"), ("result_data", "jsonb"), ("errors", "jsonb"), ("provider_status", "int"),
        ("possibly_duplicated", "boolean"), ("attempts", "int"), ("results", "jsonb"), ("expected_changes", "int"),
        ("processed", "bigint"), ("succeeded", "bigint"), ("failed", "bigint"), ("total", "bigint"), ("job_ids", "jsonb"), ("run", "bigint"),
        ("provider", "text"), ("provider_time", "timestamptz"),
    ]

    /// The provider's answer: the operation is done at the provider; it succeeds once the destination
    /// holds each record it changed. Of two answers to one operation in a batch, the later counts.
    static let answerSQL: String = {
        /// The answer's final count of its reading, unless a later reading already counts.
        func final(_ column: String) -> String {
            "\(column) = CASE WHEN EXCLUDED.records_processed IS NOT NULL AND EXCLUDED.bulk_run >= operations.bulk_run "
                + "THEN EXCLUDED.\(column) ELSE operations.\(column) END"
        }
        return """
            INSERT INTO operations (\(columns), provider_done, provider_success, record_id, result_data, errors,
                                    provider_status, possibly_duplicated, attempts, results, expected_changes, status,
                                    records_processed, records_succeeded, records_failed, records_total, provider_job_ids, bulk_run,
                                    provider, provider_time)
            SELECT DISTINCT ON (g.id) \(identityNames.map { "g.\($0)" }.joined(separator: ", ")), true, g.success, g.record_id,
                   g.result_data, g.errors, g.provider_status, g.possibly_duplicated, g.attempts, g.results, g.expected_changes,
                   CASE WHEN g.success THEN 'in_progress' ELSE 'failure' END,
                   g.processed, g.succeeded, g.failed, g.total, g.job_ids, COALESCE(g.run, 0), g.provider, g.provider_time
            FROM \(unnest(identityNames + answerColumns.map(\.0), identityTypes + answerColumns.map(\.1)))
            ORDER BY g.id, g.n DESC
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
                provider = EXCLUDED.provider, provider_time = EXCLUDED.provider_time,
                update_time = now()
            """
    }()

    static func answeredRow(_ result: AnsweredResult) -> [String?] {
        let errors = result.error.map { (try? JSONCoding.encodeString([$0])) ?? "[]" }
        return identity(result.identity, mode: result.mode, time: result.completedAt)
            + [result.success ? "true" : "false", result.recordId, result.data, errors,
               result.providerStatus.map(String.init), result.possiblyDuplicated ? "true" : "false", String(result.attempts),
               result.results, String(result.changed)]
            + bulkCounts(result)
            // A single write's answer is logged by its row (`operation_log_lines`).
            + (result.isSingle ? [result.provider.rawValue, result.completedAt] : [nil, nil])
    }

    /// A bulk result's final counts, jobs and reading (all nil for other writes).
    private static func bulkCounts(_ result: AnsweredResult) -> [String?] {
        guard let data = result.counts else { return [nil, nil, nil, nil, nil, nil] }
        let count = { (key: String) in data[key]?.scalarText.flatMap { Double($0) }.map { String(Int($0)) } }
        return [count("processed"), count("succeeded"), count("failed"), count("total"),
                data["jobIds"].flatMap { try? JSONCoding.encodeString($0) }, count("run")]
    }

    /// The log rows of an answer; `providerLineInRow`: the provider's line is told by the operation's row
    /// (a single write's), not stored.
    static func answeredLogs(_ result: AnsweredResult, providerLineInRow: Bool = false) -> [LogRow] {
        let provider = result.provider.rawValue
        let status = result.providerStatus.map { " (HTTP \($0))" } ?? ""
        var logs: [LogRow] = []
        if result.mode == .bulk {
            let counts = result.counts ?? [:]
            logs.append(log(
                result.operationId, step: "provider", time: result.completedAt, severity: result.success ? "INFO" : "ERROR",
                message: "bulk \(result.type.rawValue) finished: \(counts["succeeded"]?.scalarText ?? "0") of "
                    + "\(counts["processed"]?.scalarText ?? "0") rows written, \(counts["failed"]?.scalarText ?? "0") failed",
                error: result.error?.message, details: counts))
        } else if let items = result.items {
            logs.append(log(
                result.operationId, step: "provider", time: result.completedAt,
                severity: result.successCount > 0 ? "INFO" : "ERROR",
                message: "\(provider) applied the \(result.type.rawValue) of \(result.successCount) of \(items.count) records\(status)",
                error: result.successCount > 0 ? nil : result.error?.message,
                details: ["successCount": .number(Double(result.successCount)), "failureCount": .number(Double(result.failureCount)),
                          "calls": .number(Double(result.attempts))]))
            for (index, item) in items.enumerated() where !item.success {
                logs.append(log(
                    result.operationId, step: "record:\(index)", time: result.completedAt, severity: "ERROR",
                    message: "batch[\(index)] was not written", error: item.error?.message,
                    details: ["index": .number(Double(index)), "recordId": item.recordId.map(JSONValue.string) ?? .null,
                              "code": item.error?.code.map(JSONValue.string) ?? .null]))
            }
        } else if providerLineInRow {
            // Told by the operation's row.
        } else if result.success {
            logs.append(log(
                result.operationId, step: "provider", time: result.completedAt, severity: "INFO",
                message: "\(provider) applied the \(result.type.rawValue)\(status)",
                details: ["recordId": result.recordId.map(JSONValue.string) ?? .null, "calls": .number(Double(result.attempts))]))
        } else {
            let error = result.error
            logs.append(log(
                result.operationId, step: "provider", time: result.completedAt, severity: "ERROR",
                message: error?.deadLettered == true ? "write dead-lettered" : "\(provider) rejected the \(result.type.rawValue)\(status)",
                error: error?.message,
                details: ["code": error?.code.map(JSONValue.string) ?? .null, "calls": .number(Double(result.attempts))]))
        }
        if result.possiblyDuplicated {
            logs.append(log(
                result.operationId, step: "possible-duplicate", time: result.completedAt, severity: "WARN",
                message: "the provider call was in flight when a writer stopped and was sent again; the provider may have applied it twice"))
        }
        return logs
    }

    // MARK: cached

    /// Records the destination holds: each counted once however often its update is delivered (it goes
    /// into operation_changes once, and the operation adds what went in); the operation succeeds once
    /// the provider answered and every record it changed is held. A change's row is its log line too
    /// (`destinationLogs` reads it as one): when, which version, applied or not. An update's identity
    /// is sent once with the id of its first record, and each record with the
    /// update's place (`n`) in that list.
    static let cacheSQL = """
        WITH updates AS (
            SELECT * FROM \(unnest(identityNames + ["record_id"], identityTypes + ["text"], as: "u"))
        ),
        given AS (
            SELECT u.id, c.record_id, u.create_time, c.version, c.applied, c.n
            FROM \(unnest(["update_n", "record_id", "version", "applied"], ["int", "text", "bigint", "boolean"], from: identityNames.count + 2,
                          as: "c"))
            JOIN updates u ON u.n = c.update_n
        ),
        inserted AS (
            INSERT INTO operation_changes (operation_id, record_id, logged_at, version, applied)
            SELECT DISTINCT ON (id, record_id) id, record_id, create_time, version, applied FROM given ORDER BY id, record_id, n
            ON CONFLICT DO NOTHING RETURNING operation_id
        ),
        counted AS (SELECT operation_id, count(*) AS changes FROM inserted GROUP BY operation_id)
        INSERT INTO operations (\(columns), cache_done, record_id, changes_done)
        SELECT DISTINCT ON (u.id) \(identityNames.map { "u.\($0)" }.joined(separator: ", ")), true, u.record_id, COALESCE(c.changes, 0)
        FROM updates u LEFT JOIN counted c ON c.operation_id = u.id
        ORDER BY u.id, u.n
        ON CONFLICT (id) DO UPDATE SET
            changes_done = operations.changes_done + EXCLUDED.changes_done,
            cache_done = operations.changes_done + EXCLUDED.changes_done >= operations.expected_changes,
            status = CASE WHEN operations.provider_done AND operations.provider_success
                               AND operations.changes_done + EXCLUDED.changes_done >= operations.expected_changes
                          THEN 'success' ELSE operations.status END,
            update_time = now()
        """

    // MARK: progress

    /// A bulk write's progress: its counts (a later reading of the CSV replaces an earlier one's; within
    /// a reading they only grow), its provider jobs, and a failure row per refused row.
    static func progressed(_ progress: BulkProgressMessage) -> [Statement] {
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
             identity(progress.identity, mode: .bulk, time: progress.time)
                + [String(progress.run), String(progress.processed), String(progress.succeeded), String(progress.failed),
                   progress.total.map(String.init), (try? JSONCoding.encodeString(progress.jobIds)) ?? "[]"]),
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
        }
        return statements
    }

    /// A log line for the progress, and one per refused row.
    static func progressLogs(_ progress: BulkProgressMessage) -> [LogRow] {
        var logs = [log(
            progress.operationId, step: "progress:\(progress.run):\(progress.processed)\(progress.total == nil ? "" : ":end")",
            time: progress.time, severity: "INFO",
            message: "\(progress.processed) rows read\(progress.total == nil ? "" : " (all)"): "
                + "\(progress.succeeded) written, \(progress.failed) failed",
            details: ["processed": .number(Double(progress.processed)), "succeeded": .number(Double(progress.succeeded)),
                      "failed": .number(Double(progress.failed)), "jobIds": .array(progress.jobIds.map(JSONValue.string))])]
        for failure in progress.failures {
            logs.append(log(
                progress.operationId, step: "row:\(failure.line)", time: progress.time, severity: "ERROR",
                message: "line \(failure.line) (primary key \(failure.primaryKey)) was not written", error: failure.error,
                details: ["line": .number(Double(failure.line)), "primaryKey": .string(failure.primaryKey),
                          "code": failure.code.map(JSONValue.string) ?? .null]))
        }
        return logs
    }

    // MARK: unreadable

    /// A message a service could not read fails its operation, where the letter tells which, unless the
    /// operation already ended.
    static func unreadable(_ letter: DeadLetter) -> (upsert: Statement, log: LogRow)? {
        guard let source = letter.unreadable, let operation = letter.operation else { return nil }
        let errors = (try? JSONCoding.encodeString([letter.error])) ?? "[]"
        return (
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
                          "offset": .number(Double(source.offset))])
        )
    }

    // MARK: logs

    static func log(_ operationId: String, step: String, time: String, severity: String, message: String, error: String? = nil,
                    details: [String: JSONValue] = [:]) -> LogRow
    {
        var body: [String: JSONValue] = ["msg": .string(message), "operation_id": .string(operationId)]
        if let error { body["error"] = .string(error) }
        if !details.isEmpty { body["details"] = .object(details) }
        return LogRow(operationId: operationId, step: step, time: time, severity: severity,
                      message: (try? JSONCoding.encodeString(body)) ?? "{}")
    }

    /// Every log row of a batch in one statement; a step logged already is kept as it was.
    static func logStatement(_ rows: [LogRow]) -> Statement {
        var columns = Columns(5)
        for row in rows { columns.append([row.operationId, row.step, row.time, row.severity, row.message]) }
        return ("""
            INSERT INTO operation_logs (operation_id, step, logged_at, severity, message)
            SELECT g.operation_id, g.step, g.logged_at, g.severity, g.message
            FROM \(unnest(["operation_id", "step", "logged_at", "severity", "message"], ["uuid", "text", "timestamptz", "text", "jsonb"]))
            ORDER BY g.operation_id, g.step
            ON CONFLICT DO NOTHING
            """, columns.parameters)
    }
}

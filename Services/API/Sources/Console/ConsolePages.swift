import Foundation
import Hummingbird
import Postgres
import Schema
import Secrets
import Shared

/// A member of a JSON value by its dotted path (`metadata.errors.0.message`).
func consoleValue(_ value: JSONValue, _ path: String) -> JSONValue? {
    var current: JSONValue? = value
    for part in path.split(separator: ".") {
        if let index = Int(part) {
            guard let items = current?.arrayValue, index < items.count else { return nil }
            current = items[index]
        } else {
            current = current?[String(part)]
        }
    }
    return current
}

/// A time as the console shows it: UTC, to the second.
func consoleTime(_ column: String) -> String {
    "to_char(\(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
}

// MARK: operations

extension ConsoleController {
    /// The filters of the operations page, read from its query; a value that is not one is a 400 naming it.
    struct OperationFilters {
        static let statuses = [("", "any"), ("in_progress", "in progress"), ("success", "succeeded"), ("failure", "failed"),
                               ("dead_lettered", "dead-lettered")]
        static let limits = [25, 50, 100, 500]

        var integration: String?
        var groupRef: String?
        var status: String?
        var type: String?
        var from: String?
        var to: String?
        var before: String?
        var limit = 50

        init(_ query: [String: String]) throws {
            func value(_ name: String) -> String? {
                query[name].map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
            }
            integration = value("integration")
            groupRef = value("groupRef")
            status = value("status")
            if let status, !Self.statuses.contains(where: { $0.0 == status }) {
                throw Problem.badRequest("status must be one of in_progress, success, failure, dead_lettered", in: "query", name: "status")
            }
            type = value("type")
            if let type, WriteType(rawValue: type) == nil {
                throw Problem.badRequest("type must be one of \(WriteType.allCases.map(\.rawValue).joined(separator: ", "))", in: "query", name: "type")
            }
            from = try value("from").map { try Self.time($0, name: "from") }
            to = try value("to").map { try Self.time($0, name: "to") }
            if let text = value("before") {
                guard let id = normalizedUUID(text) else { throw Problem.badRequest("before must be an operation id", in: "query", name: "before") }
                before = id
            }
            if let text = value("limit") {
                guard let limit = Int(text), (1...500).contains(limit) else {
                    throw Problem.badRequest("limit must be a whole number from 1 to 500", in: "query", name: "limit")
                }
                self.limit = limit
            }
        }

        /// A `datetime-local` value (`2026-12-06T10:00` or with seconds), read as UTC.
        static func time(_ text: String, name: String) throws -> String {
            let pattern = #/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?Z?$/#
            let normalized = text.replacingOccurrences(of: " ", with: "T").replacingOccurrences(of: "Z", with: "")
            // A date that is one (not 2026-13-45): read back, it is the same day and minute.
            let minute = String(normalized.prefix(16))
            guard text.wholeMatch(of: pattern) != nil, let date = Timestamp.parse(minute + ":00Z"),
                  Timestamp.format(date).hasPrefix(minute), normalized.count < 17 || Int(normalized.dropFirst(17).prefix(2)) ?? 0 < 60
            else {
                throw Problem.badRequest("\(name) must be a time such as 2026-12-06T10:00 (UTC)", in: "query", name: name)
            }
            return normalized
        }

        /// The page's query with `changes` (nil removes a value).
        func query(_ changes: [String: String?] = [:]) -> String {
            var values: [(String, String?)] = [("integration", integration), ("groupRef", groupRef), ("status", status), ("type", type),
                                               ("from", from), ("to", to), ("limit", limit == 50 ? nil : String(limit)), ("before", nil)]
            for (index, (name, _)) in values.enumerated() where changes.keys.contains(name) { values[index].1 = changes[name]! }
            let parts = values.compactMap { name, value in value.map { "\(name)=\(Self.escape($0))" } }
            return "/console/operations" + (parts.isEmpty ? "" : "?" + parts.joined(separator: "&"))
        }

        static func escape(_ text: String) -> String {
            text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~:"))) ?? text
        }
    }

    func operationsPage(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let query = Dictionary(request.uri.queryParameters.map { (String($0.key), String($0.value)) }, uniquingKeysWith: { $1 })
        let filters = try OperationFilters(query)
        // The page and the project's integrations (names for the rows and the filter), in one round trip.
        let results = try await database.pipeline([
            PostgresPool.customPlans,
            ("""
             SELECT id::text AS id, integration_id::text AS integration_id, group_ref, object_name, write_type, mode, status, record_id,
                    errors -> 0 ->> 'message' AS error, COALESCE((errors -> 0 ->> 'deadLettered')::boolean, false) AS dead_lettered,
                    records_processed, records_succeeded, records_failed, jsonb_array_length(results) AS batch_size,
                    (SELECT count(*) FROM jsonb_array_elements(results) r WHERE r @> '{"success": true}') AS batch_succeeded,
                    \(consoleTime("create_time")) AS created
             FROM operations
             WHERE project_id = $1::uuid
               AND ($2::text IS NULL OR integration_id = (SELECT id FROM integrations WHERE project_id = $1::uuid AND name = $2))
               AND ($3::text IS NULL OR group_ref = $3)
               AND ($4::text IS NULL OR CASE WHEN $4 = 'dead_lettered' THEN status = 'failure' AND errors @> '[{"deadLettered": true}]'
                                            ELSE status = $4 END)
               AND ($5::text IS NULL OR write_type = $5)
               AND ($6::timestamp IS NULL OR create_time >= $6::timestamp AT TIME ZONE 'UTC')
               AND ($7::timestamp IS NULL OR create_time < $7::timestamp AT TIME ZONE 'UTC')
               AND ($8::uuid IS NULL OR (create_time, id) < (SELECT create_time, id FROM operations WHERE id = $8::uuid AND project_id = $1::uuid))
             ORDER BY create_time DESC, id DESC
             LIMIT $9::int
             """,
             [project.id, filters.integration, filters.groupRef, filters.status, filters.type, filters.from, filters.to, filters.before,
              String(filters.limit + 1)]),
            ("SELECT id::text AS id, name FROM integrations WHERE project_id = $1::uuid ORDER BY name", [project.id]),
        ])
        let rows = results[1]
        let integrations = try results[2].rows.map { (id: try $0.string("id"), name: try $0.string("name")) }
        if let name = filters.integration, !integrations.contains(where: { $0.name == name }) {
            throw Problem.badRequest("integration '\(name)' is not one of this project's", in: "query", name: "integration")
        }
        var names: [String: String] = [:]
        for integration in integrations { names[integration.id] = integration.name }
        let page = rows.rows.prefix(filters.limit)
        // A page's rows from their columns alone (a batch's results are counted in SQL, not read here).
        let listed: [[String: Any]] = try page.map { row in
            let status = try row.string("status"), writeType = try row.string("write_type"), objectName = try row.string("object_name")
            let id = try row.string("id")
            let bulk = try row.string("mode") == WriteMode.bulk.rawValue
                ? (row.int("records_processed") ?? 0, row.int("records_succeeded") ?? 0, row.int("records_failed") ?? 0) : nil
            let batch = row.int("batch_size").map { size in (size, row.int("batch_succeeded") ?? 0, size - (row.int("batch_succeeded") ?? 0)) }
            var listed: [String: Any] = [
                "id": id, "shortId": String(id.suffix(8)), "created": try row.string("created"), "status": status,
                "statusLabel": Self.statusLabel(status, deadLettered: row.bool("dead_lettered") == true),
                "writeType": writeType, "objectName": objectName, "mode": try row.string("mode"),
                "integration": names[try row.string("integration_id")] ?? "", "groupRef": try row.string("group_ref"),
                "summary": OperationView.summary(status: status, writeType: writeType, objectName: objectName, recordId: row["record_id"],
                                                 bulk: bulk, batch: batch),
            ]
            listed["error"] = row["error"]
            return listed
        }
        var values: [String: Any] = [
            "title": "Operations", "heading": filters.status == "dead_lettered" ? "Dead-lettered writes" : "Operations",
            "rows": listed, "hasRows": !listed.isEmpty,
            "filters": ["groupRef": filters.groupRef ?? "", "from": filters.from ?? "", "to": filters.to ?? ""],
        ]
        values["integrations"] = integrations.map { integration -> [String: Any] in
            ["name": integration.name, "selected": integration.name == filters.integration]
        }
        values["statuses"] = OperationFilters.statuses.map { status -> [String: Any] in
            ["value": status.0, "label": status.1, "selected": status.0 == (filters.status ?? "")]
        }
        let types: [(String, String)] = [("", "any")] + WriteType.allCases.map { ($0.rawValue, $0.rawValue) }
        values["types"] = types.map { type -> [String: Any] in ["value": type.0, "label": type.1, "selected": type.0 == (filters.type ?? "")] }
        values["limits"] = OperationFilters.limits.map { limit -> [String: Any] in ["value": limit, "selected": limit == filters.limit] }
        if rows.count > filters.limit, let last = page.last?["id"] { values["older"] = filters.query(["before": last]) }
        if filters.before != nil { values["newest"] = filters.query() }
        return Self.page("operations", values, context: context, nav: filters.status == "dead_lettered" ? "navDeadLetters" : "navOperations")
    }

    static func statusLabel(_ status: String, deadLettered: Bool) -> String {
        switch status {
        case "success": "succeeded"
        case "failure": deadLettered ? "dead-lettered" : "failed"
        default: "in progress"
        }
    }

    /// How many log lines an operation's page shows.
    static let logLines = 500

    func operationPage(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let text = context.path("operation")
        guard let id = normalizedUUID(text) else { throw Problem.notFound("operation \(text) was not found", name: "operationId") }
        let results = try await database.pipeline([
            ("""
             SELECT \(OperationView.columns), resent_from::text AS resent_from, \(consoleTime("create_time")) AS created,
                    \(consoleTime("update_time")) AS updated, (SELECT name FROM integrations WHERE id = integration_id) AS integration,
                    (SELECT message FROM operation_requests WHERE operation_id = id) AS request,
                    (SELECT id::text FROM operations r WHERE r.resent_from = operations.id ORDER BY create_time LIMIT 1) AS resent_as
             FROM operations WHERE id = $1::uuid AND project_id = $2::uuid
             """, [id, project.id]),
            // Its first log lines (a bulk write logs every refused row, which the failed rows show apart).
            ("""
             SELECT \(consoleTime("logged_at")) AS time, severity, message->>'msg' AS message, (message->'details')::text AS details
             FROM operation_log_lines WHERE operation_id = $1::uuid
               AND EXISTS (SELECT 1 FROM operations WHERE id = $1::uuid AND project_id = $2::uuid)
             ORDER BY logged_at, step LIMIT \(Self.logLines)
             """, [id, project.id]),
            ("""
             SELECT line, error, row::text AS row FROM bulk_failures
             WHERE operation_id = $1::uuid
               AND run = (SELECT bulk_run FROM operations WHERE id = $1::uuid AND project_id = $2::uuid) ORDER BY line LIMIT 20
             """, [id, project.id]),
        ])
        guard let row = results[0].first else {
            // Sent again a moment ago: its operation is recorded once the operations service reads it.
            if request.uri.queryParameters["sent"] != nil {
                return Self.page("error", ["title": "Sent", "heading": "Sent again",
                                           "detail": "Operation \(id) is on its way; this page shows it as soon as it is recorded.",
                                           "refresh": 1], context: context, nav: "navOperations")
            }
            throw Problem.notFound("operation \(id) was not found in project \(project.name)", name: "operationId")
        }
        let operation = try OperationView.json(row)
        let status = try row.string("status")
        let deadLettered = consoleValue(operation, "metadata.errors.0.deadLettered") == true
        let message = row["request"].flatMap { try? JSONCoding.decode(WriteRequestMessage.self, from: Array($0.utf8)) }
        var values: [String: Any] = [
            "title": "Operation \(id.prefix(8))", "id": id, "status": status, "statusLabel": Self.statusLabel(status, deadLettered: deadLettered),
            "summary": operation["result"]?.stringValue ?? "",
        ]
        values["writeType"] = try row.string("write_type")
        values["objectName"] = try row.string("object_name")
        values["mode"] = try row.string("mode")
        values["integration"] = row["integration"] ?? ""
        let groupRef = try row.string("group_ref")
        values["groupRef"] = groupRef
        values["groupRefQuery"] = OperationFilters.escape(groupRef)
        values["installationId"] = try row.string("installation_id")
        values["recordId"] = row["record_id"]
        values["providerStatus"] = row["provider_status"]
        values["attempts"] = row.int("attempts") ?? 0
        values["created"] = try row.string("created")
        values["updated"] = try row.string("updated")
        values["resentFrom"] = row["resent_from"]
        values["resentAs"] = row["resent_as"]
        let errors: [JSONValue] = consoleValue(operation, "metadata.errors")?.arrayValue ?? []
        values["errors"] = errors.map { error -> [String: Any] in
            let code: String? = error["code"]?.stringValue
            var shown: [String: Any] = ["message": error["message"]?.stringValue ?? "", "deadLettered": error["deadLettered"] == true]
            shown["code"] = code
            return shown
        }
        values["json"] = Self.pretty(operation)
        values["request"] = row["request"].map { Self.pretty(requestShown($0)) }
        values["canResend"] = status == "failure" && message != nil && message?.content.bulk == nil && row["resent_as"] == nil
        values["possiblyDuplicated"] = row.bool("possibly_duplicated") == true
        if results[1].count == Self.logLines { values["moreLogs"] = Self.logLines }
        values["logs"] = try results[1].rows.map { line -> [String: Any] in
            let details: String? = line["details"].flatMap { $0 == "null" || $0 == "{}" ? nil : $0 }
            var shown: [String: Any] = ["time": try line.string("time"), "severity": try line.string("severity"), "message": line["message"] ?? ""]
            shown["details"] = details
            return shown
        }
        if status == "in_progress" { values["refresh"] = 2 }
        if let progress = consoleValue(operation, "metadata.progress") {
            let processed = Int(progress["processed"]?.scalarText ?? "") ?? 0
            let total = progress["total"]?.scalarText.flatMap { Int($0) }
            let failedRows: [[String: Any]] = try results[2].rows.map { failure in
                let fields = failure["row"].flatMap { try? JSONCoding.decode([String].self, from: $0) } ?? []
                return ["line": try failure.string("line"), "error": failure["error"] ?? "", "row": fields.joined(separator: ", ")]
            }
            var shown: [String: Any] = ["processed": processed, "total": total.map(String.init) ?? "", "totalLabel": total.map(String.init) ?? "?"]
            shown["percent"] = total.map { $0 > 0 ? min(100, processed * 100 / $0) : 100 } ?? (status == "in_progress" ? 0 : 100)
            shown["succeeded"] = Int(progress["succeeded"]?.scalarText ?? "") ?? 0
            shown["failed"] = Int(progress["failed"]?.scalarText ?? "") ?? 0
            shown["failedRows"] = failedRows
            shown["hasFailedRows"] = !failedRows.isEmpty
            shown["id"] = id
            values["progress"] = shown
        }
        return Self.page("operation", values, context: context, nav: deadLettered ? "navDeadLetters" : "navOperations")
    }

    /// The request as the page shows it: the write-requests message without what only the pipeline uses.
    func requestShown(_ text: String) -> JSONValue {
        guard var object = (try? JSONCoding.decode(JSONValue.self, from: Array(text.utf8)))?.objectValue else { return .string(text) }
        object["replyTo"] = nil
        // A bulk file's URL may carry a signature or a user's password: its scheme, host and path only.
        if var bulk = object["bulk"]?.objectValue, let url = bulk["recordsURL"]?.stringValue {
            bulk["recordsURL"] = .string(URL(string: url).flatMap { url in
                url.host.map { "\(url.scheme ?? "https")://\($0)\(url.port.map { ":\($0)" } ?? "")\(url.path)" }
            } ?? "(not shown)")
            object["bulk"] = .object(bulk)
        }
        return .object(object)
    }

    static func pretty(_ value: JSONValue) -> String {
        guard let data = try? JSONCoding.encode(value),
              let object = try? JSONSerialization.jsonObject(with: Data(data), options: [.fragmentsAllowed]),
              let pretty = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
        else { return "" }
        return String(decoding: pretty, as: UTF8.self)
    }

    /// Sends a failed write again: its request, as a new asynchronous operation naming the old one. Of a
    /// batch, only the records that failed are sent again (the others were written). The new operation's
    /// id is made from the old one's, so sending one operation again twice (a double click, a form sent
    /// again, a stale page) publishes the same operation, which the writer writes once.
    func resend(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let text = context.path("operation")
        guard let id = normalizedUUID(text) else { throw Problem.notFound("operation \(text) was not found", name: "operationId") }
        let found = try await database.query(
            """
            SELECT o.status, o.possibly_duplicated, o.results::text AS results, r.message,
                   (SELECT n.id::text FROM operations n WHERE n.resent_from = o.id LIMIT 1) AS resent_as
            FROM operations o LEFT JOIN operation_requests r ON r.operation_id = o.id
            WHERE o.id = $1::uuid AND o.project_id = $2::uuid
            """, [id, project.id]).first
        guard let found else { throw Problem.notFound("operation \(id) was not found in project \(project.name)", name: "operationId") }
        if let resent = found["resent_as"] { return Self.redirect("/console/operations/\(resent)") }
        guard try found.string("status") == "failure" else {
            throw Problem.conflict("operation \(id) has not failed; only a failed write is sent again")
        }
        guard found.bool("possibly_duplicated") != true || context.consoleForm?["confirm"] == "duplicate" else {
            throw Problem.conflict("operation \(id) may have reached the provider (a call of it ended without saying whether "
                + "it was applied): check the provider's record, then confirm sending it again")
        }
        guard let text = found["message"], var message = try? JSONCoding.decode(WriteRequestMessage.self, from: Array(text.utf8)) else {
            throw Problem.conflict("operation \(id)'s request was not kept, so it cannot be sent again")
        }
        guard message.content.bulk == nil else {
            throw Problem.conflict("a bulk write is sent again by sending its file again (its failed rows: /console/operations/\(id)/failed-records)")
        }
        if case .batch(let records, let allOrNone) = message.content.payload,
           let results = found["results"].flatMap({ try? JSONCoding.decode([BatchItemResult].self, from: $0) }), results.count == records.count {
            let failed = zip(records, results).filter { !$0.1.success }.map(\.0)
            guard !failed.isEmpty else { throw Problem.conflict("every record of operation \(id) was written; nothing is left to send") }
            message.content.payload = .batch(failed, allOrNone: allOrNone)
        }
        let resent = Self.resendId(of: id)
        message.identity.operationId = resent
        message.content.replyTo = nil
        message.content.acceptedAt = Timestamp.now()
        message.content.resentFrom = id
        if message.content.mode == .synchronous { message.content.mode = .asynchronous }
        _ = try await submitter.submit(message, claim: nil, wait: false)
        logger.info("write sent again from the console", metadata: ["operation": "\(id)", "as": "\(resent)"])
        return Self.redirect("/console/operations/\(resent)?sent=1")
    }

    /// The operation that sends `id` again: a UUID (version 8) made from the old id's SHA-256, the same
    /// every time.
    static func resendId(of id: String) -> String {
        var bytes = Array(Digest.sha256.hash(Array("writeback resend \(id)".utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x80
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        let parts = [hex.prefix(8), hex.dropFirst(8).prefix(4), hex.dropFirst(12).prefix(4), hex.dropFirst(16).prefix(4), hex.dropFirst(20)]
        return parts.map(String.init).joined(separator: "-")
    }
}

// MARK: connections, installations, integrations

extension ConsoleController {
    func connectionsPage(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let rows = try await database.query(
            """
            SELECT c.id::text AS id, c.provider, c.group_ref, c.consumer_ref, c.consumer_name, c.status, \(consoleTime("c.updated_at")) AS updated,
                   COALESCE(s.writes, 0) AS writes, COALESCE(s.failed, 0) AS failed, s.last_error
            FROM connections c
            LEFT JOIN LATERAL (
                SELECT count(*) AS writes, count(*) FILTER (WHERE o.status = 'failure') AS failed,
                       (array_agg(o.errors -> 0 ->> 'message' ORDER BY o.create_time DESC) FILTER (WHERE o.status = 'failure'))[1] AS last_error
                FROM installations i JOIN operations o ON o.installation_id = i.id AND o.create_time > now() - interval '1 hour'
                WHERE i.connection_id = c.id
            ) s ON true
            WHERE c.project_id = $1::uuid
            ORDER BY c.provider, c.group_ref, c.created_at
            """, [project.id])
        let listed: [[String: Any]] = try rows.rows.map { row in
            let writes = row.int("writes") ?? 0, failed = row.int("failed") ?? 0
            let (health, healthClass): (String, String) =
                if try row.string("status") == "bad_credentials" { ("credentials refused: reconnect", "failure") }
                else if writes > 0 && failed == writes { ("failing", "failure") }
                else if failed > 0 { ("some writes failed", "in_progress") }
                else { ("healthy", "success") }
            let consumerName = row["consumer_name"] ?? ""
            return [
                "id": try row.string("id"), "provider": try row.string("provider"), "groupRef": try row.string("group_ref"),
                "consumer": consumerName.isEmpty ? try row.string("consumer_ref") : consumerName, "health": health, "healthClass": healthClass,
                "writes": writes, "failed": failed, "lastError": row["last_error"] ?? "", "updated": try row.string("updated"),
            ]
        }
        return Self.page("connections", ["title": "Connections", "rows": listed], context: context, nav: "navConnections")
    }

    func installationsPage(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let finished = "extract(epoch FROM update_time - create_time) * 1000"
        let results = try await database.pipeline([
            PostgresPool.customPlans,
            ("""
             SELECT i.id::text AS id, n.name AS integration, i.group_ref FROM installations i JOIN integrations n ON n.id = i.integration_id
             WHERE i.project_id = $1::uuid ORDER BY n.name, i.group_ref
             """, [project.id]),
            ("""
             SELECT installation_id::text AS id, count(*) AS total, count(*) FILTER (WHERE status = 'success') AS succeeded,
                    count(*) FILTER (WHERE status = 'failure') AS failed, count(*) FILTER (WHERE status = 'in_progress') AS running,
                    percentile_cont(0.5) WITHIN GROUP (ORDER BY \(finished)) FILTER (WHERE status <> 'in_progress') AS p50,
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY \(finished)) FILTER (WHERE status <> 'in_progress') AS p99
             FROM operations WHERE project_id = $1::uuid AND create_time > now() - interval '1 hour'
             GROUP BY installation_id
             """, [project.id]),
            ("""
             SELECT installation_id::text AS id, least(59, floor(extract(epoch FROM now() - create_time) / 60))::int AS ago, count(*) AS n,
                    percentile_cont(0.99) WITHIN GROUP (ORDER BY \(finished)) FILTER (WHERE status <> 'in_progress') AS p99
             FROM operations WHERE project_id = $1::uuid AND create_time > now() - interval '1 hour'
             GROUP BY 1, 2
             """, [project.id]),
        ])
        var stats: [String: PostgresRow] = [:]
        for row in results[2].rows { if let id = row["id"] { stats[id] = row } }
        var minutes: [String: [ConsoleChart.Minute]] = [:]
        for row in results[3].rows {
            guard let id = row["id"], let ago = row.int("ago") else { continue }
            minutes[id, default: []].append(.init(ago: ago, count: row.int("n") ?? 0, p99: row["p99"].flatMap(Double.init)))
        }
        let listed: [[String: Any]] = try results[1].rows.map { row in
            let id = try row.string("id")
            let stat = stats[id]
            let groupRef = try row.string("group_ref")
            return [
                "id": id, "integration": try row.string("integration"), "groupRef": groupRef, "groupRefQuery": OperationFilters.escape(groupRef),
                "total": stat?.int("total") ?? 0, "succeeded": stat?.int("succeeded") ?? 0, "failed": stat?.int("failed") ?? 0,
                "running": stat?.int("running") ?? 0,
                "p50": Self.milliseconds(stat?["p50"]), "p99": Self.milliseconds(stat?["p99"]),
                "chart": ConsoleChart.svg(minutes[id] ?? []),
            ]
        }
        return Self.page("installations", ["title": "Installations", "rows": listed], context: context, nav: "navInstallations")
    }

    static func milliseconds(_ text: String?) -> String {
        guard let value = text.flatMap(Double.init) else { return "–" }
        return value >= 1000 ? String(format: "%.2f s", value / 1000) : "\(Int(value.rounded())) ms"
    }

    func integrationsPage(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let results = try await database.pipeline([
            ("""
             SELECT n.id::text AS id, n.name, n.provider, n.display_name, n.objects::text AS objects, \(consoleTime("n.updated_at")) AS updated,
                    (SELECT count(*) FROM installations i WHERE i.integration_id = n.id) AS installations
             FROM integrations n WHERE n.project_id = $1::uuid ORDER BY n.name
             """, [project.id]),
            ("""
             SELECT id, integration_id, spec_version, created, latest FROM (
                 SELECT r.id::text AS id, r.integration_id::text AS integration_id, r.spec_version, \(consoleTime("r.created_at")) AS created,
                        r.id = n.latest_revision_id AS latest,
                        row_number() OVER (PARTITION BY r.integration_id ORDER BY r.created_at DESC) AS nth
                 FROM revisions r JOIN integrations n ON n.id = r.integration_id WHERE r.project_id = $1::uuid
             ) recent WHERE nth <= 20 ORDER BY created DESC
             """, [project.id]),
        ])
        var revisions: [String: [[String: Any]]] = [:]
        for row in results[1].rows {
            revisions[try row.string("integration_id"), default: []].append([
                "id": try row.string("id"), "specVersion": try row.string("spec_version"), "created": try row.string("created"),
                "latest": row.bool("latest") ?? false,
            ])
        }
        let listed: [[String: Any]] = try results[0].rows.map { row in
            let id = try row.string("id")
            let objects = row["objects"].flatMap { try? JSONCoding.decode([String].self, from: $0) } ?? []
            return [
                "name": try row.string("name"), "provider": try row.string("provider"), "displayName": row["display_name"].flatMap { $0.isEmpty ? nil : $0 } ?? false,
                "objects": objects.joined(separator: ", "), "installations": row.int("installations") ?? 0, "updated": try row.string("updated"),
                "revisions": revisions[id] ?? [],
            ]
        }
        return Self.page("integrations", ["title": "Integrations", "rows": listed], context: context, nav: "navIntegrations")
    }
}

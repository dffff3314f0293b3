import CSV
import Hummingbird
import Postgres
import Shared

/// `GET /v1/projects/{projectIdOrName}/operations/{operationId}`, `…/logs`, `…/failed-records` and an
/// installation's operations, in the Ampersand shapes.
struct OperationsController: Controller {
    let configuration: APIConfiguration
    let control: ControlData
    let database: PostgresPool

    func addRoutes(to projects: RouterGroup<APIContext>) {
        projects.get("operations/:operation/failed-records") { try await self.failedRecords($0, $1) }
        projects.get("operations/:operation") { try await self.operation($0, $1) }
        projects.get("operations/:operation/logs") { try await self.operationLogs($0, $1) }
        projects.get("integrations/:integration/installations/:installation/operations") { try await self.installationOperations($0, $1) }
    }
}

extension OperationsController {
    func operation(_ request: Request, _ context: APIContext) async throws -> Response {
        let (project, operationId) = try await operationPath(request, context)
        let row = try await database.query(
            "SELECT \(Self.operationColumns) FROM operations WHERE id = $1::uuid AND project_id = $2::uuid",
            [operationId, project]
        ).first
        guard let row else { throw Problem.notFound("operation \(operationId) was not found", name: "operationId") }
        return jsonResponse(200, try JSONCoding.encode(try operationJSON(row)))
    }

    /// `GET …/installations/{installationId}/operations`: the installation's operations, newest first,
    /// `pageSize` (default 100, at most 1000) at a time; `pageToken` is the `nextPageToken` of the page before.
    func installationOperations(_ request: Request, _ context: APIContext) async throws -> Response {
        let (project, _, installation) = try await installationPath(context)
        let pageSize = min(1000, max(1, Int(request.uri.queryParameters["pageSize"].map(String.init) ?? "") ?? 100))
        let before = request.uri.queryParameters["pageToken"].map(String.init)
        let rows = try await database.query(
            """
            SELECT \(Self.operationColumns) FROM operations
            WHERE project_id = $1::uuid AND installation_id = $2::uuid
              AND ($3::text IS NULL OR (create_time, id) < (SELECT create_time, id FROM operations WHERE id = $3::uuid))
            ORDER BY create_time DESC, id DESC LIMIT $4::int
            """, [project.id, installation, before.flatMap(normalizedUUID), String(pageSize + 1)])
        let page = rows.rows.prefix(pageSize)
        var body: [String: JSONValue] = ["operations": .array(try page.map(operationJSON))]
        if rows.count > pageSize, let last = page.last?["id"] { body["pagination"] = ["nextPageToken": .string(last)] }
        return jsonResponse(200, try JSONCoding.encode(body))
    }

    static let operationColumns = """
        id::text AS id, project_id::text AS project_id, integration_id::text AS integration_id,
        installation_id::text AS installation_id, group_ref, object_name, write_type, mode, status, record_id,
        errors::text AS errors, provider_status, possibly_duplicated, attempts, results::text AS results,
        records_processed, records_succeeded, records_failed, records_total, provider_job_ids::text AS provider_job_ids,
        to_char(create_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS create_time,
        to_char(update_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS update_time
        """

    /// An operation in the Ampersand shape.
    func operationJSON(_ row: PostgresRow) throws -> JSONValue {
        let status = try row.string("status")
        let objectName = try row.string("object_name")
        let writeType = try row.string("write_type")
        let recordId = row["record_id"]
        var metadata: [String: JSONValue] = [
            "objects": [.string(objectName)],
            "writeType": .string(writeType),
            "mode": .string(try row.string("mode")),
            "groupRef": .string(try row.string("group_ref")),
            "possiblyDuplicated": .bool(row.bool("possibly_duplicated") ?? false),
            "retry": ["attempts": .number(Double(row.int("attempts") ?? 0))],
            "updateTime": .string(try row.string("update_time")),
        ]
        if let recordId { metadata["recordId"] = .string(recordId) }
        if status == "success", let recordId, writeType != "delete" { metadata["successfulRecordIds"] = [.string(recordId)] }
        if let results = row["results"].flatMap({ try? JSONCoding.decode([BatchItemResult].self, from: $0) }) {
            metadata["batchSize"] = .number(Double(results.count))
            metadata["successCount"] = .number(Double(results.filter(\.success).count))
            metadata["failureCount"] = .number(Double(results.filter { !$0.success }.count))
            metadata["successfulRecordIds"] = .array(results.compactMap { $0.success ? $0.recordId.map(JSONValue.string) : nil })
        }
        let bulk = try row.string("mode") == WriteMode.bulk.rawValue
        if bulk {
            var progress: [String: JSONValue] = [
                "processed": .number(Double(row.int("records_processed") ?? 0)),
                "succeeded": .number(Double(row.int("records_succeeded") ?? 0)),
                "failed": .number(Double(row.int("records_failed") ?? 0)),
            ]
            if let total = row.int("records_total") { progress["total"] = .number(Double(total)) }
            metadata["progress"] = .object(progress)
            if let jobs = row["provider_job_ids"].flatMap({ try? JSONCoding.decode([String].self, from: $0) }) {
                metadata["providerJobIds"] = .array(jobs.map(JSONValue.string))
            }
            if (row.int("records_failed") ?? 0) > 0 {
                metadata["failedRecordsURL"] = .string("/v1/projects/\(try row.string("project_id"))/operations/\(try row.string("id"))/failed-records")
            }
        }
        if let providerStatus = row.int("provider_status") { metadata["providerStatus"] = .number(Double(providerStatus)) }
        if let errors = row["errors"].flatMap({ try? JSONCoding.decode([WriteError].self, from: $0) }) {
            metadata["errors"] = .array(errors.map { error in
                var entry: [String: JSONValue] = ["message": .string(error.message)]
                if let code = error.code { entry["code"] = .string(code) }
                if error.deadLettered { entry["deadLettered"] = true }
                if let existing = error.existingRecordId { entry["existingRecordId"] = .string(existing) }
                return .object(entry)
            })
        }
        let summary: String
        switch status {
        case _ where bulk:
            let progress = metadata["progress"]
            let counts = "\(progress?["processed"]?.scalarText ?? "0") rows read, \(progress?["succeeded"]?.scalarText ?? "0") written, "
                + "\(progress?["failed"]?.scalarText ?? "0") failed"
            summary = "bulk \(writeType) of \(objectName) records: " + (status == "in_progress" ? "in progress, " : "") + counts
        case _ where metadata["batchSize"] != nil:
            let counts = "\(metadata["successCount"]?.scalarText ?? "0") succeeded, \(metadata["failureCount"]?.scalarText ?? "0") failed"
            summary = "batch \(writeType) of \(metadata["batchSize"]?.scalarText ?? "") \(objectName) records: "
                + (status == "in_progress" ? "in progress" : counts)
        case "success": summary = "\(writeType) of \(objectName) \(recordId ?? "") succeeded"
        case "failure": summary = "\(writeType) of \(objectName) failed"
        default: summary = "\(writeType) of \(objectName) in progress"
        }
        let body: [String: JSONValue] = [
            "id": .string(try row.string("id")),
            "projectId": .string(try row.string("project_id")),
            "integrationId": .string(try row.string("integration_id")),
            "installationId": .string(try row.string("installation_id")),
            "configId": .string(try row.string("installation_id")),
            "actionType": "write",
            "status": .string(status),
            "result": .string(summary),
            "metadata": .object(metadata),
            "createTime": .string(try row.string("create_time")),
        ]
        return .object(body)
    }

    func operationLogs(_ request: Request, _ context: APIContext) async throws -> Response {
        let (project, operationId) = try await operationPath(request, context)
        let exists = try await database.query(
            "SELECT 1 FROM operations WHERE id = $1::uuid AND project_id = $2::uuid", [operationId, project])
        guard !exists.isEmpty else { throw Problem.notFound("operation \(operationId) was not found", name: "operationId") }
        // The stored lines and those the operation's rows tell (ControlSchema's `operation_log_lines`).
        let rows = try await database.query(
            """
            SELECT to_char(logged_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS timestamp, severity,
                   message::text AS message
            FROM operation_log_lines WHERE operation_id = $1::uuid
            ORDER BY logged_at, step
            """, [operationId])
        let logs: [JSONValue] = try rows.rows.map { row in
            [
                "timestamp": .string(try row.string("timestamp")),
                "severity": .string(try row.string("severity")),
                "message": try JSONCoding.decode(JSONValue.self, from: try row.string("message")),
            ]
        }
        return jsonResponse(200, try JSONCoding.encode(logs))
    }

    /// `GET …/operations/{operationId}/failed-records`: the rows of a bulk write that were not written,
    /// as a CSV with the write's header and, first, `error` (the provider's message) and `line` (the row's
    /// line in the CSV sent): fix them and send the file again (without those two columns).
    func failedRecords(_ request: Request, _ context: APIContext) async throws -> Response {
        let (project, operationId) = try await operationPath(request, context)
        let found = try await database.query(
            "SELECT bulk_header::text AS header FROM operations WHERE id = $1::uuid AND project_id = $2::uuid",
            [operationId, project])
        guard let row = found.first else { throw Problem.notFound("operation \(operationId) was not found", name: "operationId") }
        guard let header = row["header"].flatMap({ try? JSONCoding.decode([String].self, from: $0) }) else {
            throw Problem.notFound("operation \(operationId) is not a bulk write; it has no failed records", name: "operationId")
        }
        let database = self.database
        let body = ResponseBody { writer in
            try await writer.write(ByteBuffer(string: CSVFormat.row(["error", "line"] + header)))
            var after = 0
            while true {
                let page = try await database.query(
                    """
                    SELECT line, error, row::text AS row FROM bulk_failures
                    WHERE operation_id = $1::uuid AND line > $2::bigint
                      AND run = (SELECT bulk_run FROM operations WHERE id = $1::uuid)
                    ORDER BY line LIMIT 5000
                    """, [operationId, String(after)])
                guard !page.isEmpty else { break }
                var text = ""
                for failure in page.rows {
                    let fields = failure["row"].flatMap { try? JSONCoding.decode([String].self, from: $0) } ?? []
                    after = failure.int("line") ?? after
                    text += CSVFormat.row([failure["error"] ?? "", String(after)] + fields)
                }
                try await writer.write(ByteBuffer(string: text))
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8"], body: body)
    }

    private func operationPath(_ request: Request, _ context: APIContext) async throws -> (project: String, operation: String) {
        let project = try context.authenticatedProject
        let text = context.path("operation")
        guard let operationId = normalizedUUID(text) else {
            throw Problem.notFound("operation \(text) was not found", name: "operationId")
        }
        return (project.id, operationId)
    }
}

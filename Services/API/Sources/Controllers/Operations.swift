import Schema
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
            "SELECT \(OperationView.columns) FROM operations WHERE id = $1::uuid AND project_id = $2::uuid",
            [operationId, project]
        ).first
        guard let row else { throw Problem.notFound("operation \(operationId) was not found", name: "operationId") }
        return jsonResponse(200, try JSONCoding.encode(try OperationView.json(row)))
    }

    /// `GET …/installations/{installationId}/operations`: the installation's operations, newest first,
    /// `pageSize` (default 200, at most 1000) at a time, as `{results, pagination: {done, nextPageToken?}}`;
    /// `pageToken` is the `nextPageToken` of the page before.
    func installationOperations(_ request: Request, _ context: APIContext) async throws -> Response {
        let (project, _, installation) = try await installationPath(context)
        let pageSize = min(1000, max(1, Int(request.uri.queryParameters["pageSize"].map(String.init) ?? "") ?? 200))
        let before = request.uri.queryParameters["pageToken"].map(String.init)
        let rows = try await database.query(
            """
            SELECT \(OperationView.columns) FROM operations
            WHERE project_id = $1::uuid AND installation_id = $2::uuid
              AND ($3::text IS NULL OR (create_time, id) < (SELECT create_time, id FROM operations WHERE id = $3::uuid))
            ORDER BY create_time DESC, id DESC LIMIT $4::int
            """, [project.id, installation, before.flatMap(normalizedUUID), String(pageSize + 1)])
        let page = rows.rows.prefix(pageSize)
        var pagination: [String: JSONValue] = ["done": .bool(rows.count <= pageSize)]
        if rows.count > pageSize, let last = page.last?["id"] { pagination["nextPageToken"] = .string(last) }
        let body: [String: JSONValue] = ["results": .array(try page.map(OperationView.json)), "pagination": .object(pagination)]
        return jsonResponse(200, try JSONCoding.encode(body))
    }

    func operationLogs(_ request: Request, _ context: APIContext) async throws -> Response {
        let (project, operationId) = try await operationPath(request, context)
        let exists = try await database.query(
            "SELECT 1 FROM operations WHERE id = $1::uuid AND project_id = $2::uuid", [operationId, project])
        guard !exists.isEmpty else { throw Problem.notFound("operation \(operationId) was not found", name: "operationId") }
        // The stored lines and those the operation's rows tell (ControlSchema's `operation_log_lines`).
        let rows = try await database.query(
            """
            SELECT \(timestamp("logged_at")) AS timestamp, severity,
                   message::text AS message
            FROM operation_log_lines WHERE operation_id = $1::uuid
            ORDER BY logged_at, step
            """, [operationId])
        let logs: [JSONValue] = try rows.rows.map { row in
            var message = try JSONCoding.decode(JSONValue.self, from: try row.string("message"))
            if case .object(var fields) = message, let details = fields["details"]?.objectValue {
                fields["details"] = .object(Self.textDetails(details))
                message = .object(fields)
            }
            return [
                "timestamp": .string(try row.string("timestamp")),
                "severity": .string(try row.string("severity")),
                "message": message,
            ]
        }
        return jsonResponse(200, try JSONCoding.encode(logs))
    }

    /// A log line's `details` as the Ampersand shape has them, every value a string: numbers and
    /// booleans as their text, arrays and objects as JSON, and a field with no value left out.
    static func textDetails(_ details: [String: JSONValue]) -> [String: JSONValue] {
        details.compactMapValues { value in
            switch value {
            case .null: return nil
            case .string, .number, .bool: return value.scalarText.map(JSONValue.string)
            case .array, .object: return (try? JSONCoding.encodeString(value)).map(JSONValue.string)
            }
        }
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

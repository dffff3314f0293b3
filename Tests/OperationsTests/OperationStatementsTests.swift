import Foundation
import Postgres
import Shared
import TestSupport
import Testing

@testable import Operations

@Suite("Operation statements")
struct OperationStatementsTests {
    @Test("array parameters carry any text: quotes, backslashes, commas, braces, unicode, empty, NULL")
    func arrays() async throws {
        let database = try await freshControlDatabase("arrays")
        defer { database.shutdown() }
        let values: [String?] = ["plain", "a \"quoted\" word", #"back\slash\"#, "comma, {braces}", "ünïcode ✓", nil, "", "NULL", " spaced "]
        let rows = try await database.query(
            "SELECT v FROM unnest($1::text[]) WITH ORDINALITY AS t(v, n) ORDER BY n", [PostgresArray.literal(values)])
        #expect(rows.rows.map { $0["v"] } == values)
    }

    @Test("a batch with every message of an operation, repeated and out of order, records what the messages one at a time record")
    func batchAsOneByOne() async throws {
        let database = try await freshControlDatabase("batched")
        defer { database.shutdown() }
        let id = { UUID().uuidString.lowercased() }
        let (project, integration, installation) = (id(), id(), id())
        func messages(_ operation: String) throws -> (OperationStatements.Input, OperationStatements.Input, [OperationStatements.Input]) {
            let request = WriteRequestMessage(
                operationId: operation, projectId: project, integrationId: integration, installationId: installation, groupRef: "g",
                provider: .hubspot, objectName: "company", type: .create, mode: .asynchronous, record: [:], recordId: nil,
                associations: nil, replyTo: nil, acceptedAt: "2026-12-04T10:00:00.000000Z",
                batch: [BatchRecord(record: ["name": "a"], recordId: nil, associations: nil),
                        BatchRecord(record: ["name": "b \"quoted\" \\ name"], recordId: nil, associations: nil)])
            var result = WriteResultMessage(
                request: request, success: true, recordId: nil, data: nil, error: nil, providerStatus: 201, possiblyDuplicated: true,
                attempts: 2, completedAt: "2026-12-04T10:00:01.000000Z", version: 1)
            result.results = [BatchItemResult(success: true, recordId: "101", data: ["name": "a"], error: nil),
                              BatchItemResult(success: true, recordId: "102", data: ["name": "b \"quoted\" \\ name"], error: nil)]
            let held = ["101", "102"].enumerated().map { index, record in
                OperationStatements.Input.cached(CacheUpdateMessage(
                    change: ChangeEvent(result: result, recordId: record, fields: [:], index: index).data, applied: true,
                    updatedAt: "2026-12-04T10:00:02.000000Z"))
            }
            return (.accepted(try AcceptedRequest(message: JSONCoding.encode(request))),
                    .answered(try AnsweredResult(message: JSONCoding.encode(result))), held)
        }
        func apply(_ inputs: [OperationStatements.Input]) async throws {
            _ = try await database.pipeline(OperationStatements.batch(inputs))
        }
        func recorded(_ operation: String) async throws -> [String?] {
            let row = try #require(try await database.query(
                """
                SELECT status, changes_done::text, cache_done::text, provider_done::text, expected_changes::text, attempts::text,
                       possibly_duplicated::text, create_time::text, results::text,
                       (SELECT string_agg(step || '=' || severity, ',' ORDER BY step) FROM operation_logs WHERE operation_id = $1::uuid) AS logs,
                       (SELECT string_agg(record_id || '@' || version || '=' || applied || ' ' || logged_at, ',' ORDER BY record_id)
                        FROM operation_changes WHERE operation_id = $1::uuid) AS changes
                FROM operations WHERE id = $1::uuid
                """, [operation]).first)
            return ["status", "changes_done", "cache_done", "provider_done", "expected_changes", "attempts", "possibly_duplicated",
                    "create_time", "results", "logs", "changes"].map { row[$0] }
        }

        let (one, batched) = (id(), id())
        let (accepted, answered, held) = try messages(one)
        for input in [accepted, held[0], answered, held[1]] { try await apply([input]) }
        let (acceptedAgain, answeredAgain, heldAgain) = try messages(batched)
        try await apply([heldAgain[1], answeredAgain, heldAgain[0], acceptedAgain, heldAgain[0], answeredAgain, acceptedAgain])

        let alone = try await recorded(one)
        #expect(alone[0] == "success" && alone[1] == "2", "the messages one at a time: \(alone)")
        // Each record's destination update is logged once, by its change row.
        #expect(alone[10]?.components(separatedBy: ",").count == 2 && alone[10]?.contains("=true 2026-12-04 10:00:02") == true,
                "the changes logged: \(alone[10] ?? "none")")
        #expect(try await recorded(batched) == alone)
    }

    @Test("a single write's acceptance and answer are logged by its row, line for line as they were stored; batches and bulk writes keep their stored lines")
    func linesFromRows() async throws {
        let database = try await freshControlDatabase("log_lines")
        defer { database.shutdown() }
        let id = { UUID().uuidString.lowercased() }
        let (project, integration, installation) = (id(), id(), id())
        func request(_ operation: String, _ type: WriteType, recordId: String?, mode: WriteMode = .asynchronous) -> WriteRequestMessage {
            WriteRequestMessage(
                operationId: operation, projectId: project, integrationId: integration, installationId: installation, groupRef: "g \"1\"",
                provider: .salesforce, objectName: "contact", type: type, mode: mode, record: ["LastName": "x"], recordId: recordId,
                associations: nil, replyTo: nil, acceptedAt: "2026-12-04T10:00:00.123456Z")
        }
        // Each case: its request, and its result (nil: not answered yet).
        let cases: [(WriteRequestMessage, WriteResultMessage?)] = [
            { let r = request(id(), .create, recordId: nil)
              return (r, WriteResultMessage(request: r, success: true, recordId: "003A", data: ["LastName": "x"], error: nil,
                                            providerStatus: 201, possiblyDuplicated: false, attempts: 1,
                                            completedAt: "2026-12-04T10:00:01.000001Z", version: 1)) }(),
            { let r = request(id(), .update, recordId: "003B", mode: .synchronous)
              return (r, WriteResultMessage(request: r, success: true, recordId: "003B", data: nil, error: nil,
                                            providerStatus: nil, possiblyDuplicated: true, attempts: 3,
                                            completedAt: "2026-12-04T10:00:02Z", version: 2)) }(),
            { let r = request(id(), .delete, recordId: "003C")
              return (r, WriteResultMessage(request: r, success: false, recordId: nil, data: nil,
                                            error: WriteError(message: "entity is deleted \"quoted\"", code: "ENTITY_IS_DELETED"),
                                            providerStatus: 404, possiblyDuplicated: false, attempts: 1,
                                            completedAt: "2026-12-04T10:00:03Z", version: 3)) }(),
            { let r = request(id(), .create, recordId: nil)
              return (r, WriteResultMessage(request: r, success: false, recordId: nil, data: nil,
                                            error: WriteError(message: "unreachable", deadLettered: true),
                                            providerStatus: nil, possiblyDuplicated: false, attempts: 5,
                                            completedAt: "2026-12-04T10:00:04Z", version: 4)) }(),
            (request(id(), .create, recordId: nil), nil),
        ]
        var inputs: [OperationStatements.Input] = []
        var expected: [String: [OperationStatements.LogRow]] = [:]
        for (request, result) in cases {
            let accepted = try AcceptedRequest(message: JSONCoding.encode(request))
            inputs.append(.accepted(accepted))
            expected[request.operationId, default: []].append(OperationStatements.acceptedLog(accepted))
            if let result {
                let answered = try AnsweredResult(message: JSONCoding.encode(result))
                inputs.append(.answered(answered))
                // What was stored before: the provider's line and, for a repeated call, its warning.
                expected[request.operationId, default: []] += OperationStatements.answeredLogs(answered)
            }
        }
        _ = try await database.pipeline(OperationStatements.batch(inputs))
        let stored = try await database.query("SELECT step FROM operation_logs WHERE step IN ('accepted', 'provider')")
        #expect(stored.isEmpty, "a single write's accepted and provider lines are not stored: \(stored.rows.map { $0["step"] })")
        for (operation, unordered) in expected {
            // In the order the logs are read: by time, then step.
            let lines = unordered.sorted { ($0.time, $0.step) < ($1.time, $1.step) }
            let rows = try await database.query(
                """
                SELECT step, severity, message::text AS message, to_char(logged_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at
                FROM operation_log_lines WHERE operation_id = $1::uuid ORDER BY logged_at, step
                """, [operation])
            #expect(rows.rows.map { $0["step"] } == lines.map(\.step), "\(operation)")
            for (row, line) in zip(rows.rows, lines) {
                let told = try JSONCoding.decode(JSONValue.self, from: row["message"] ?? "")
                #expect(told == (try JSONCoding.decode(JSONValue.self, from: line.message)), "\(line.step): \(row["message"] ?? "")")
                #expect(row["severity"] == line.severity)
                let time = try #require(Timestamp.parse(line.time)).timeIntervalSince1970
                let at = try #require(Timestamp.parse(row["at"] ?? "")).timeIntervalSince1970
                #expect(abs(time - at) < 0.000_002, "\(line.step) at \(row["at"] ?? "") for \(line.time)")
            }
        }
        // A batch keeps its stored lines, and a line stored for a step is not told again by the row.
        let batch = WriteRequestMessage(
            operationId: id(), projectId: project, integrationId: integration, installationId: installation, groupRef: "g",
            provider: .salesforce, objectName: "contact", type: .create, mode: .asynchronous, record: [:], recordId: nil,
            associations: nil, replyTo: nil, acceptedAt: "2026-12-04T10:00:00Z",
            batch: [BatchRecord(record: ["LastName": "a"], recordId: nil, associations: nil)])
        _ = try await database.pipeline(OperationStatements.batch([.accepted(try AcceptedRequest(message: JSONCoding.encode(batch)))]))
        let batchLines = try await database.query("SELECT step FROM operation_log_lines WHERE operation_id = $1::uuid", [batch.operationId])
        #expect(batchLines.rows.map { $0["step"] } == ["accepted"])
        let single = cases[0].0.operationId
        _ = try await database.query(
            "INSERT INTO operation_logs (operation_id, step, logged_at, severity, message) VALUES ($1::uuid, 'accepted', now(), 'INFO', '{}')",
            [single])
        let kept = try await database.query(
            "SELECT message::text AS message FROM operation_log_lines WHERE operation_id = $1::uuid AND step = 'accepted'", [single])
        #expect(kept.rows.map { $0["message"] } == ["{}"])
    }
}

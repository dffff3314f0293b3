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
}

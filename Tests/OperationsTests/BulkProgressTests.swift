import Foundation
import Postgres
import Shared
import TestSupport
import Testing

@testable import Operations

/// A bulk write's progress arrives as counts so far, possibly repeated, out of order with its result,
/// or from a second reading of the CSV after a writer stopped.
@Suite("Bulk progress")
struct BulkProgressTests {
    @Test("repeated or late progress never lowers the counts; a later reading replaces them and its failed rows are the ones to download")
    func progress() async throws {
        let database = try await freshControlDatabase("bulk")
        defer { database.shutdown() }

        let id = { UUID().uuidString.lowercased() }
        let request = WriteRequestMessage(
            operationId: id(), projectId: id(), integrationId: id(), installationId: id(), groupRef: "g", provider: .salesforce,
            objectName: "contact", type: .upsert, mode: .bulk, record: [:], recordId: nil, associations: nil, replyTo: nil,
            acceptedAt: Timestamp.now(), bulk: BulkWrite(primaryKey: "External_Id__c", header: ["External_Id__c", "LastName"],
                                                         recordsURL: nil, bytes: 100))
        func apply(_ inputs: OperationStatements.Input...) async throws {
            _ = try await database.pipeline(OperationStatements.batch(inputs))
        }
        let failure = BulkFailure(line: 3, primaryKey: "k-2", error: "REQUIRED_FIELD_MISSING:LastName", code: "REQUIRED_FIELD_MISSING",
                                  row: ["k-2", ""])
        func progress(run: Int, _ processed: Int, _ succeeded: Int, _ failed: Int, total: Int? = nil, failures: [BulkFailure] = [])
            -> BulkProgressMessage
        {
            BulkProgressMessage(request: request, run: run, processed: processed, succeeded: succeeded, failed: failed, total: total,
                                jobIds: Array(["750A", "750B"].prefix(processed / 2)), failures: failures, time: Timestamp.now())
        }
        func counts() async throws -> [Int?] {
            let row = try await database.query(
                """
                SELECT records_processed, records_succeeded, records_failed, records_total, jsonb_array_length(provider_job_ids) AS jobs,
                       (SELECT count(*) FROM bulk_failures f WHERE f.operation_id = $1::uuid AND f.run = operations.bulk_run) AS failures
                FROM operations WHERE id = $1::uuid
                """, [request.operationId]).first
            return ["records_processed", "records_succeeded", "records_failed", "records_total", "jobs", "failures"].map { row?.int($0) }
        }

        // Progress before the request itself; then the request; then a repeat and an older message.
        try await apply(.progressed(progress(run: 1, 2, 1, 1, failures: [failure])))
        try await apply(.accepted(AcceptedRequest(message: JSONCoding.encode(request))))
        try await apply(.progressed(progress(run: 1, 2, 1, 1, failures: [failure])))
        try await apply(.progressed(progress(run: 1, 1, 1, 0)))
        #expect(try await counts() == [2, 1, 1, nil, 1, 1])
        try await apply(.progressed(progress(run: 1, 4, 3, 1, total: 4)))
        #expect(try await counts() == [4, 3, 1, 4, 2, 1])
        // A second reading starts again from its first rows; a late message of the first changes nothing.
        try await apply(.progressed(progress(run: 2, 2, 2, 0)))
        #expect(try await counts() == [2, 2, 0, nil, 1, 0])
        try await apply(.progressed(progress(run: 1, 4, 3, 1, total: 4, failures: [failure])))
        #expect(try await counts() == [2, 2, 0, nil, 1, 0])
        let header = try await database.query("SELECT bulk_header::text AS h FROM operations WHERE id = $1::uuid", [request.operationId])
        #expect(header.first?["h"] == #"["External_Id__c", "LastName"]"#)
        let logs = try await database.query(
            "SELECT message::text AS m FROM operation_logs WHERE operation_id = $1::uuid AND step = 'row:3'", [request.operationId])
        #expect(logs.count == 1 && logs.first?["m"]?.contains("k-2") == true)
    }

    @Test("a bulk result brings its final counts: a progress message recorded after it never shows fewer rows")
    func resultBeforeProgress() async throws {
        let database = try await freshControlDatabase("bulkresult")
        defer { database.shutdown() }
        let id = { UUID().uuidString.lowercased() }
        let request = WriteRequestMessage(
            operationId: id(), projectId: id(), integrationId: id(), installationId: id(), groupRef: "g", provider: .salesforce,
            objectName: "contact", type: .upsert, mode: .bulk, record: [:], recordId: nil, associations: nil, replyTo: nil,
            acceptedAt: Timestamp.now(), bulk: BulkWrite(primaryKey: "External_Id__c", header: ["External_Id__c"], recordsURL: nil, bytes: 10))
        func apply(_ inputs: OperationStatements.Input...) async throws {
            _ = try await database.pipeline(OperationStatements.batch(inputs))
        }
        let result = WriteResultMessage(
            request: request, success: false, recordId: nil,
            data: ["processed": 6, "succeeded": 5, "failed": 1, "total": 6, "jobIds": ["750A", "750B"], "run": 1],
            error: WriteError(message: "1 of 6 rows were not written", code: "ROWS_FAILED"), providerStatus: nil,
            possiblyDuplicated: false, attempts: 3, completedAt: Timestamp.now(), version: Timestamp.microsNow())
        try await apply(.accepted(AcceptedRequest(message: JSONCoding.encode(request))))
        try await apply(.answered(AnsweredResult(message: JSONCoding.encode(result))))
        // The reading's earlier progress, recorded late.
        try await apply(.progressed(BulkProgressMessage(
            request: request, run: 1, processed: 3, succeeded: 3, failed: 0, total: nil, jobIds: ["750A"], failures: [],
            time: Timestamp.now())))
        let row = try #require(try await database.query(
            """
            SELECT status, records_processed, records_succeeded, records_failed, records_total, jsonb_array_length(provider_job_ids) AS jobs
            FROM operations WHERE id = $1::uuid
            """, [request.operationId]).first)
        #expect(row["status"] == "failure")
        #expect(["records_processed", "records_succeeded", "records_failed", "records_total", "jobs"].map { row.int($0) } == [6, 5, 1, 6, 2])
    }
}

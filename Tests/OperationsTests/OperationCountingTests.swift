import Foundation
import Postgres
import Shared
import TestSupport
import Testing

@testable import Operations

/// An operation of several records is a success once the destination holds each of them, counted once
/// however often a record's update is delivered.
@Suite("Operation record counting")
struct OperationCountingTests {
    @Test("a redelivered destination update does not count twice; the batch succeeds when its last record is held")
    func redeliveredUpdates() async throws {
        let database = try await freshControlDatabase("counting")
        defer { database.shutdown() }

        let id = { UUID().uuidString.lowercased() }
        let request = WriteRequestMessage(
            operationId: id(), projectId: id(), integrationId: id(), installationId: id(), groupRef: "g", provider: .hubspot,
            objectName: "company", type: .create, mode: .asynchronous, record: [:], recordId: nil, associations: nil, replyTo: nil,
            acceptedAt: Timestamp.now(), batch: [BatchRecord(record: ["name": "a"], recordId: nil, associations: nil),
                                                 BatchRecord(record: ["name": "b"], recordId: nil, associations: nil)])
        var result = WriteResultMessage(
            request: request, success: true, recordId: nil, data: nil, error: nil, providerStatus: 201, possiblyDuplicated: false,
            attempts: 1, completedAt: Timestamp.now(), version: Timestamp.microsNow())
        result.results = [BatchItemResult(success: true, recordId: "101", data: ["name": "a"], error: nil),
                          BatchItemResult(success: true, recordId: "102", data: ["name": "b"], error: nil)]
        func apply(_ inputs: OperationStatements.Input...) async throws {
            _ = try await database.pipeline(OperationStatements.batch(inputs))
        }
        func held(_ recordId: String, index: Int) -> CacheUpdateMessage {
            CacheUpdateMessage(change: ChangeEvent(result: result, recordId: recordId, fields: [:], index: index).data, applied: true,
                               updatedAt: Timestamp.now())
        }
        func state() async throws -> (String, Int) {
            let row = try await database.query("SELECT status, changes_done FROM operations WHERE id = $1::uuid", [request.operationId]).first
            return (row?["status"] ?? "", row?.int("changes_done") ?? -1)
        }

        // The first record's update arrives before the provider's answer, and again after it.
        try await apply(.cached(held("101", index: 0)))
        try await apply(.answered(AnsweredResult(message: JSONCoding.encode(result))))
        try await apply(.cached(held("101", index: 0)))
        #expect(try await state() == ("in_progress", 1))
        try await apply(.cached(held("102", index: 1)))
        #expect(try await state() == ("success", 2))
        try await apply(.cached(held("102", index: 1)))
        #expect(try await state() == ("success", 2))
    }
}

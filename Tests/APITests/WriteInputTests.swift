import Shared
import Testing

@testable import API

@Suite("Write request validation")
struct WriteInputTests {
    func problem(_ body: String) -> Problem? {
        do {
            _ = try WriteInput.parse(Array(body.utf8))
            return nil
        } catch {
            return error
        }
    }

    @Test("the seed's shapes are accepted, with create and synchronous as defaults")
    func accepted() throws {
        let create = try WriteInput.parse(Array(#"{"groupRef":"g","record":{"FirstName":"Harry","LastName":"Potter"}}"#.utf8))
        #expect(create.type == .create)
        #expect(create.mode == .synchronous)
        #expect(create.record == ["FirstName": "Harry", "LastName": "Potter"])
        let update = try WriteInput.parse(Array(#"{"groupRef":"g","type":"update","record":{"Id":"003A","Title":"T"}}"#.utf8))
        #expect(update.recordId == "003A")
        #expect(update.record == ["Title": "T"])
        let delete = try WriteInput.parse(Array(#"{"groupRef":"g","type":"delete","mode":"asynchronous","record":{"id":42}}"#.utf8))
        #expect(delete.recordId == "42")
        #expect(delete.record.isEmpty)
        #expect(delete.retryDeadlineHours == nil)
        let patient = try WriteInput.parse(Array(#"{"groupRef":"g","mode":"asynchronous","record":{"A":1},"retryPolicy":{"deadlineHours":48}}"#.utf8))
        #expect(patient.retryDeadlineHours == 48)
        let grouped = try WriteInput.parse(Array(
            #"{"groupRef":"g","mode":"asynchronous","record":{"A":1},"retryPolicy":{"deadlineHours":9},"autoBatchPolicy":{"maxDelayMinutes":5,"retryDeadlineHours":2}}"#.utf8))
        #expect(grouped.autoBatchDelaySeconds == 300 && grouped.retryDeadlineHours == 2)
        let batch = try WriteInput.parse(Array(
            #"{"groupRef":"g","type":"update","batchPolicy":{"allOrNone":true},"batch":[{"record":{"id":"1","A":1}},{"record":{"Id":"2","B":2}}]}"#.utf8))
        #expect(batch.batch == [BatchRecord(record: ["A": 1], recordId: "1", associations: nil),
                                BatchRecord(record: ["B": 2], recordId: "2", associations: nil)])
        #expect(batch.allOrNone && batch.record.isEmpty && batch.recordId == nil)
        let hundredOne = "{\"groupRef\":\"g\",\"batch\":[" + Array(repeating: #"{"record":{"A":1}}"#, count: 101).joined(separator: ",") + "]}"
        #expect(problem(hundredOne)?.issues?.first?.name == "batch")
        let hundred = "{\"groupRef\":\"g\",\"batch\":[" + Array(repeating: #"{"record":{"A":1}}"#, count: 100).joined(separator: ",") + "]}"
        #expect(try WriteInput.parse(Array(hundred.utf8)).batch?.count == 100)
    }

    @Test("each kind of bad input is a 400 naming the field")
    func refused() {
        let cases: [(String, String)] = [
            ("", "body"),
            ("{", "body"),
            ("[1]", "body"),
            (#"{"record":{}}"#, "groupRef"),
            (#"{"groupRef":7,"record":{}}"#, "groupRef"),
            (#"{"groupRef":"g"}"#, "record"),
            (#"{"groupRef":"g","record":"x"}"#, "record"),
            (#"{"groupRef":"g","type":"upsert!","record":{}}"#, "type"),
            (#"{"groupRef":"g","mode":"later","record":{}}"#, "mode"),
            (#"{"groupRef":"g","type":"update","record":{"Title":"T"}}"#, "record.id"),
            (#"{"groupRef":"g","type":"delete","record":{}}"#, "record.id"),
            (#"{"groupRef":"g","type":"create","record":{"Id":"003A","LastName":"X"}}"#, "record.id"),
            (#"{"groupRef":"g","record":{"LastName":"X"},"associations":{}}"#, "associations"),
            (#"{"groupRef":"g","type":"upsert","record":{"Id":"003A"}}"#, "type"),
            (#"{"groupRef":"g","record":{},"retryPolicy":{"deadlineHours":0}}"#, "retryPolicy.deadlineHours"),
            (#"{"groupRef":"g","record":{},"retryPolicy":{"deadlineHours":49}}"#, "retryPolicy.deadlineHours"),
            (#"{"groupRef":"g","record":{},"retryPolicy":{"deadlineHours":1.5}}"#, "retryPolicy.deadlineHours"),
            (#"{"groupRef":"g","record":{},"retryPolicy":"1h"}"#, "retryPolicy"),
            (#"{"groupRef":"g","record":{"A":1},"autoBatchPolicy":{"maxDelayMinutes":5}}"#, "autoBatchPolicy"),
            (#"{"groupRef":"g","mode":"asynchronous","record":{"A":1},"autoBatchPolicy":{}}"#, "autoBatchPolicy.maxDelayMinutes"),
            (#"{"groupRef":"g","mode":"asynchronous","record":{"A":1},"autoBatchPolicy":{"maxDelayMinutes":1441}}"#, "autoBatchPolicy.maxDelayMinutes"),
            (#"{"groupRef":"g","mode":"asynchronous","record":{"A":1},"autoBatchPolicy":{"maxDelayMinutes":1,"retryDeadlineHours":0}}"#, "autoBatchPolicy.retryDeadlineHours"),
            (#"{"groupRef":"g","mode":"asynchronous","type":"delete","record":{"id":"1"},"autoBatchPolicy":{"maxDelayMinutes":1}}"#, "autoBatchPolicy"),
            (#"{"groupRef":"g","mode":"asynchronous","batch":[{"record":{"A":1}}],"autoBatchPolicy":{"maxDelayMinutes":1}}"#, "autoBatchPolicy"),
            (#"{"groupRef":"g","batch":[]}"#, "batch"),
            (#"{"groupRef":"g","batch":{"record":{}}}"#, "batch"),
            (#"{"groupRef":"g","record":{},"batch":[{"record":{}}]}"#, "batch"),
            (#"{"groupRef":"g","batch":[{"record":{"A":1}},{"fields":{}}]}"#, "batch[1].record"),
            (#"{"groupRef":"g","type":"update","batch":[{"record":{"id":"1","A":1}},{"record":{"A":2}}]}"#, "batch[1].record.id"),
            (#"{"groupRef":"g","batch":[{"record":{"Id":"003A","A":1}}]}"#, "batch[0].record.id"),
            (#"{"groupRef":"g","type":"delete","batch":[{"record":{"id":"1"}}]}"#, "type"),
            (#"{"groupRef":"g","batch":[{"record":{"A":1}}],"batchPolicy":{"allOrNone":"yes"}}"#, "batchPolicy.allOrNone"),
            (#"{"groupRef":"g","record":{"A":1},"batchPolicy":{"allOrNone":true}}"#, "batchPolicy"),
        ]
        for (body, field) in cases {
            let found = problem(body)
            #expect(found?.status == 400, "\(body)")
            #expect(found?.issues?.first?.name == field, "\(body): \(String(describing: found?.detail))")
        }
    }
}

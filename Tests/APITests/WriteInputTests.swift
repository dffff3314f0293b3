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
            (#"{"groupRef":"g","mode":"asynchronous","record":{},"autoBatchPolicy":{"maxDelayMinutes":5}}"#, "autoBatchPolicy"),
        ]
        for (body, field) in cases {
            let found = problem(body)
            #expect(found?.status == 400, "\(body)")
            #expect(found?.issues?.first?.name == field, "\(body): \(String(describing: found?.detail))")
        }
    }
}

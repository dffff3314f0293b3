import Foundation
import Shared
import Testing

@testable import Operations

extension AcceptedRequest {
    /// The summary the whole read of a request gives, to compare the scanner's with.
    init(_ request: WriteRequestMessage) {
        let payload: Payload = switch request.payload {
        case .single(_, let recordId, _): .single(recordId: recordId)
        case .batch(let records, _): .batch(count: records.count)
        case .bulk(let bulk): .bulk(bulk)
        }
        self.init(identity: request.identity, mode: request.mode, acceptedAt: request.acceptedAt, payload: payload)
        resentFrom = request.content.resentFrom
    }
}

@Suite("Accepted requests")
struct AcceptedRequestTests {
    static func request(
        type: WriteType = .create, record: [String: JSONValue] = ["LastName": "Ada", "Notes": "a \"quoted\" \\ {note}, ✓"],
        recordId: String? = nil, batch: [BatchRecord]? = nil, bulk: BulkWrite? = nil, upsertOn: UpsertOn? = nil
    ) -> WriteRequestMessage {
        WriteRequestMessage(
            operationId: OperationIdentity.newOperationId(), projectId: UUID().uuidString.lowercased(),
            integrationId: UUID().uuidString.lowercased(), installationId: UUID().uuidString.lowercased(), groupRef: "customer \"7\"",
            provider: .salesforce, objectName: "contact", type: type, mode: bulk == nil ? .asynchronous : .bulk, record: record,
            recordId: recordId, associations: recordId == nil ? nil : ["to": ["id": "1"]], replyTo: "api-1",
            acceptedAt: "2026-12-06T10:00:00.000001Z", upsertOn: upsertOn, retryDeadlineHours: 2, batch: batch, allOrNone: batch.map { _ in true },
            bulk: bulk)
    }

    static let requests: [WriteRequestMessage] = [
        request(),
        request(type: .update, recordId: "003000000000001AAA"),
        request(type: .delete, record: [:], recordId: "003000000000002AAA"),
        request(type: .upsert, upsertOn: UpsertOn(key: "Email", values: ["a@example.com"])),
        request(record: Dictionary(uniqueKeysWithValues: (0..<60).map { ("Field_\($0)__c", JSONValue.string(String(repeating: "x", count: $0))) })),
        request(record: ["Nested": .object(["list": .array([.number(1), .number(2), .object(["deep": .array([.bool(true), .bool(false), .null])])]), "number": .number(1.5)])]),
        request(batch: (0..<100).map { BatchRecord(record: ["LastName": .string("Row \($0)")], recordId: nil, associations: nil) }),
        request(type: .update, batch: [BatchRecord(record: ["LastName": "One"], recordId: "003000000000003AAA", associations: nil)]),
        request(type: .upsert, record: [:], bulk: BulkWrite(primaryKey: "Email", header: ["Email", "LastName"], recordsURL: nil, bytes: 120)),
        request(type: .upsert, record: [:], bulk: BulkWrite(primaryKey: "Email", header: ["Email"], recordsURL: "https://files.example.com/a.csv", bytes: nil)),
    ]

    @Test("read from a message's bytes, a request's summary is the one of the whole request, whatever its payload")
    func sameAsWholeRead() throws {
        for request in Self.requests {
            let bytes = try JSONCoding.encode(request)
            let read = try AcceptedRequest(message: bytes)
            #expect(read == AcceptedRequest(request))
            #expect(read == AcceptedRequest(try JSONCoding.decode(WriteRequestMessage.self, from: bytes)))
        }
    }

    @Test("members in any order, unknown members, spacing and repeated keys read as the whole read reads them")
    func anyForm() throws {
        let request = Self.request(type: .update, recordId: "003000000000001AAA")
        var object = try #require(try JSONCoding.decode(JSONValue.self, from: JSONCoding.encode(request)).objectValue)
        object["somethingNew"] = ["from": "a later version"]
        let members = object.sorted { $0.key > $1.key }.map { "\n  \(try! JSONCoding.encodeString(JSONValue.string($0.key))) :  \(try! JSONCoding.encodeString($0.value))" }
        let text = "{" + members.joined(separator: " ,") + "\n}"
        #expect(try AcceptedRequest(message: Array(text.utf8)) == AcceptedRequest(request))
        // A repeated key: the last counts; a null is as good as absent.
        let repeated = String(text.dropLast()) + #", "recordId": "003000000000009AAA", "mode": null, "mode": "synchronous"}"#
        var expected = AcceptedRequest(request)
        expected.payload = .single(recordId: "003000000000009AAA")
        expected.mode = .synchronous
        #expect(try AcceptedRequest(message: Array(repeated.utf8)) == expected)
    }

    @Test("refuses what the whole read refuses in what it keeps, naming the member")
    func refusals() throws {
        let base = try #require(try JSONCoding.decode(JSONValue.self, from: JSONCoding.encode(Self.request())).objectValue)
        func refused(_ change: (inout [String: JSONValue]) -> Void, naming key: String) throws {
            var object = base
            change(&object)
            let bytes = try JSONCoding.encode(JSONValue.object(object))
            #expect(throws: (any Error).self) { try JSONCoding.decode(WriteRequestMessage.self, from: bytes) }
            let error = #expect(throws: JSONFieldError.self) { try AcceptedRequest(message: bytes) }
            #expect(error?.key == key)
        }
        try refused({ $0["operationId"] = nil }, naming: "operationId")
        try refused({ $0["groupRef"] = .number(7) }, naming: "groupRef")
        try refused({ $0["type"] = "merge" }, naming: "type")
        try refused({ $0["provider"] = nil }, naming: "provider")
        try refused({ $0["provider"] = "dynamics" }, naming: "provider")
        try refused({ $0["mode"] = nil }, naming: "mode")
        try refused({ $0["acceptedAt"] = .null }, naming: "acceptedAt")
        try refused({ $0["record"] = nil }, naming: "record")
        try refused({ $0["record"] = "not an object" }, naming: "record")
        try refused({ $0["batch"] = ["not an object"] }, naming: "batch")
        try refused({ $0["batch"] = .object([:]) }, naming: "batch")
        #expect(throws: (any Error).self) { try AcceptedRequest(message: Array(#"{"operationId": "a", "#.utf8)) }
        #expect(throws: (any Error).self) { try AcceptedRequest(message: Array(#"["not", "an", "object"]"#.utf8)) }
    }
}

@Suite("Answered results")
struct AnsweredResultTests {
    static let request = AcceptedRequestTests.request()

    static func result(
        success: Bool = true, data: [String: JSONValue]? = ["Id": "003000000000001AAA", "LastName": "Ada \"the\" \\ first ✓"],
        error: WriteError? = nil, results: [BatchItemResult]? = nil, mode: WriteMode? = nil, duplicated: Bool = false
    ) -> WriteResultMessage {
        var request = request
        if let mode { request.content.mode = mode }
        var result = WriteResultMessage(
            request: request, success: success, recordId: success && results == nil ? "003000000000001AAA" : nil, data: data,
            error: error, providerStatus: success ? 201 : 400, possiblyDuplicated: duplicated, attempts: 2,
            completedAt: "2026-12-06T10:00:01.000001Z", version: 1_796_000_000_000_001)
        result.results = results
        return result
    }

    static let results: [WriteResultMessage] = [
        result(),
        result(data: nil),
        result(success: false, data: nil, error: WriteError(message: "REQUIRED_FIELD_MISSING: LastName", code: "REQUIRED_FIELD_MISSING")),
        result(success: false, data: nil, error: WriteError(message: "gone", deadLettered: true), duplicated: true),
        result(data: nil, results: (0..<100).map {
            $0 % 7 == 3
                ? BatchItemResult(success: false, recordId: nil, data: nil, error: WriteError(message: "row \($0) refused", code: "INVALID"))
                : BatchItemResult(success: true, recordId: "0030000000000\($0 % 50)AAA", data: ["LastName": .string("Row \($0)")], error: nil)
        }),
        result(success: false, data: ["processed": 6, "succeeded": 5, "failed": 1, "total": 6, "jobIds": ["750A", "750B"], "run": 1],
               error: WriteError(message: "1 of 6 rows were not written", code: "ROWS_FAILED"), mode: .bulk),
    ]

    /// The summary with its JSON texts written the one way, so that two readings compare by value.
    static func canonical(_ summary: AnsweredResult) throws -> AnsweredResult {
        var summary = summary
        let text = { (json: String?) in try json.map { try JSONCoding.encodeString(JSONCoding.decode(JSONValue.self, from: Array($0.utf8))) } }
        summary.data = try text(summary.data)
        summary.results = try text(summary.results)
        return summary
    }

    @Test("read from a message's bytes, a result's summary is the one of the whole result: single, failed, batch, bulk")
    func sameAsWholeRead() throws {
        for result in Self.results {
            let bytes = try JSONCoding.encode(result)
            let read = try AnsweredResult(message: bytes)
            #expect(try Self.canonical(read) == Self.canonical(AnsweredResult(result)))
            #expect(read.changed == Set(result.changedRecords.map(\.recordId)).count)
            #expect(read.successCount == result.successCount && read.failureCount == result.failureCount)
            // What goes to the database and the log lines are the same.
            #expect(try OperationStatements.answeredLogs(read).map(\.message) == OperationStatements.answeredLogs(AnsweredResult(result)).map(\.message))
        }
    }

    @Test("members in any order, unknown members, spacing, nulls and repeated keys read as the whole read reads them")
    func anyForm() throws {
        for result in Self.results {
            var object = try #require(try JSONCoding.decode(JSONValue.self, from: JSONCoding.encode(result)).objectValue)
            object["somethingNew"] = ["from": "a later version"]
            for key in ["recordId", "data", "error", "providerStatus", "results", "replyTo"] where object[key] == nil { object[key] = .null }
            let members = try object.sorted { $0.key > $1.key }.map {
                "\n  \(try JSONCoding.encodeString(JSONValue.string($0.key))) :  \(try JSONCoding.encodeString($0.value))"
            }
            // A repeated key: the last counts (a null as good as absent).
            let text = "{" + members.joined(separator: " ,") + #", "possiblyDuplicated": false, "possiblyDuplicated": true, "attempts": null, "attempts": 7"# + "\n}"
            let bytes = Array(text.utf8)
            let whole = try JSONCoding.decode(WriteResultMessage.self, from: bytes)
            #expect(whole.possiblyDuplicated && whole.attempts == 7)
            #expect(try Self.canonical(AnsweredResult(message: bytes)) == Self.canonical(AnsweredResult(whole)))
        }
    }

    @Test("refuses what the whole read refuses in what it keeps")
    func refusals() throws {
        let base = try #require(try JSONCoding.decode(JSONValue.self, from: JSONCoding.encode(Self.results[4])).objectValue)
        func refused(_ change: (inout [String: JSONValue]) -> Void) throws {
            var object = base
            change(&object)
            let bytes = try JSONCoding.encode(JSONValue.object(object))
            #expect(throws: (any Error).self) { try JSONCoding.decode(WriteResultMessage.self, from: bytes) }
            #expect(throws: (any Error).self) { try AnsweredResult(message: bytes) }
        }
        try refused { $0["installationId"] = nil }
        try refused { $0["success"] = "yes" }
        try refused { $0["attempts"] = .number(1.5) }
        try refused { $0["version"] = nil }
        try refused { $0["provider"] = "dynamics" }
        try refused { $0["data"] = .array([]) }
        try refused { $0["error"] = .object(["code": "X"]) }
        try refused { $0["results"] = .array([.object(["recordId": "1"])]) }
        try refused { $0["results"] = .array([.string("not an object")]) }
    }
}

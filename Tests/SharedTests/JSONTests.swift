import Foundation
import Testing

@testable import Shared

/// The messages' own JSON reader and writer agree with Foundation's coders, byte for byte and value for
/// value, so that either side of a topic may use either.
@Suite("JSON reader and writer")
struct JSONTests {
    static func foundation<T: Encodable>(_ value: T) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    static let tricky: [String: JSONValue] = [
        "LastName": "Ló\"ve\\lace/ 😀 \n\t\r\u{8}\u{C}\u{1}\u{1F}\u{7F}\u{2028}",
        "Count": 3, "Half": .number(0.5), "Tiny": .number(1e-7), "Huge": .number(1e21), "Negative": -42, "Zero": .number(-0.0),
        "Big": 123_456_789_012,
        "On": true, "Off": false, "Nothing": .null, "List": [1, "two", [3], ["four": 4]], "Empty": [:], "None": [],
        "_under": "x", "Upper": "y", "lower": "z", "a1": 1, "aa": 2,
    ]

    static var identity: (String, String, String, String) {
        ("5b1ad26e-3f3e-4b54-9a0e-0f2d4f6c1a10", "8c6c1d2e-52b1-4d4d-9e5b-0d6c2a1b3c4d", "1f2e3d4c-5b6a-4789-8a9b-0c1d2e3f4a5b",
         "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")
    }

    static var requests: [WriteRequestMessage] {
        let (operation, project, integration, installation) = identity
        func request(
            _ type: WriteType, mode: WriteMode = .asynchronous, record: [String: JSONValue] = tricky, recordId: String? = nil,
            associations: JSONValue? = nil, replyTo: String? = nil, unified: UnifiedObject? = nil, upsertOn: UpsertOn? = nil,
            deadline: Int? = nil, batch: [BatchRecord]? = nil, allOrNone: Bool? = nil, autoBatch: Double? = nil, bulk: BulkWrite? = nil
        ) -> WriteRequestMessage {
            WriteRequestMessage(
                operationId: operation, projectId: project, integrationId: integration, installationId: installation, groupRef: "acme-1",
                provider: .salesforce, objectName: "contact", type: type, mode: mode, record: record, recordId: recordId,
                associations: associations, replyTo: replyTo, acceptedAt: "2026-12-05T12:00:00.123456Z", unifiedObject: unified,
                upsertOn: upsertOn, retryDeadlineHours: deadline, batch: batch, allOrNone: allOrNone, autoBatchDelaySeconds: autoBatch,
                bulk: bulk)
        }
        return [
            request(.create),
            request(.update, mode: .synchronous, recordId: "003000000000001AAA", associations: [["to": ["id": 7]]], replyTo: "api-1",
                    deadline: 2, autoBatch: 90),
            request(.upsert, record: ["first_name": "Ada"], unified: .contacts, upsertOn: UpsertOn(key: "email", values: ["a@b.c", "d@e.f"])),
            request(.create, batch: [BatchRecord(record: tricky, recordId: nil, associations: nil),
                                     BatchRecord(record: ["x": 1], recordId: "r2", associations: ["to": 1])], allOrNone: true),
            request(.upsert, mode: .bulk, record: [:], bulk: BulkWrite(primaryKey: "Email", header: ["Email", "Name"],
                                                                     recordsURL: "https://files.example.com/a.csv", bytes: 123)),
            request(.delete, mode: .bulk, record: [:], bulk: BulkWrite(primaryKey: "Id", header: ["Id"], recordsURL: nil, bytes: nil)),
        ]
    }

    static var results: [WriteResultMessage] {
        let requests = requests
        return [
            WriteResultMessage(request: requests[0], success: true, recordId: "003000000000002AAA", data: tricky, error: nil,
                               providerStatus: 201, possiblyDuplicated: false, attempts: 1, completedAt: "2026-12-05T12:00:01.000001Z",
                               version: 1_796_480_000_123_456),
            WriteResultMessage(request: requests[1], success: false, recordId: nil, data: nil,
                               error: WriteError(message: "no \"such\" field", code: "INVALID_FIELD", raw: "{\"a\":1}", deadLettered: true,
                                                 existingRecordId: "12"),
                               providerStatus: nil, possiblyDuplicated: true, attempts: 3, completedAt: "2026-12-05T12:00:02Z", version: 5),
            {
                var result = WriteResultMessage(request: requests[3], success: false, recordId: nil, data: nil,
                                                error: WriteError(message: "1 of 2 records failed"), providerStatus: 200,
                                                possiblyDuplicated: false, attempts: 1, completedAt: "2026-12-05T12:00:03Z", version: 6)
                result.results = [BatchItemResult(success: true, recordId: "a", data: ["x": 1], error: nil),
                                  BatchItemResult(success: false, recordId: nil, data: nil, error: WriteError(message: "bad"))]
                return result
            }(),
        ]
    }

    static var changes: [ChangeEvent] {
        results.prefix(1).flatMap { result in
            [ChangeEvent(result: result, recordId: "003000000000002AAA", fields: tricky),
             ChangeEvent(result: result, recordId: "r-7", fields: [:], index: 7, line: 8)]
        }
    }

    func agrees<T: Codable & Equatable>(_ value: T) throws {
        let ours = try JSONCoding.encode(value)
        let theirs = try Self.foundation(value)
        #expect(ours == theirs, "\(String(decoding: ours, as: UTF8.self))\n\(String(decoding: theirs, as: UTF8.self))")
        #expect(try JSONCoding.decode(T.self, from: theirs) == value, "our reader of Foundation's bytes")
        #expect(try JSONDecoder().decode(T.self, from: Data(ours)) == value, "Foundation's reader of our bytes")
    }

    @Test("every message of a write is written with the bytes Foundation writes, and each reads the other's")
    func messages() throws {
        for request in Self.requests { try agrees(request) }
        for result in Self.results {
            try agrees(result)
            // The lists and the plain objects the operations service and the api write on their own.
            if let items = result.results { try agrees(items) }
            if let error = result.error { try agrees([error]) }
        }
        try agrees(["operationId": "0f0e-\"quoted\"/slashed \u{1}", "b": "", "a": "Ló"])
        for change in Self.changes {
            try agrees(change)
            try agrees(CacheUpdateMessage(change: change.data, applied: false, updatedAt: "2026-12-05T12:00:04Z"))
        }
        try agrees(CacheUpdateMessage(changes: Self.changes.map { ($0.data, $0.data.version % 2 == 0) }, updatedAt: "2026-12-05T12:00:05Z"))
    }

    @Test("a destination update of the earlier shape (one record with its change) reads as an update of that record; a bulk row's as none")
    func earlierCacheUpdate() throws {
        for change in Self.changes {
            struct Earlier: Encodable { var change: ChangeData; var applied: Bool; var updatedAt: String }
            let bytes = try JSONEncoder().encode(Earlier(change: change.data, applied: true, updatedAt: "2026-12-05T12:00:04Z"))
            let update = try JSONCoding.decode(CacheUpdateMessage.self, from: Array(bytes))
            #expect(update.operationId == change.data.operationId && update.objectName == change.data.objectName)
            let expected = change.data.line == nil
                ? [CacheUpdateMessage.Record(recordId: change.data.recordId, version: change.data.version, applied: true)] : []
            #expect(update.records == expected)
        }
    }

    @Test("any JSON value: strings with escapes and any character, numbers of every size, nesting, keys in byte order")
    func values() throws {
        let value = JSONValue.object(Self.tricky.merging(["nested": .object(Self.tricky)]) { first, _ in first })
        try agrees(value)
        try agrees(Self.tricky)
        for text in ["\"\\u00e9\\ud83d\\ude00\\/\"", " [1 , 2.5e3,-0.25E-2 ,true,null] ", "\u{FEFF}{}", "0", "-0", "12345678901234567890"] {
            #expect(try JSONCoding.decode(JSONValue.self, from: text) == JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)), "\(text)")
        }
    }

    @Test("what is not JSON is refused, as Foundation refuses it; a comma ending an object or array is let go, as Foundation lets it")
    func refusals() throws {
        #expect(try JSONCoding.decode(JSONValue.self, from: "{\"a\":[1,],}") == ["a": [1]])
        let broken: [[UInt8]] = [
            Array("".utf8), Array("{".utf8), Array("{,}".utf8), Array("[,]".utf8), Array("{\"a\" 1}".utf8), Array("01".utf8),
            Array("1.".utf8), Array("1e".utf8), Array("\"a".utf8), Array("\"\\x\"".utf8), Array("\"\\ud800\"".utf8), Array("tru".utf8),
            Array("{} {}".utf8), [0x22, 0x09, 0x22], [0x22, 0xC3, 0x28, 0x22], Array("1e999".utf8), Array("NaN".utf8),
        ]
        for bytes in broken {
            #expect(throws: (any Error).self, "\(bytes)") { try JSONCoding.decode(JSONValue.self, from: bytes) }
            #expect(throws: (any Error).self, "Foundation: \(bytes)") { try JSONDecoder().decode(JSONValue.self, from: Data(bytes)) }
        }
    }

    @Test("a message missing a field it needs, or with a field of the wrong kind, is refused and names the field")
    func wrongFields() throws {
        var fields = try JSONCoding.decode([String: JSONValue].self, from: JSONCoding.encode(Self.results[0]))
        fields["success"] = "yes"
        #expect { try JSONCoding.decode(WriteResultMessage.self, from: JSONCoding.encode(fields)) } throws: { "\($0)".contains("success") }
        fields["success"] = nil
        #expect { try JSONCoding.decode(WriteResultMessage.self, from: JSONCoding.encode(fields)) } throws: { "\($0)".contains("success") }
        fields["success"] = true
        fields["attempts"] = .number(1.5)
        #expect { try JSONCoding.decode(WriteResultMessage.self, from: JSONCoding.encode(fields)) } throws: { "\($0)".contains("attempts") }
        fields["attempts"] = 1
        fields["provider"] = "myspace"
        #expect { try JSONCoding.decode(WriteResultMessage.self, from: JSONCoding.encode(fields)) } throws: { "\($0)".contains("provider") }
    }

    @Test("a change event's data read straight from its bytes is what the whole read gives, its fields as their JSON text; what the whole read refuses it refuses")
    func changeDataRead() throws {
        for change in Self.changes {
            let bytes = try JSONCoding.encode(change)
            let (data, text) = try ChangeData.read(event: bytes)
            #expect(try JSONReader.read(Array(text.utf8)) == .object(change.data.fields))
            var expected = change.data
            expected.fields = [:]
            #expect(data == expected)
            // In any member order, with space, null for the absent line, and the other attributes of any shape.
            var fields = try JSONCoding.decode([String: JSONValue].self, from: bytes)
            fields["extension"] = ["nested": [1, ["fields": "not these"]]]
            let pretty = JSONEncoder()
            pretty.outputFormatting = [.prettyPrinted]
            let (again, _) = try ChangeData.read(event: Array(try pretty.encode(JSONValue.object(fields))))
            #expect(again == expected)
        }
        let good = try JSONCoding.decode([String: JSONValue].self, from: JSONCoding.encode(Self.changes[0]))
        guard case .object(let data) = good["data"] else { Issue.record("no data"); return }
        let broken: [(key: String, value: JSONValue?)] = [
            ("recordId", nil), ("recordId", 7), ("version", "soon"), ("version", .number(1.5)), ("deleted", "no"), ("fields", "x"),
            ("fields", nil), ("provider", "myspace"), ("operation", nil), ("line", .number(2.5)),
        ]
        for (key, value) in broken {
            var changed = data
            changed[key] = value
            var event = good
            event["data"] = .object(changed)
            let bytes = try JSONCoding.encode(event)
            #expect(throws: (any Error).self, "\(key): \(String(describing: value))") { try JSONCoding.decode(ChangeEvent.self, from: bytes) }
            #expect { try ChangeData.read(event: bytes) } throws: { "\($0)".contains(key) }
        }
        for text in [#"{"data":{"fields":{"a":}}}"#, #"{"data":{"fields":{"a":"\x"}}}"#, #"{"data":{"fields":[1,}}}"#,
                     #"{"data":{"fields":{"a" 1}}}"#, #"{"data":{"fields":{"a":tru}}}"#, #"{"data":{"fields":{"a":"\#u{1}"}}}"#,
                     #"{"data":{"fields":{"a":01}}}"#, #"{"data":{"fields":{"a":1}"#, #"{"data":{}} x"#, #"[]"#, #"{"data":[]}"#,
                     #"{"data":{"fields":{"a":"\ud800"}}}"#, #"{"data":{"fields":{"a":"\udc00x"}}}"#, #"{"data":{"fields":{"a":"\ud800\u0041"}}}"#] {
            #expect(throws: (any Error).self, "\(text)") { try ChangeData.read(event: Array(text.utf8)) }
        }
        #expect(throws: (any Error).self) { try ChangeData.read(event: Array(#"{"other":1}"#.utf8)) }
        // A surrogate pair is read as the whole read reads it; of a repeated key the last counts, null too.
        let event = #"{"data":{"deleted":false,"fields":{"a":"\ud83d\ude00"},"groupRef":"g","installationId":"i","integrationId":"n","line":5,"#
            + #""line":null,"objectName":"o","operation":"create","operationId":"op","projectId":"p","provider":"salesforce","recordId":"r","#
            + #""version":1}}"#
        let (read, text) = try ChangeData.read(event: Array(event.utf8))
        #expect(read.line == nil && read.recordId == "r" && read.version == 1)
        #expect(try JSONReader.read(Array(text.utf8)) == ["a": "😀"])
    }

    @Test("a write's change events written from its shared pieces are the bytes of each record's ChangeEvent, with its routing key")
    func changeEventWriter() throws {
        for request in Self.requests {
            for status in [200, 201] {
                var result = WriteResultMessage(request: request, success: true, recordId: nil, data: nil, error: nil, providerStatus: status,
                                                possiblyDuplicated: false, attempts: 1, completedAt: "2026-12-05T12:00:01.000001Z",
                                                version: 1_796_480_000_123_456)
                result.objectName = "Con\"tact/x"
                let events = ChangeEvent.Writer(result: result)
                for (recordId, fields, index, line) in [("003000000000002AAA", Self.tricky, nil, nil), ("r-\"7\"/\\", [:], 7, 8),
                                                        ("42", ["a": .null], 0, nil)] as [(String, [String: JSONValue], Int?, Int?)] {
                    let event = ChangeEvent(result: result, recordId: recordId, fields: fields, index: index, line: line)
                    let ours = events.bytes(recordId: recordId, fields: fields, index: index, line: line)
                    #expect(ours == (try JSONCoding.encode(event)), "\(String(decoding: ours, as: UTF8.self))")
                    #expect(events.routingKey(recordId: recordId) == event.routingKey)
                    for created in [true, false] {
                        var upsert = event
                        if result.type == .upsert { upsert.type = ChangeEvent.type(of: .upsert, created: created) }
                        #expect(events.bytes(recordId: recordId, fields: fields, index: index, line: line, created: created)
                                == (try JSONCoding.encode(upsert)))
                    }
                }
            }
        }
    }

    @Test("fields named out of key order are written in key order, nested objects too")
    func unorderedFields() throws {
        struct Inner: JSONWritable {
            func writeFields(into fields: inout JSONFields) {
                fields.field("z", true)
                fields.field("y", ["b": 2, "a": 1] as [String: JSONValue])
            }
        }
        struct Outer: JSONWritable {
            func writeFields(into fields: inout JSONFields) {
                fields.field("b", 1)
                fields.field("inner", object: Inner())
                fields.field("a", "x")
                fields.field("absent", nil as String?)
                fields.field("aa", "y")
            }
        }
        #expect(String(decoding: Outer().jsonBytes(), as: UTF8.self) == #"{"a":"x","aa":"y","b":1,"inner":{"y":{"a":1,"b":2},"z":true}}"#)
    }
}

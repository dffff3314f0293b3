import Foundation
import Kafka
import Postgres
import Schema
import Shared
import TestSupport
import Testing

@testable import CacheInvalidator

@Suite("Destination upserts")
struct UpsertTests {
    static let project = UUID().uuidString.lowercased()

    /// A change event of `recordId` at `version`, as the writer publishes it, read as the cache-invalidator reads it.
    static func change(_ recordId: String, version: Int64, fields: [String: JSONValue], type: WriteType = .update, offset: Int64 = 0)
        throws -> CacheInvalidator.Change
    {
        let request = WriteRequestMessage(
            operationId: OperationIdentity.newOperationId(), projectId: project, integrationId: UUID().uuidString.lowercased(),
            installationId: UUID().uuidString.lowercased(), groupRef: "customer-1", provider: .salesforce, objectName: "contact",
            type: type, mode: .asynchronous, record: fields, recordId: type == .create ? nil : recordId, associations: nil, replyTo: nil,
            acceptedAt: Timestamp.now())
        let result = WriteResultMessage(
            request: request, success: true, recordId: recordId, data: fields, error: nil, providerStatus: type == .delete ? 204 : 200,
            possiblyDuplicated: false, attempts: 1, completedAt: Timestamp.now(), version: version)
        let event = ChangeEvent(result: result, recordId: recordId, fields: fields)
        return try CacheInvalidator.Change(KafkaMessage(
            topic: Topics.recordChanges, partition: 0, offset: offset, key: nil, value: JSONCoding.encode(event)))
    }

    /// `change` with its event's bytes rewritten by `edit`.
    static func edited(_ change: CacheInvalidator.Change, _ edit: (String) -> String) throws -> CacheInvalidator.Change {
        let text = edit(String(decoding: change.message.value, as: UTF8.self))
        return try CacheInvalidator.Change(KafkaMessage(topic: Topics.recordChanges, partition: 0, offset: 0, key: nil, value: Array(text.utf8)))
    }

    static func apply(_ changes: [CacheInvalidator.Change], to database: PostgresPool) async throws -> [Bool] {
        CacheInvalidator.applied(changes, try await database.pipeline(CacheInvalidator.upserts(changes)))
    }

    static func held(_ database: PostgresPool) async throws -> [String: (fields: JSONValue, version: Int64, deleted: Bool)] {
        let rows = try await database.query("SELECT record_id, fields::text AS fields, version, deleted FROM records")
        var held: [String: (fields: JSONValue, version: Int64, deleted: Bool)] = [:]
        for row in rows.rows {
            held[try row.string("record_id")] = (
                try JSONCoding.decode(JSONValue.self, from: Array(try row.string("fields").utf8)), Int64(try row.string("version"))!,
                row.bool("deleted") == true)
        }
        return held
    }

    @Test("every record's fields reach the destination as they were sent, whatever they hold; a record's changes apply in order")
    func fieldsAsSent() async throws {
        let database = try await freshDatabase("upserts", migrations: DestinationSchema.migrations)
        defer { database.shutdown() }
        let tricky: [String: JSONValue] = [
            "Quoted": "a \"quoted\" word, a back\\slash, {braces} and [brackets]", "Unicode": "ünïcode ✓ 🚀 \u{1}",
            "Nested": .object(["list": .array([.number(1), .number(2.5), .null, .bool(true)]), "empty": .object([:])]),
            "Nothing": .null, "Number": .number(-12.75),
        ]
        let changes = [
            try Self.change("001A", version: 10, fields: tricky, type: .create),
            try Self.change("001B", version: 10, fields: [:], type: .create),
            // A second change of 001A in the same batch: a round of its own, merged over the first.
            try Self.change("001A", version: 11, fields: ["Quoted": "replaced", "Added": "new, \"too\""]),
            try Self.change("001C", version: 10, fields: ["LastName": "Lovelace"], type: .create),
        ]
        #expect(try await Self.apply(changes, to: database) == [true, true, true, true])
        var expected = tricky
        expected["Quoted"] = "replaced"
        expected["Added"] = "new, \"too\""
        let held = try await Self.held(database)
        #expect(held["001A"]?.fields == .object(expected) && held["001A"]?.version == 11)
        #expect(held["001B"]?.fields == .object([:]) && held["001C"]?.fields == .object(["LastName": "Lovelace"]))

        // An older change of a record is not applied, and says so; a newer one is, a delete keeps the fields.
        let again = [
            try Self.change("001C", version: 9, fields: ["LastName": "Older"]),
            try Self.change("001B", version: 12, fields: ["Title": "Dr"]),
            try Self.change("001A", version: 12, fields: [:], type: .delete),
        ]
        #expect(try await Self.apply(again, to: database) == [false, true, true])
        let after = try await Self.held(database)
        #expect(after["001C"]?.fields == .object(["LastName": "Lovelace"]) && after["001C"]?.version == 10)
        #expect(after["001B"]?.fields == .object(["Title": "Dr"]))
        #expect(after["001A"]?.deleted == true && after["001A"]?.fields == .object(expected))
    }

    @Test("fields the destination's jsonb would refuse as sent (a comma ending an object or list) are held as their value")
    func lenientFields() async throws {
        let database = try await freshDatabase("lenient", migrations: DestinationSchema.migrations)
        defer { database.shutdown() }
        let sent = try Self.change("001D", version: 10, fields: ["LastName": "Lovelace", "Tags": .array(["a", "b"])], type: .create)
        let lenient = try Self.edited(sent) { text in
            text.replacingOccurrences(of: #""Tags":["a","b"]}"#, with: #""Tags":["a","b",],}"#)
        }
        #expect(String(decoding: lenient.message.value, as: UTF8.self).contains(#"["a","b",],}"#))
        #expect(lenient.fields.contains(",}") == false && lenient.fields.contains(",]") == false)
        #expect(try await Self.apply([lenient], to: database) == [true])
        #expect(try await Self.held(database)["001D"]?.fields == .object(["LastName": "Lovelace", "Tags": .array(["a", "b"])]))
    }
}

import Foundation
import Shared
import Testing

extension OneStack {
    /// The Write API end to end, through the real binaries, the Kafka protocol and PostgreSQL.
    @Suite("Write pipeline", .serialized)
    struct WritePipelineTests {
        /// What a synchronous success must have left behind: the answer, the destination row (already there
        /// when the answer came), the operation with its logs, and the change event on `record-changes`.
        func expectApplied(
            _ answer: TestStack.Answer, provider: String, object: String, type: String, fields: [String: JSONValue],
            sourceLocation: SourceLocation = #_sourceLocation
        ) async throws -> String {
            let stack = try TestStack.stack
            #expect(answer.status == 200, "answer: \(answer.body)", sourceLocation: sourceLocation)
            let operationId = try #require(answer.body["operationId"]?.stringValue, sourceLocation: sourceLocation)
            #expect(answer.body.at("result.success") == true, sourceLocation: sourceLocation)
            let recordId = try #require(answer.body.at("result.recordId")?.stringValue, sourceLocation: sourceLocation)

            // The destination row is read right after the answer: it must already hold this write.
            let row = try #require(try stack.destinationRow(provider: provider, object: object, recordId: recordId),
                                   "no destination row after the 200", sourceLocation: sourceLocation)
            #expect(row["operation_id"] == operationId, sourceLocation: sourceLocation)
            #expect(row.bool("deleted") == (type == "delete"), sourceLocation: sourceLocation)
            let stored = try JSONCoding.decode([String: JSONValue].self, from: try row.string("fields"))
            for (name, value) in fields {
                #expect(stored[name] == value, "destination field \(name)", sourceLocation: sourceLocation)
            }

            let operation = try await stack.finalOperation(operationId)
            #expect(operation["status"] == "success", sourceLocation: sourceLocation)
            #expect(operation["actionType"] == "write", sourceLocation: sourceLocation)
            #expect(operation.at("metadata.recordId")?.stringValue == recordId, sourceLocation: sourceLocation)
            #expect(operation.at("metadata.writeType")?.stringValue == type, sourceLocation: sourceLocation)
            let logs = try await stack.operationLogs(operationId)
            let messages = logs.compactMap { $0.at("message.msg")?.stringValue }
            #expect(messages.count == 3, "logs: \(messages)", sourceLocation: sourceLocation)
            #expect(messages.contains { $0.contains("accepted") }, sourceLocation: sourceLocation)
            #expect(messages.contains { $0.contains("\(provider) applied the \(type)") }, sourceLocation: sourceLocation)
            #expect(messages.contains("destination record updated"), sourceLocation: sourceLocation)

            let events = try stack.kcat(Topics.recordChanges).filter { $0["id"]?.stringValue == operationId }
            #expect(events.count == 1, sourceLocation: sourceLocation)
            let event = try #require(events.first, sourceLocation: sourceLocation)
            let verb = ["create": "created", "update": "updated", "delete": "deleted"][type]!
            #expect(event["specversion"] == "1.0", sourceLocation: sourceLocation)
            #expect(event["type"]?.stringValue == "com.writeback.record.\(verb)", sourceLocation: sourceLocation)
            #expect(event["subject"]?.stringValue == "\(object)/\(recordId)", sourceLocation: sourceLocation)
            #expect(event.at("data.recordId")?.stringValue == recordId, sourceLocation: sourceLocation)
            #expect(event.at("data.groupRef")?.stringValue == TestStack.groupRef, sourceLocation: sourceLocation)
            #expect(event.at("data.provider")?.stringValue == provider, sourceLocation: sourceLocation)
            for (name, value) in fields where type != "delete" {
                #expect(event.at("data.fields.\(name)") == value, "event field \(name)", sourceLocation: sourceLocation)
            }
            return recordId
        }

        @Test("a synchronous create, update and delete of a Salesforce contact")
        func salesforce() async throws {
            let stack = try TestStack.stack
            let created = try await stack.write("write-to-salesforce", "contact", [
                "groupRef": .string(TestStack.groupRef), "type": "create",
                "record": ["FirstName": "Harry", "LastName": "Potter", "Email": "harry@hogwarts.example"],
            ])
            let id = try await expectApplied(created, provider: "salesforce", object: "contact", type: "create",
                                             fields: ["FirstName": "Harry", "LastName": "Potter"])
            #expect(id.hasPrefix("003") && id.count == 18)
            var record = try await stack.salesforceRecord("Contact", id)
            #expect(record.status == 200)
            #expect(record.body["LastName"] == "Potter")

            let updated = try await stack.write("write-to-salesforce", "contact", [
                "groupRef": .string(TestStack.groupRef), "type": "update", "mode": "synchronous",
                "record": ["Id": .string(id), "Title": "Seeker"],
            ])
            _ = try await expectApplied(updated, provider: "salesforce", object: "contact", type: "update", fields: ["Title": "Seeker"])
            record = try await stack.salesforceRecord("Contact", id)
            #expect(record.body["Title"] == "Seeker")
            #expect(record.body["LastName"] == "Potter")
            let row = try #require(try stack.destinationRow(provider: "salesforce", object: "contact", recordId: id))
            let fields = try JSONCoding.decode([String: JSONValue].self, from: try row.string("fields"))
            #expect(fields == ["FirstName": "Harry", "LastName": "Potter", "Email": "harry@hogwarts.example", "Title": "Seeker"])

            let deleted = try await stack.write("write-to-salesforce", "contact", [
                "groupRef": .string(TestStack.groupRef), "type": "delete", "record": ["id": .string(id)],
            ])
            _ = try await expectApplied(deleted, provider: "salesforce", object: "contact", type: "delete", fields: [:])
            record = try await stack.salesforceRecord("Contact", id)
            #expect(record.status == 404)
            #expect(record.body.at("0.errorCode") == "ENTITY_IS_DELETED")
        }

        @Test("a synchronous create, update and delete of a HubSpot contact")
        func hubspot() async throws {
            let stack = try TestStack.stack
            let created = try await stack.write("write-to-hubspot", "contact", [
                "groupRef": .string(TestStack.groupRef), "type": "create",
                "record": ["email": "luna@hogwarts.example", "firstname": "Luna", "lastname": "Lovegood"],
            ])
            let id = try await expectApplied(created, provider: "hubspot", object: "contact", type: "create",
                                             fields: ["email": "luna@hogwarts.example", "firstname": "Luna"])
            #expect(Int(id) != nil)
            var object = try await stack.hubspotObject("contacts", id)
            #expect(object.status == 200)
            #expect(object.body.at("properties.lastname") == "Lovegood")

            let updated = try await stack.write("write-to-hubspot", "contact", [
                "groupRef": .string(TestStack.groupRef), "type": "update", "record": ["id": .string(id), "jobtitle": "Editor"],
            ])
            _ = try await expectApplied(updated, provider: "hubspot", object: "contact", type: "update", fields: ["jobtitle": "Editor"])
            object = try await stack.hubspotObject("contacts", id)
            #expect(object.body.at("properties.jobtitle") == "Editor")
            #expect(object.body.at("properties.firstname") == "Luna")

            let deleted = try await stack.write("write-to-hubspot", "contact", [
                "groupRef": .string(TestStack.groupRef), "type": "delete", "record": ["id": .string(id)],
            ])
            _ = try await expectApplied(deleted, provider: "hubspot", object: "contact", type: "delete", fields: [:])
            object = try await stack.hubspotObject("contacts", id)
            #expect(object.status == 404)
            #expect(object.body["category"] == "OBJECT_NOT_FOUND")
        }

        @Test("an asynchronous write answers at once with an operation id and is polled to success")
        func asynchronous() async throws {
            let stack = try TestStack.stack
            let accepted = try await stack.write("write-to-salesforce", "account", [
                "groupRef": .string(TestStack.groupRef), "type": "create", "mode": "asynchronous",
                "record": ["Name": "Gringotts", "Industry": "Banking"],
            ])
            #expect(accepted.status == 200)
            #expect(accepted.body["result"] == nil)
            let operationId = try #require(accepted.body["operationId"]?.stringValue)
            let operation = try await stack.finalOperation(operationId)
            #expect(operation["status"] == "success")
            #expect(operation.at("metadata.mode") == "asynchronous")
            let recordId = try #require(operation.at("metadata.successfulRecordIds.0")?.stringValue)
            #expect(recordId.hasPrefix("001"))
            let account = try await stack.salesforceRecord("Account", recordId)
            #expect(account.body["Name"] == "Gringotts")
            let row = try stack.destinationRow(provider: "salesforce", object: "account", recordId: recordId)
            #expect(row != nil)
        }

        @Test("a provider rejection answers 422 with the provider's message and fails the operation")
        func rejection() async throws {
            let stack = try TestStack.stack
            let salesforce = try await stack.write("write-to-salesforce", "contact", [
                "groupRef": .string(TestStack.groupRef), "record": ["FirstName": "Nearly Headless"],
            ])
            #expect(salesforce.status == 422)
            #expect(salesforce.body.at("result.success") == false)
            #expect(salesforce.body.at("errors.0.message") == "Required fields are missing: [LastName]")
            let operationId = try #require(salesforce.body["operationId"]?.stringValue)
            let operation = try await stack.finalOperation(operationId)
            #expect(operation["status"] == "failure")
            #expect(operation.at("metadata.errors.0.message") == "Required fields are missing: [LastName]")
            #expect(operation.at("metadata.errors.0.code") == "REQUIRED_FIELD_MISSING")
            let logs = try await stack.operationLogs(operationId)
            let failure = try #require(logs.first { $0["severity"] == "ERROR" })
            #expect(failure.at("message.error") == "Required fields are missing: [LastName]")
            #expect(try stack.kcat(Topics.recordChanges).allSatisfy { $0["id"]?.stringValue != operationId })

            let hubspot = try await stack.write("write-to-hubspot", "contact", [
                "groupRef": .string(TestStack.groupRef), "record": ["email": "peeves@hogwarts.example", "favouriteSpell": "Waddiwasi"],
            ])
            #expect(hubspot.status == 422)
            #expect(hubspot.body.at("errors.0.message")?.stringValue?.contains(#"Property "favouriteSpell" does not exist"#) == true)
            let hubspotOperation = try await stack.finalOperation(try #require(hubspot.body["operationId"]?.stringValue))
            #expect(hubspotOperation["status"] == "failure")
            #expect(hubspotOperation.at("metadata.errors.0.code") == "VALIDATION_ERROR")
        }

        @Test("the sandbox describes its objects as the providers do, and enforces what it describes")
        func providerMetadata() async throws {
            let stack = try TestStack.stack
            let describe = try await stack.call(
                "GET", "\(stack.sandboxURL)/services/data/v60.0/sobjects/Contact/describe/",
                headers: [("Authorization", "Bearer sandbox-salesforce-token")])
            #expect(describe.status == 200)
            #expect(describe.body["keyPrefix"] == "003")
            let fields = describe.body["fields"]?.arrayValue ?? []
            let required = fields.filter {
                $0["createable"] == true && $0["nillable"] == false && $0["defaultedOnCreate"] == false
            }.compactMap { $0["name"]?.stringValue }
            #expect(required == ["LastName"])
            let refused = try await stack.write("write-to-salesforce", "contact", [
                "groupRef": .string(TestStack.groupRef), "record": ["Email": "no.lastname@example.com"],
            ])
            #expect(refused.body.at("errors.0.message") == .string("Required fields are missing: [\(required.joined(separator: ", "))]"))

            let properties = try await stack.call(
                "GET", "\(stack.sandboxURL)/crm/v3/properties/contacts", headers: [("Authorization", "Bearer sandbox-hubspot-token")])
            let names = Set((properties.body["results"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue })
            #expect(names.isSuperset(of: ["email", "firstname", "lastname"]))
            #expect(!names.contains("favouriteSpell"))
            let limits = try await stack.call(
                "GET", "\(stack.sandboxURL)/services/data/v60.0/limits/", headers: [("Authorization", "Bearer sandbox-salesforce-token")])
            // The allocation /limits/ reports is the one every answer's Sforce-Limit-Info counts against.
            let usage = try #require(limits.headers["sforce-limit-info"]?.split(separator: "=").last?.split(separator: "/"))
            #expect(limits.body.at("DailyApiRequests.Max") == .number(Double(String(usage[1])) ?? -1))
            #expect(limits.body.at("DailyApiRequests.Remaining") == .number(Double((Int(usage[1]) ?? 0) - (Int(usage[0]) ?? 0))))
        }

        @Test("every service counts what it did at GET /metrics, in the Prometheus format")
        func metrics() async throws {
            let stack = try TestStack.stack
            let answer = try await stack.write("write-to-salesforce", "contact", [
                "groupRef": .string(TestStack.groupRef), "record": ["LastName": "Lupin"],
            ])
            #expect(answer.status == 200)
            _ = try await stack.finalOperation(try #require(answer.body["operationId"]?.stringValue))
            func value(_ text: String, _ prefix: String) -> Double? {
                text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { $0.split(separator: " ").last }
                    .flatMap { Double($0) }
            }
            let api = try await stack.metrics("api")
            #expect(api.contains("# TYPE writeback_writes_accepted_total counter"))
            #expect((value(api, #"writeback_writes_accepted_total{provider="salesforce",type="create",mode="synchronous"}"#) ?? 0) >= 1, "\(api)")
            #expect(api.contains("writeback_sync_write_duration_seconds_bucket"))
            let writer = try await stack.metrics("writer")
            #expect((value(writer, #"writeback_provider_calls_total{provider="salesforce",outcome="applied"}"#) ?? 0) >= 1, "\(writer)")
            let cache = try await stack.metrics("cache-invalidator")
            #expect((value(cache, #"writeback_destination_upserts_total{applied="true"}"#) ?? 0) >= 1, "\(cache)")
            let operations = try await stack.metrics("operations")
            #expect((value(operations, #"writeback_operation_updates_total{topic="cache-updates"}"#) ?? 0) >= 1, "\(operations)")
        }

        @Test("an Idempotency-Key replays the first answer; with another body it is a conflict")
        func idempotency() async throws {
            let stack = try TestStack.stack
            let key = ("Idempotency-Key", "create-neville-\(UInt32.random(in: 0...UInt32.max))")
            let body: JSONValue = ["groupRef": .string(TestStack.groupRef), "record": ["FirstName": "Neville", "LastName": "Longbottom"]]
            let first = try await stack.write("write-to-salesforce", "contact", body, headers: [key])
            #expect(first.status == 200)
            let second = try await stack.write("write-to-salesforce", "contact", body, headers: [key])
            #expect(second.status == 200)
            #expect(second.body == first.body)
            let creates = try await stack.providerCalls().filter {
                $0.at("body.LastName") == "Longbottom" && $0["method"] == "POST"
            }
            #expect(creates.count == 1)

            let other: JSONValue = ["groupRef": .string(TestStack.groupRef), "record": ["FirstName": "Neville", "LastName": "L."]]
            let conflict = try await stack.write("write-to-salesforce", "contact", other, headers: [key])
            #expect(conflict.status == 409)
            #expect(conflict.headers["content-type"] == "application/problem+json")
        }
    }
}

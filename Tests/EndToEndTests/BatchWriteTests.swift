import Foundation
import Shared
import Testing

extension OneStack {
    /// Batch writes: up to 100 records in one request, sent to the provider's batch endpoint in one call,
    /// answered per record in request order, each record in the destination and on the change topic.
    @Suite("Batch writes", .serialized)
    struct BatchWriteTests {
        let spec = try! OpenAPISchema(oracle: "ampersand/write.yaml")
        static let path = "/projects/{projectIdOrName}/integrations/{integrationId}/objects/{objectName}"

        func batch(_ integration: String, _ object: String, type: String = "create", allOrNone: Bool? = nil, mode: String = "synchronous",
                   _ records: [JSONValue]) async throws -> TestStack.Answer
        {
            var body: [String: JSONValue] = [
                "groupRef": .string(TestStack.groupRef), "type": .string(type), "mode": .string(mode),
                "batch": .array(records.map { ["record": $0] }),
            ]
            if let allOrNone { body["batchPolicy"] = ["allOrNone": .bool(allOrNone)] }
            let answer = try await TestStack.stack.write(integration, object, .object(body))
            if mode == "synchronous" {
                let problems = spec.problems(answer.body, path: Self.path, method: "POST", status: answer.status)
                #expect(problems.isEmpty, "\(answer.status) \(answer.body): \(problems)")
            }
            return answer
        }

        /// The provider calls whose body mentions `marker`.
        func calls(_ marker: String) async throws -> [JSONValue] {
            try await TestStack.stack.providerCalls().filter { ((try? JSONCoding.encodeString($0["body"] ?? .null)) ?? "").contains(marker) }
        }

        @Test("a Salesforce batch create is one composite call; each record is answered in order, stored and announced")
        func salesforceCreate() async throws {
            let stack = try TestStack.stack
            let names = (1...3).map { "Batch-SF-\($0)" }
            let answer = try await batch("write-to-salesforce", "contact", names.map { ["LastName": .string($0)] })
            try #require(answer.status == 200, "\(answer.body)")
            #expect(answer.body["successCount"] == 3 && answer.body["failureCount"] == 0)
            let results = answer.body["results"]?.arrayValue ?? []
            let ids = results.compactMap { $0["recordId"]?.stringValue }
            #expect(ids.count == 3 && Set(ids).count == 3)
            for (id, name) in zip(ids, names) {
                #expect(try await stack.salesforceRecord("Contact", id).body["LastName"] == .string(name))
                let row = try #require(try stack.destinationRow(provider: "salesforce", object: "contact", recordId: id))
                #expect(row["fields"]?.contains(name) == true)
            }
            let sent = try await calls("Batch-SF-1")
            #expect(sent.count == 1 && sent.first?["path"]?.stringValue?.hasSuffix("/composite/sobjects") == true, "\(sent)")
            let operationId = try #require(answer.body["operationId"]?.stringValue)
            let events = try stack.kcat(Topics.recordChanges).filter { $0.at("data.operationId") == .string(operationId) }
            #expect(Set(events.compactMap { $0["id"]?.stringValue }) == Set((0..<3).map { "\(operationId)/\($0)" }))
            let operation = try await stack.finalOperation(operationId)
            #expect(operation["status"] == "success")
            #expect(operation.at("metadata.successCount") == 3 && operation.at("metadata.successfulRecordIds")?.arrayValue?.count == 3)
        }

        @Test("a failure inside a batch fails that record only, unless allOrNone, which writes none")
        func partialAndAllOrNone() async throws {
            let stack = try TestStack.stack
            // HubSpot refuses the property that does not exist; the others are created.
            let partial = try await batch("write-to-hubspot", "company", [
                ["name": "Partial-HS-1"], ["name": "Partial-HS-2", "no_such_property": "x"], ["name": "Partial-HS-3"],
            ])
            #expect(partial.status == 422, "\(partial.body)")
            #expect(partial.body["successCount"] == 2 && partial.body["failureCount"] == 1)
            #expect(partial.body.at("results.1.success") == false && partial.body.at("results.2.success") == true)
            #expect(partial.body.at("errors.0.index") == 1)
            #expect(partial.body.at("errors.0.message")?.stringValue?.contains("no_such_property") == true, "\(partial.body)")
            #expect(try await calls("Partial-HS-1").count == 1, "one batch call")
            let created = try #require(partial.body.at("results.2.recordId")?.stringValue)
            #expect(try await stack.hubspotObject("companies", created).body.at("properties.name") == "Partial-HS-3")
            let operationId = try #require(partial.body["operationId"]?.stringValue)
            let operation = try await stack.finalOperation(operationId)
            #expect(operation["status"] == "failure" && operation.at("metadata.failureCount") == 1)
            let logs = try await stack.operationLogs(operationId)
            let recordLog = logs.first { $0.at("message.details.index") == "1" }
            #expect(recordLog?["severity"] == "ERROR" && recordLog?.at("message.error")?.stringValue?.contains("no_such_property") == true,
                    "\(logs)")

            // Salesforce with allOrNone: one record lacks LastName, so none is written.
            let whole = try await batch("write-to-salesforce", "contact", allOrNone: true, [
                ["LastName": "Whole-SF-1"], ["FirstName": "Whole-SF-2"], ["LastName": "Whole-SF-3"],
            ])
            #expect(whole.status == 422 && whole.body["successCount"] == 0 && whole.body["failureCount"] == 3, "\(whole.body)")
            #expect(whole.body.at("errors.1.message")?.stringValue?.contains("Required fields are missing") == true, "\(whole.body)")
            let contacts = try await stack.call("GET", "\(stack.sandboxURL)/services/data/v60.0/query?q=SELECT%20Id%20FROM%20Contact%20WHERE%20LastName%20IN%20('Whole-SF-1','Whole-SF-3')",
                                                headers: [("Authorization", "Bearer sandbox-salesforce-token")])
            #expect(contacts.body["totalSize"] == 0, "\(contacts.body)")
            // HubSpot with allOrNone: the one bad input refuses the whole batch.
            let refused = try await batch("write-to-hubspot", "company", allOrNone: true, [["name": "Whole-HS-1"], ["nope": "x"]])
            #expect(refused.status == 422 && refused.body["successCount"] == 0 && refused.body["failureCount"] == 2, "\(refused.body)")
        }

        @Test("a batch update, and an asynchronous batch read back from its operation")
        func updateAndAsynchronous() async throws {
            let stack = try TestStack.stack
            let created = try await batch("write-to-hubspot", "contact", [["email": "b1@example.com"], ["email": "b2@example.com"]])
            let ids = (created.body["results"]?.arrayValue ?? []).compactMap { $0["recordId"]?.stringValue }
            try #require(ids.count == 2, "\(created.body)")
            let updated = try await batch("write-to-hubspot", "contact", type: "update", zip(ids, ["One", "Two"]).map {
                ["id": .string($0), "firstname": .string($1)]
            })
            #expect(updated.status == 200 && updated.body["successCount"] == 2, "\(updated.body)")
            #expect(try await stack.hubspotObject("contacts", ids[1]).body.at("properties.firstname") == "Two")

            let queued = try await batch("write-to-salesforce", "account", mode: "asynchronous",
                                         (1...5).map { ["Name": .string("Async-Batch-\($0)")] })
            #expect(queued.status == 200 && queued.body.objectValue?.keys.sorted() == ["operationId"], "\(queued.body)")
            let operation = try await stack.finalOperation(try #require(queued.body["operationId"]?.stringValue))
            #expect(operation["status"] == "success" && operation.at("metadata.successCount") == 5, "\(operation)")
            #expect(operation["result"] == "batch create of 5 account records: 5 succeeded, 0 failed")
        }
    }
}

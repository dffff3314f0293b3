import Foundation
import Shared
import Testing

extension OneStack {
    /// Pipedrive, the third provider, through every kind of write: the Write API (synchronous, asynchronous,
    /// batch), bulk CSV upserts, the unified CRM API and the actions, with the same operations, destination
    /// rows and change events as the other providers; its burst limit and an expired OAuth token.
    @Suite("Pipedrive", .serialized)
    struct PipedriveTests {
        /// The sandbox's custom field "Warmth" of persons (its 40-character key, as personFields lists it).
        func warmthKey() async throws -> String {
            let fields = try await item("personFields", nil).body["data"]?.arrayValue ?? []
            return try #require(fields.first { $0["field_name"] == "Warmth" }?["field_code"]?.stringValue)
        }

        /// An item as Pipedrive holds it, through its API.
        func item(_ type: String, _ id: String?) async throws -> TestStack.Answer {
            let stack = try TestStack.stack
            return try await stack.call("GET", "\(stack.sandboxURL)/api/v2/\(type)\(id.map { "/\($0)" } ?? "")",
                                        headers: [("x-api-token", "sandbox-pipedrive-token")])
        }

        func write(_ object: String, _ body: [String: JSONValue]) async throws -> TestStack.Answer {
            var body = body
            body["groupRef"] = .string(TestStack.groupRef)
            return try await TestStack.stack.write("write-to-pipedrive", object, .object(body))
        }

        @Test("a person is created, updated and deleted synchronously: custom fields by key, the destination row and the change events")
        func synchronousLifecycle() async throws {
            let stack = try TestStack.stack
            let warmth = try await warmthKey()
            let created = try await write("person", ["record": ["name": "Ada Lovelace", "email": "ada@pipedrive.example", .init(stringLiteral: warmth): "hot"]])
            try #require(created.status == 200, "\(created.body)")
            let id = try #require(created.body.at("result.recordId")?.stringValue)
            let stored = try await item("persons", id).body["data"]
            #expect(stored?["name"] == "Ada Lovelace")
            #expect(stored?.at("emails.0.value") == "ada@pipedrive.example" && stored?.at("emails.0.primary") == true)
            #expect(stored?["custom_fields"]?[warmth] == "hot", "\(String(describing: stored))")
            let row = try #require(try stack.destinationRow(provider: "pipedrive", object: "person", recordId: id))
            #expect(row["fields"]?.contains("Ada Lovelace") == true)

            let updated = try await write("person", ["type": "update", "record": ["id": .string(id), "name": "Ada King"]])
            #expect(updated.status == 200, "\(updated.body)")
            #expect(try await item("persons", id).body.at("data.name") == "Ada King")
            #expect(try await item("persons", id).body.at("data.custom_fields.\(warmth)") == "hot", "an update keeps the other fields")

            let deleted = try await write("person", ["type": "delete", "record": ["id": .string(id)]])
            #expect(deleted.status == 200, "\(deleted.body)")
            #expect(try await item("persons", id).status == 404)
            let operationIds = [created, updated, deleted].compactMap { $0.body["operationId"]?.stringValue }
            for operationId in operationIds { #expect(try await stack.finalOperation(operationId)["status"] == "success") }
            let events = try stack.kcat(Topics.recordChanges).filter { $0.at("data.recordId") == .string(id) }
            #expect(events.compactMap { $0["type"]?.stringValue } == [
                "com.writeback.record.created", "com.writeback.record.updated", "com.writeback.record.deleted",
            ], "\(events)")
        }

        @Test("an unknown field is refused by Pipedrive and fails its operation with Pipedrive's reason; nothing is stored")
        func refused() async throws {
            let answer = try await write("deal", ["record": ["value": 100]])
            #expect(answer.body.at("result.success") == false, "\(answer.body)")
            let operationId = try #require(answer.body["operationId"]?.stringValue)
            let operation = try await TestStack.stack.finalOperation(operationId)
            #expect(operation["status"] == "failure")
            #expect(operation.at("metadata.errors.0.message")?.stringValue?.contains("title") == true, "\(operation)")
        }

        @Test("asynchronous writes and a batch land once each, one call per record (Pipedrive has no batch endpoint)")
        func asynchronousAndBatch() async throws {
            let stack = try TestStack.stack
            let accepted = try await write("organization", ["mode": "asynchronous", "record": ["name": "Gringotts"]])
            let operationId = try #require(accepted.body["operationId"]?.stringValue)
            let operation = try await stack.finalOperation(operationId)
            #expect(operation["status"] == "success", "\(operation)")
            let id = try #require(operation.at("metadata.recordId")?.stringValue ?? operation.at("metadata.successfulRecordIds.0")?.stringValue)
            #expect(try await item("organizations", id).body.at("data.name") == "Gringotts")

            let before = try await stack.providerCalls().count
            let batch = try await write("deal", ["batch": .array((1...3).map { ["record": ["title": .string("Deal \($0)"), "value": 10]] })])
            try #require(batch.status == 200, "\(batch.body)")
            #expect(batch.body["successCount"] == 3, "\(batch.body)")
            let ids = (batch.body["results"]?.arrayValue ?? []).compactMap { $0["recordId"]?.stringValue }
            #expect(Set(ids).count == 3)
            for (index, id) in ids.enumerated() { #expect(try await item("deals", id).body.at("data.title") == .string("Deal \(index + 1)")) }
            let calls = try await stack.providerCalls().dropFirst(before)
            #expect(calls.filter { $0["path"] == "/api/v2/deals" }.count == 3, "\(calls)")
        }

        @Test("a bulk CSV upsert by email adds the new persons and updates the known ones")
        func bulkUpsert() async throws {
            let stack = try TestStack.stack
            let known = try await write("person", ["record": ["name": "Known", "email": "known@bulk.example"]])
            let knownId = try #require(known.body.at("result.recordId")?.stringValue)
            let csv = "email,name\nknown@bulk.example,Known Renamed\nnew-1@bulk.example,New One\nnew-2@bulk.example,New Two\n"
            let answer = try await stack.call(
                "PUT", "\(stack.apiURL)/v1/projects/\(TestStack.project)/integrations/write-to-pipedrive/objects/person:async",
                body: try JSONCoding.encodeString(JSONValue.object([
                    "groupRef": .string(TestStack.groupRef), "type": "upsert", "primaryKey": "email", "recordsCSV": .string(csv),
                ])), headers: [("X-Api-Key", TestStack.apiKey), ("Content-Type", "application/json")])
            let operationId = try #require(answer.body["operationId"]?.stringValue, "\(answer.status) \(answer.body)")
            let operation = try await stack.finalOperation(operationId)
            #expect(operation.at("metadata.progress") == ["processed": 3, "succeeded": 3, "failed": 0, "total": 3], "\(operation)")
            #expect(try await item("persons", knownId).body.at("data.name") == "Known Renamed")
            let persons = try await item("persons", nil).body["data"]?.arrayValue ?? []
            #expect(persons.filter { $0.at("emails.0.value")?.stringValue?.hasSuffix("@bulk.example") == true }.count == 3)
        }

        @Test("the unified CRM API writes a Pipedrive person from the common schema, and upserts it by email")
        func unified() async throws {
            let stack = try TestStack.stack
            func crm(_ path: String, _ body: JSONValue) async throws -> TestStack.Answer {
                try await stack.call("POST", "\(stack.apiURL)/crm/v2\(path)", body: try JSONCoding.encodeString(body), headers: [
                    ("x-api-key", TestStack.apiKey), ("x-customer-id", TestStack.groupRef), ("x-provider-name", "pipedrive"),
                    ("Content-Type", "application/json"),
                ])
            }
            let created = try await crm("/contacts", ["record": [
                "first_name": "Grace", "last_name": "Hopper",
                "email_addresses": [["email_address": "grace@unified.example", "email_address_type": "primary"]],
            ]])
            try #require(created.status == 201, "\(created.body)")
            let id = try #require(created.body.at("record.id")?.stringValue)
            let stored = try await item("persons", id).body["data"]
            #expect(stored?["name"] == "Grace Hopper" && stored?.at("emails.0.value") == "grace@unified.example", "\(String(describing: stored))")
            let upserted = try await crm("/contacts/_upsert", ["record": ["first_name": "Amazing", "last_name": "Grace"],
                                                               "upsert_on": ["key": "email", "values": ["grace@unified.example"]]])
            #expect(upserted.status == 201 && upserted.body.at("record.id") == .string(id), "\(upserted.body)")
            #expect(try await item("persons", id).body.at("data.name") == "Amazing Grace")
            let leads = try await crm("/leads", ["record": ["last_name": "Nobody"]])
            #expect(leads.status == 501, "Pipedrive has no lead in the common schema: \(leads.body)")
        }

        @Test("the action catalog serves Pipedrive's persons, organizations and deals; a write action is an operation, a search reads")
        func actions() async throws {
            let stack = try TestStack.stack
            let headers = [("X-Api-Key", TestStack.apiKey), ("linked_account_id", TestStack.groupRef), ("Content-Type", "application/json")]
            let base = "\(stack.apiURL)/api/v2/integration-schema/pipedrive/actions"
            let listed = try await stack.call("GET", base, headers: headers)
            let ids = Set((listed.body.arrayValue ?? []).compactMap { $0["action_id"]?.stringValue })
            #expect(["httprequest", "create_person", "search_persons", "get_organization", "update_deal"].allSatisfy(ids.contains), "\(ids)")
            let created = try await stack.call("POST", "\(base)/create_person/execute",
                                               body: #"{"name": "Katherine Johnson", "email": "katherine@actions.example"}"#, headers: headers)
            #expect(created.status == 200 && created.body["node_status"] == "Success", "\(created.body)")
            let id = try #require(created.body.at("data.data.id")?.scalarText, "\(created.body)")
            #expect(created.body["operation_id"]?.stringValue != nil)
            let found = try await stack.call("POST", "\(base)/search_persons/execute",
                                             body: #"{"filters": {"email": "katherine@actions.example"}}"#, headers: headers)
            #expect(found.status == 200 && found.body.at("data.data.items.0.item.id")?.scalarText == id, "\(found.body)")
        }

        @Test("Pipedrive's burst limit holds writes back without losing any, and an expired OAuth token is renewed at its OAuth server")
        func limitsAndRenewal() async throws {
            let stack = try TestStack.stack
            try await stack.setOrg("pipedrive", "default", ["limits": ["windowMax": 3, "windowMilliseconds": 2000]])
            var operations: [String] = []
            for index in 1...8 {
                let answer = try await write("organization", ["mode": "asynchronous", "record": ["name": .string("Limited \(index)")]])
                operations.append(try #require(answer.body["operationId"]?.stringValue))
            }
            for operationId in operations { #expect(try await stack.finalOperation(operationId)["status"] == "success") }
            try await stack.setOrg("pipedrive", "default", ["limits": ["windowMax": 80, "windowMilliseconds": 2000]])
            let organizations = try await item("organizations", nil).body["data"]?.arrayValue ?? []
            #expect(organizations.filter { $0["name"]?.stringValue?.hasPrefix("Limited ") == true }.count == 8, "each once")

            _ = try await stack.call("PUT", "\(stack.sandboxURL)/_sandbox/tokens/expire?provider=pipedrive")
            let renewed = try await write("organization", ["record": ["name": "After renewal"]])
            #expect(renewed.status == 200 && renewed.body.at("result.success") == true, "\(renewed.body)")
            let renewals = try await stack.providerCalls().filter { $0["path"] == "/pipedrive-oauth/oauth/token" }
            #expect(renewals.last?["status"] == 200, "\(renewals)")
        }
    }
}

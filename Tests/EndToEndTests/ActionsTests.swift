import Foundation
import Shared
import Testing

/// Actions: the catalog of read and write actions per app, executed for a linked account (the
/// `/api/v2/integration-schema` shape), and per-connection action instances that customers customize
/// (the `/connections/{integrationKey}/actions` shape), run against the whole stack as separate
/// processes. Requests are the seed documents' own, with the host and ids replaced.
@Suite("Actions", .serialized, .stack("actions", environment: [
    "SANDBOX_SALESFORCE_TOKENS": "sandbox-salesforce-token,acme-salesforce-token@acme",
    "API_METADATA_CACHE_SECONDS": "600",
]))
struct ActionsTests {
    static let acme = "acme-customer"
    static let other = "other-customer"

    func execute(_ app: String, _ action: String, _ body: JSONValue?, account: String = TestStack.groupRef, method: String = "POST")
        async throws -> TestStack.Answer
    {
        let stack = try TestStack.stack
        let path = "\(stack.apiURL)/api/v2/integration-schema/\(app)/actions" + (method == "POST" ? "/\(action)/execute" : action)
        return try await stack.call(method, path, body: try body.map { try JSONCoding.encodeString($0) }, headers: [
            ("x-api-key", TestStack.apiKey), ("linked_account_id", account), ("Content-Type", "application/json"),
        ])
    }

    /// Installs the Salesforce integration for a customer whose org has custom fields on Contact, and the
    /// HubSpot one for a second customer; both once per suite.
    func customers() async throws {
        let stack = try TestStack.stack
        let existing = try await stack.control("GET", "/integrations/write-to-salesforce/installations")
        if existing.body.at("0") != nil, "\(existing.body)".contains(Self.acme) { return }
        _ = try await stack.call("PUT", "\(stack.sandboxURL)/_sandbox/orgs/salesforce/acme",
                                 body: #"{"objects": {"Contact": {"fields": ["Warmth__c"]}}}"#)
        try await stack.install("write-to-salesforce", provider: "salesforce", groupRef: Self.acme, token: "acme-salesforce-token")
        try await stack.install("write-to-hubspot", provider: "hubspot", groupRef: Self.other, token: "sandbox-hubspot-token")
    }

    /// The provider's read and write calls so far.
    func providerCallCount() async throws -> (reads: Int, writes: Int) {
        let calls = try await TestStack.stack.providerCalls()
        let reads = calls.filter { call in
            call["method"] == "GET" || (call["method"] == "POST" && call["path"]?.stringValue?.hasSuffix("/search") == true)
        }
        return (reads.count, calls.count - reads.count)
    }

    func operationCount() throws -> Int {
        Int(try TestStack.stack.controlQuery("SELECT count(*)::text AS n FROM operations").first?["n"] ?? "0") ?? 0
    }

    @Test("the catalog lists each app's actions, with parameter schemas read from the customer's own account")
    func catalog() async throws {
        try await customers()
        for (app, objects) in [("hubspot", ["contact", "company"]), ("salesforce", ["contact", "account"])] {
            let listed = try await execute(app, "", nil, method: "GET")
            try #require(listed.status == 200, "\(listed.body)")
            let actions = listed.body.arrayValue ?? []
            for action in actions {
                #expect(action["name"]?.stringValue != nil && action["description"]?.stringValue != nil && action["tag"] == "v2", "\(action)")
            }
            let ids = Set(actions.compactMap { $0["action_id"]?.stringValue })
            var expected: Set<String> = ["httprequest"]
            for object in objects {
                let plural = object == "company" ? "companies" : "\(object)s"
                expected.formUnion(["get_\(object)", "search_\(plural)", "create_\(object)", "update_\(object)", "delete_\(object)"])
            }
            #expect(expected.isSubset(of: ids), "\(app): \(ids)")
        }

        // HubSpot's create_contact: one parameter per writable property.
        let hubspot = try await execute("hubspot", "/create_contact", nil, method: "GET")
        try #require(hubspot.status == 200, "\(hubspot.body)")
        let parameters = Dictionary(uniqueKeysWithValues: (hubspot.body.arrayValue ?? []).compactMap { p in p["name"]?.stringValue.map { ($0, p) } })
        #expect(parameters["email"]?["type"] == "text" && parameters["email"]?["required"] == false, "\(parameters.keys.sorted())")
        #expect(parameters["firstname"]?["label"]?.stringValue?.isEmpty == false)
        #expect(parameters["hs_object_id"] == nil, "read-only properties are not parameters")

        // Salesforce, for the customer whose org has a custom field: the field is a parameter, LastName required.
        let salesforce = try await execute("salesforce", "/create_contact?format=json-schema", nil, account: Self.acme, method: "GET")
        try #require(salesforce.status == 200, "\(salesforce.body)")
        #expect(salesforce.body["type"] == "object" && salesforce.body["additionalProperties"] == false)
        #expect(salesforce.body["required"] == ["LastName"], "\(salesforce.body["required"] ?? .null)")
        #expect(salesforce.body.at("properties.Warmth__c.description")?.stringValue?.contains("custom field") == true)
        #expect(salesforce.body.at("properties.Email.type") == "string")
        #expect(salesforce.body.at("properties.HasOptedOutOfEmail.type") == "boolean")
        let defaultOrg = try await execute("salesforce", "/create_contact?format=json-schema", nil, method: "GET")
        #expect(defaultOrg.body.at("properties.Warmth__c") == nil, "another customer's custom field leaked into a schema")

        let unknownApp = try await execute("zendesk", "", nil, method: "GET")
        #expect(unknownApp.status == 404 && unknownApp.body["node_status"] == "Failed")
        let unknownAction = try await execute("hubspot", "create_ticket", ["subject": "x"])
        #expect(unknownAction.status == 404 && unknownAction.body["message"]?.stringValue?.contains("create_ticket") == true)
        let noAccount = try await TestStack.stack.call("GET", "\(TestStack.stack.apiURL)/api/v2/integration-schema/hubspot/actions",
                                                       headers: [("x-api-key", TestStack.apiKey)])
        #expect(noAccount.status == 400 && noAccount.body.at("errors.0.parameter") == "linked_account_id", "\(noAccount.body)")
        let badKey = try await TestStack.stack.call("GET", "\(TestStack.stack.apiURL)/api/v2/integration-schema/hubspot/actions",
                                                    headers: [("x-api-key", "wrong"), ("linked_account_id", TestStack.groupRef)])
        #expect(badKey.status == 401)
    }

    @Test("a write action is an operation, lands in the provider and the destination, and is announced; a read changes nothing")
    func executeWriteThenRead() async throws {
        let stack = try TestStack.stack
        try await customers()
        // The seed's write, as it is.
        let created = try await execute("hubspot", "create_contact", ["email": "jane@example.com", "firstname": "Jane", "lastname": "Doe"])
        try #require(created.status == 200, "\(created.body)")
        #expect(created.body["node_status"] == "Success")
        let id = try #require(created.body.at("data.id")?.stringValue)
        #expect(created.body.at("data.createdAt")?.stringValue != nil)
        let operationId = try #require(created.headers["x-operation-id"])
        #expect(created.body["operation_id"]?.stringValue == operationId)
        let operation = try await stack.finalOperation(operationId)
        #expect(operation["status"] == "success", "\(operation)")
        #expect(try await stack.hubspotObject("contacts", id).body.at("properties.lastname") == "Doe")
        var row = try stack.destinationRow(provider: "hubspot", object: "contact", recordId: id)
        for _ in 0..<100 where row == nil {
            try await Task.sleep(for: .milliseconds(100))
            row = try stack.destinationRow(provider: "hubspot", object: "contact", recordId: id)
        }
        let fields = try JSONCoding.decode(JSONValue.self, from: try #require(row?["fields"], "no destination row"))
        #expect(fields["email"] == "jane@example.com", "\(fields)")
        let events = try stack.kcat(Topics.recordChanges).filter { $0.at("data.operationId") == .string(operationId) }
        #expect(events.count == 1 && events.first?.at("data.recordId") == .string(id), "\(events)")

        // The seed's read, as it is ("limit" sent as a string): the provider's own page of contacts.
        let before = try await providerCallCount()
        let operationsBefore = try operationCount()
        let held = try await stack.hubspotObject("contacts", id).body
        let read = try await execute("hubspot", "get_contact", ["limit": "1"])
        try #require(read.status == 200, "\(read.body)")
        #expect(read.body["node_status"] == "Success")
        let results = read.body.at("data.results")?.arrayValue ?? []
        #expect(results.count == 1 && results.first?["properties"]?.objectValue != nil && results.first?["archived"] == false, "\(read.body)")
        let one = try await execute("hubspot", "get_contact", ["id": .string(id), "properties": ["email", "lastname"]])
        #expect(one.body.at("data.id") == .string(id) && one.body.at("data.properties.email") == "jane@example.com", "\(one.body)")
        #expect(one.body.at("data.properties.firstname") == nil, "properties did not select the fields")
        let found = try await execute("hubspot", "search_contacts", ["filters": ["email": "jane@example.com"]])
        #expect(found.body.at("data.results.0.id") == .string(id), "\(found.body)")
        let after = try await providerCallCount()
        #expect(after.writes == before.writes, "a read action made a write call")
        #expect(try operationCount() == operationsBefore, "a read action made an operation")
        #expect(try await stack.hubspotObject("contacts", id).body == held, "a read action changed the record")

        // A read over the account's rate limit: answered 429 with the provider's own answer.
        let limits = try await stack.call("GET", "\(stack.sandboxURL)/_sandbox/orgs/hubspot/default").body["limits"] ?? .null
        _ = try await stack.call("PUT", "\(stack.sandboxURL)/_sandbox/orgs/hubspot/default",
                                 body: #"{"limits": {"windowMax": 1, "windowMilliseconds": 60000}}"#)
        var limited: TestStack.Answer?
        for _ in 0..<3 {
            let answer = try await execute("hubspot", "get_contact", ["id": .string(id)])
            if answer.status != 200 { limited = answer; break }
        }
        _ = try await stack.call("PUT", "\(stack.sandboxURL)/_sandbox/orgs/hubspot/default",
                                 body: try JSONCoding.encodeString(["limits": limits] as JSONValue))
        #expect(limited?.status == 429 && limited?.body.at("data.errorType") == "RATE_LIMIT", "\(limited?.body ?? .null)")

        // Raw HTTP with the stored credentials.
        let raw = try await execute("hubspot", "httprequest", ["method": "GET", "path": .string("/crm/v3/objects/contacts/\(id)")])
        #expect(raw.status == 200 && raw.body.at("data.status") == 200 && raw.body.at("data.body.id") == .string(id), "\(raw.body)")
    }

    @Test("Salesforce contacts through actions: create with a custom field, search, update, get, delete")
    func salesforceLifecycle() async throws {
        let stack = try TestStack.stack
        try await customers()
        let created = try await execute("salesforce", "create_contact", [
            "LastName": "Hopper", "Email": "grace@example.com", "Warmth__c": "warm", "HasOptedOutOfEmail": "true",
        ], account: Self.acme)
        try #require(created.status == 200, "\(created.body)")
        let id = try #require(created.body.at("data.id")?.stringValue)
        #expect(created.body.at("data.success") == true)
        let record = try await stack.call("GET", "\(stack.sandboxURL)/services/data/v60.0/sobjects/Contact/\(id)",
                                          headers: [("Authorization", "Bearer acme-salesforce-token")]).body
        #expect(record["Warmth__c"] == "warm" && record["HasOptedOutOfEmail"] == true, "\(record)")

        let found = try await execute("salesforce", "search_contacts", ["filters": ["Email": "grace@example.com"], "limit": 5],
                                      account: Self.acme)
        #expect(found.body.at("data.records.0.Id") == .string(id) && found.body.at("data.totalSize") == 1, "\(found.body)")
        let updated = try await execute("salesforce", "update_contact", ["id": .string(id), "Title": "Rear Admiral"], account: Self.acme)
        #expect(updated.status == 200 && updated.body.at("data.id") == .string(id), "\(updated.body)")
        let got = try await execute("salesforce", "get_contact", ["id": .string(id)], account: Self.acme)
        #expect(got.body.at("data.Title") == "Rear Admiral" && got.body.at("data.attributes.type") == "Contact", "\(got.body)")
        let deleted = try await execute("salesforce", "delete_contact", ["id": .string(id)], account: Self.acme)
        #expect(deleted.status == 200, "\(deleted.body)")
        let gone = try await execute("salesforce", "get_contact", ["id": .string(id)], account: Self.acme)
        #expect(gone.status == 404 && gone.body["node_status"] == "Failed", "\(gone.body)")
        let operation = try await stack.finalOperation(try #require(deleted.headers["x-operation-id"]))
        #expect(operation["status"] == "success")
    }

    @Test("inputs that do not fit the action's schema are refused before anything is sent, naming the parameter")
    func invalidInputs() async throws {
        try await customers()
        let before = try await providerCallCount()
        let operationsBefore = try operationCount()
        let cases: [(String, String, JSONValue, String, String)] = [
            ("hubspot", "create_contact", ["emial": "jane@example.com"], "emial", "did you mean 'email'"),
            ("hubspot", "get_contact", ["limit": "many"], "limit", "whole number"),
            ("hubspot", "get_contact", ["limit": 1000], "limit", "at most 100"),
            ("hubspot", "search_contacts", ["filters": ["emal": "x"]], "filters.emal", "not a field"),
            ("hubspot", "search_contacts", ["limit": 1], "filters", "is required"),
            ("hubspot", "update_contact", ["email": "x@example.com"], "id", "is required"),
            ("salesforce", "create_contact", ["Email": "no-last-name@example.com"], "LastName", "is required"),
            ("salesforce", "create_contact", ["LastName": "X", "HasOptedOutOfEmail": "perhaps"], "HasOptedOutOfEmail", "boolean"),
            ("salesforce", "create_contact", ["LastName": "X", "Birthdate": "26/11/2026"], "Birthdate", "date"),
            ("hubspot", "httprequest", ["method": "TRACE", "path": "/x"], "method", "one of"),
        ]
        for (app, action, body, parameter, words) in cases {
            let answer = try await execute(app, action, body, account: app == "salesforce" ? Self.acme : TestStack.groupRef)
            #expect(answer.status == 400, "\(action) \(body): \(answer.status) \(answer.body)")
            #expect(answer.body["node_status"] == "Failed")
            let errors = answer.body["errors"]?.arrayValue ?? []
            #expect(errors.contains { $0["parameter"] == .string(parameter) && $0["message"]?.stringValue?.contains(words) == true },
                    "\(action) \(body): \(answer.body)")
            #expect(answer.body["message"]?.stringValue?.contains(parameter) == true, "\(answer.body)")
        }
        let broken = try await TestStack.stack.call(
            "POST", "\(TestStack.stack.apiURL)/api/v2/integration-schema/hubspot/actions/create_contact/execute", body: "{not json",
            headers: [("x-api-key", TestStack.apiKey), ("linked_account_id", TestStack.groupRef)])
        #expect(broken.status == 400)
        let after = try await providerCallCount()
        #expect(after.writes == before.writes, "a refused input reached the provider")
        #expect(try operationCount() == operationsBefore, "a refused input made an operation")
    }
}

import Foundation
import JWTKit
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

    // MARK: Action instances

    /// A customer token as a backend signs it.
    func token(_ customer: String, key: String, secret: String, digest: DigestAlgorithm = .sha256,
               expires: Date? = Date().addingTimeInterval(3600)) async throws -> String
    {
        try await TestStack.customerToken(customer, key: key, secret: secret, digest: digest, expires: expires)
    }

    func instance(_ method: String, _ path: String, token: String, _ body: JSONValue? = nil) async throws -> TestStack.Answer {
        let stack = try TestStack.stack
        return try await stack.call(method, "\(stack.apiURL)/connections/\(path)", body: try body.map { try JSONCoding.encodeString($0) },
                                    headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")])
    }

    func signingKey() async throws -> (key: String, secret: String) {
        let made = try await TestStack.stack.control("POST", "/customer-token-keys", ["label": "tests"])
        try #require(made.status == 201, "\(made.body)")
        return (try #require(made.body["key"]?.stringValue), try #require(made.body["secret"]?.stringValue))
    }

    @Test("action instances: made on first access, listed, run, customized to write differently, reset, set up again, archived")
    func instances() async throws {
        let stack = try TestStack.stack
        try await customers()
        let (key, secret) = try await signingKey()
        let listedKeys = try await stack.control("GET", "/customer-token-keys")
        #expect(!"\(listedKeys.body)".contains(secret), "a signing secret was shown again")
        let customer = try await token(TestStack.groupRef, key: key, secret: secret)

        // List: an instance of every catalog action, each with its schemas.
        let list = try await instance("GET", "write-to-hubspot/actions", token: customer)
        try #require(list.status == 200, "\(list.body)")
        let items = list.body["items"]?.arrayValue ?? []
        let keys = Set(items.compactMap { $0["key"]?.stringValue })
        #expect(keys.isSuperset(of: ["create-contact", "get-contact", "http-request"]), "\(keys)")
        #expect(items.allSatisfy { $0["inputSchema"]?["type"] == "object" && $0["outputSchema"] != nil && $0["isCustomized"] == false })

        // Get: the same instance on every access.
        let first = try await instance("GET", "hubspot/actions/create-contact", token: customer)
        try #require(first.status == 200, "\(first.body)")
        let instanceId = try #require(first.body["id"]?.stringValue)
        #expect(first.body["type"] == "create-data-record" && first.body["userId"] == .string(TestStack.groupRef))
        #expect(first.body.at("config.dataSource.collectionKey") == "contacts")
        #expect(try await instance("GET", "write-to-hubspot/actions/create-contact", token: customer).body["id"] == .string(instanceId))

        // Run as it is: the input's fields are written; the output fits the output schema.
        let checker = OpenAPISchema()
        let plain = try await instance("POST", "hubspot/actions/create-contact/run", token: customer,
                                       ["email": "plain@example.com", "firstname": "Plain", "lastname": "Jones"])
        try #require(plain.status == 200, "\(plain.body)")
        let plainOutput = try #require(plain.body["output"])
        #expect(checker.problems(plainOutput, schema: try #require(first.body["outputSchema"])).isEmpty, "\(plainOutput)")
        let plainId = try #require(plainOutput["id"]?.stringValue)
        let plainRecord = try await stack.hubspotObject("contacts", plainId).body["properties"] ?? .null
        #expect(plainRecord["lastname"] == "Jones" && plainRecord["firstname"] == "Plain" && plainRecord["lifecyclestage"] != "customer")
        #expect(try await stack.finalOperation(try #require(plainOutput["operationId"]?.stringValue))["status"] == "success")

        // Customize: lastname comes from the input's "surname", lifecyclestage is always "customer",
        // firstname defaults to "Friend".
        let patched = try await instance("PATCH", "hubspot/actions/create-contact", token: customer, [
            "config": [
                "fieldMapping": ["lastname": ["$var": "$.input.surname"], "lifecyclestage": "customer"],
                "inputDefaults": ["firstname": "Friend"],
            ],
        ])
        try #require(patched.status == 200, "\(patched.body)")
        #expect(patched.body["isCustomized"] == true && patched.body["id"] == .string(instanceId))
        #expect(patched.body.at("inputSchema.properties.surname") != nil && patched.body.at("inputSchema.properties.lastname") == nil)
        #expect(patched.body.at("inputSchema.properties.firstname.default") == "Friend")
        let custom = try await instance("POST", "hubspot/actions/create-contact/run", token: customer,
                                        ["email": "custom@example.com", "surname": "Smith"])
        try #require(custom.status == 200, "\(custom.body)")
        let customRecord = try await stack.hubspotObject("contacts", try #require(custom.body.at("output.id")?.stringValue)).body["properties"]
        #expect(customRecord?["lastname"] == "Smith" && customRecord?["firstname"] == "Friend" && customRecord?["lifecyclestage"] == "customer",
                "\(customRecord ?? .null)")
        #expect(customRecord?["surname"] == nil)
        // The customized schema refuses the old input name, naming it.
        let old = try await instance("POST", "hubspot/actions/create-contact/run", token: customer, ["email": "x@example.com", "lastname": "Old"])
        #expect(old.status == 400 && old.body.at("data.errors.0.path") == "lastname", "\(old.body)")
        let badPatch = try await instance("PATCH", "hubspot/actions/create-contact", token: customer,
                                          ["config": ["fieldMapping": ["lastnme": "x"], "inputDefault": [:]]])
        #expect(badPatch.status == 400, "\(badPatch.body)")
        let badPaths = Set((badPatch.body.at("data.errors")?.arrayValue ?? []).compactMap { $0["path"]?.stringValue })
        #expect(badPaths == ["config.fieldMapping.lastnme", "config.inputDefault"], "\(badPatch.body)")

        // Reset: back to the default; a run writes as before.
        let reset = try await instance("POST", "hubspot/actions/create-contact/reset", token: customer)
        #expect(reset.status == 200 && reset.body["isCustomized"] == false && reset.body.at("config.fieldMapping") == [:], "\(reset.body)")
        #expect(reset.body.at("inputSchema.properties.lastname") != nil && reset.body.at("inputSchema.properties.surname") == nil)
        let again = try await instance("POST", "hubspot/actions/create-contact/run", token: customer,
                                       ["email": "again@example.com", "lastname": "Jones"])
        try #require(again.status == 200, "\(again.body)")
        let againRecord = try await stack.hubspotObject("contacts", try #require(again.body.at("output.id")?.stringValue)).body["properties"]
        #expect(againRecord?["lastname"] == "Jones" && againRecord?["firstname"] == nil && againRecord?["lifecyclestage"] != "customer",
                "\(againRecord ?? .null)")

        // A read instance: the record as {id, fields}, fitting the output schema; nothing written.
        let writesBefore = try await providerCallCount().writes
        let getInstance = try await instance("GET", "hubspot/actions/get-contact", token: customer)
        let got = try await instance("POST", "hubspot/actions/get-contact/run", token: customer, ["id": .string(plainId)])
        try #require(got.status == 200, "\(got.body)")
        #expect(got.body.at("output.record.id") == .string(plainId) && got.body.at("output.record.fields.email") == "plain@example.com")
        #expect(checker.problems(try #require(got.body["output"]), schema: try #require(getInstance.body["outputSchema"])).isEmpty)
        #expect(try await providerCallCount().writes == writesBefore)

        // Archive: the instance is gone; the next access makes a fresh one.
        let archived = try await instance("DELETE", "hubspot/actions/create-contact", token: customer)
        #expect(archived.status == 200 && archived.body["archivedAt"]?.stringValue != nil && archived.body["state"] == "ARCHIVED")
        let fresh = try await instance("GET", "hubspot/actions/create-contact", token: customer)
        #expect(fresh.body["id"] != .string(instanceId) && fresh.body["isCustomized"] == false, "\(fresh.body)")
    }

    @Test("setting an instance up reads the account's fields again, so a field added since appears in its input")
    func setup() async throws {
        let stack = try TestStack.stack
        try await customers()
        let (key, secret) = try await signingKey()
        let acme = try await token(Self.acme, key: key, secret: secret, digest: .sha512)
        let before = try await instance("GET", "write-to-salesforce/actions/create-contact", token: acme)
        try #require(before.status == 200, "\(before.body)")
        #expect(before.body.at("inputSchema.properties.Warmth__c") != nil && before.body.at("inputSchema.properties.Loyalty__c") == nil)
        _ = try await stack.call("PUT", "\(stack.sandboxURL)/_sandbox/orgs/salesforce/acme",
                                 body: #"{"objects": {"Contact": {"fields": ["Warmth__c", "Loyalty__c"]}}}"#)
        let cached = try await instance("GET", "write-to-salesforce/actions/create-contact", token: acme)
        #expect(cached.body.at("inputSchema.properties.Loyalty__c") == nil, "the fields were read again without a setup")
        let setUp = try await instance("POST", "write-to-salesforce/actions/create-contact/setup", token: acme)
        try #require(setUp.status == 200, "\(setUp.body)")
        #expect(setUp.body.at("inputSchema.properties.Loyalty__c.description")?.stringValue?.contains("custom field") == true, "\(setUp.body)")
        #expect(setUp.body.at("dependencies.fieldsReadAt")?.stringValue != nil)
        let run = try await instance("POST", "write-to-salesforce/actions/create-contact/run", token: acme,
                                     ["LastName": "Loyal", "Loyalty__c": "gold"])
        try #require(run.status == 200, "\(run.body)")
        let id = try #require(run.body.at("output.id")?.stringValue)
        let record = try await stack.call("GET", "\(stack.sandboxURL)/services/data/v60.0/sobjects/Contact/\(id)",
                                          headers: [("Authorization", "Bearer acme-salesforce-token")]).body
        #expect(record["Loyalty__c"] == "gold", "\(record)")
    }

    @Test("a customer token reaches only its own customer's connections; bad, expired, unsigned and revoked tokens are refused")
    func customerIsolation() async throws {
        let stack = try TestStack.stack
        try await customers()
        let (key, secret) = try await signingKey()
        let mine = try await token(TestStack.groupRef, key: key, secret: secret)
        let theirs = try await token(Self.other, key: key, secret: secret)
        let own = try await instance("GET", "write-to-hubspot/actions/create-contact", token: mine)
        try #require(own.status == 200, "\(own.body)")
        let connectionId = try #require(own.body["connectionId"]?.stringValue)
        _ = try await instance("PATCH", "write-to-hubspot/actions/create-contact", token: mine,
                               ["config": ["inputDefaults": ["lifecyclestage": "lead"]]])

        // The other customer's token on this customer's connection, by its id: refused, nothing written.
        let writes = try await providerCallCount().writes
        for (method, path, body) in [
            ("POST", "\(connectionId)/actions/create-contact/run", ["email": "intruder@example.com"] as JSONValue?),
            ("GET", "\(connectionId)/actions/create-contact", nil), ("GET", "\(connectionId)/actions", nil),
            ("PATCH", "\(connectionId)/actions/create-contact", ["config": ["inputDefaults": [:]]]),
        ] {
            let refused = try await instance(method, path, token: theirs, body)
            #expect(refused.status == 404 && refused.body["type"] == "not_found", "\(method) \(path): \(refused.status) \(refused.body)")
        }
        #expect(try await providerCallCount().writes == writes)
        // Its own connection of the same integration has its own instance, untouched by the first's customization.
        let theirsInstance = try await instance("GET", "write-to-hubspot/actions/create-contact", token: theirs)
        #expect(theirsInstance.status == 200 && theirsInstance.body["id"] != own.body["id"], "\(theirsInstance.body)")
        #expect(theirsInstance.body["isCustomized"] == false && theirsInstance.body["connectionId"] != .string(connectionId))
        #expect(theirsInstance.body["userId"] == .string(Self.other))

        let refusals: [(String, String)] = [
            ("wrong secret", try await token(TestStack.groupRef, key: key, secret: String(repeating: "0", count: 64))),
            ("expired", try await token(TestStack.groupRef, key: key, secret: secret, expires: Date().addingTimeInterval(-60))),
            ("no exp", try await token(TestStack.groupRef, key: key, secret: secret, expires: nil)),
            ("unknown key", try await token(TestStack.groupRef, key: "wbk_unknown", secret: secret)),
            ("not a JWT", "not-a-token"),
        ]
        for (reason, bad) in refusals {
            let answer = try await instance("GET", "write-to-hubspot/actions", token: bad)
            #expect(answer.status == 401 && answer.body["type"] == "unauthorized", "\(reason): \(answer.status) \(answer.body)")
        }
        // The CLI makes a key and signs a token with it, as a backend's deploy script would.
        let api = ["--api-url", stack.apiURL, "--api-key", TestStack.apiKey, "--project", TestStack.project]
        let made = try stack.output("writeback", ["token-key", "create", "--label", "cli"] + api)
        try #require(made.status == 0, "\(made.text)")
        let printed = Dictionary(uniqueKeysWithValues: made.text.split(separator: "\n").compactMap { line -> (String, String)? in
            let parts = line.split(separator: "=", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        })
        let cliKey = try #require(printed["WRITEBACK_TOKEN_KEY"]), cliSecret = try #require(printed["WRITEBACK_TOKEN_SECRET"])
        let listed = try stack.output("writeback", ["token-key", "list"] + api)
        #expect(listed.text.contains(cliKey) && !listed.text.contains(cliSecret), "\(listed.text)")
        let signed = try stack.output("writeback", ["customer-token", "--customer", TestStack.groupRef, "--key", cliKey],
                                      environment: ["WRITEBACK_TOKEN_SECRET": cliSecret])
        try #require(signed.status == 0, "\(signed.text)")
        let cliToken = signed.text.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try await instance("GET", "write-to-hubspot/actions/get-contact", token: cliToken).status == 200)

        let none = try await stack.call("GET", "\(stack.apiURL)/connections/write-to-hubspot/actions")
        #expect(none.status == 401)
        // A revoked key's tokens stop working.
        #expect(try await stack.control("DELETE", "/customer-token-keys/\(key)").status == 204)
        let revoked = try await instance("GET", "write-to-hubspot/actions", token: mine)
        #expect(revoked.status == 401, "\(revoked.body)")
    }
}

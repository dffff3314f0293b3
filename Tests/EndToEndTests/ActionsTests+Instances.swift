import Foundation
import Shared
import Testing

/// Action instances and customer tokens.
extension ActionsTests {
    /// A customer token as a backend signs it.
    func token(_ customer: String, key: String, secret: String, algorithm: String = "HS256",
               expires: Date? = Date().addingTimeInterval(3600)) async throws -> String
    {
        try await TestStack.customerToken(customer, key: key, secret: secret, algorithm: algorithm, expires: expires)
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
        let acme = try await token(Self.acme, key: key, secret: secret, algorithm: "HS512")
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

import Foundation
import Secrets
import Shared
import Testing

/// Integrations as code: manifests deployed and refused, installations with each customer's own field
/// mappings and settings, credentials that never show, pass-through, the OAuth flow, field discovery and
/// the CLI. Installations are read by the writer on every write here, so a config change applies at once.
@Suite(
    "Integrations as code", .serialized,
    .stack("integrations", environment: ["WRITER_INSTALLATION_CACHE_SECONDS": "0", "API_CONTROL_CACHE_SECONDS": "0"]))
struct IntegrationsTests {
    /// An integration whose contacts carry the backend's `warmth`, which each customer maps to a field.
    static let manifest = """
        specVersion: 1.0.0
        integrations:
          - name: crm-sync
            displayName: CRM sync
            provider: salesforce
            read:
              objects:
                - objectName: contact
                  destination: contactWebhook
                  schedule: "*/10 * * * *"
                  optionalFields:
                    - fieldName: Email
                      mapToName: email
                    - mapToName: warmth
                      prompt: Which field holds how warm the contact is?
            write:
              objects:
                - objectName: contact
                  inheritMapping: true
                  valueDefaults:
                    allowAnyFields: true
                - objectName: account
        """

    func deploy(_ yaml: String) async throws -> TestStack.Answer {
        try await TestStack.stack.control("PUT", "/integrations:batch", ["sourceYaml": .string(yaml)])
    }

    @Test("a manifest deploys as a new revision of each integration; a bad one is refused with every problem located and changes nothing")
    func manifests() async throws {
        let stack = try TestStack.stack
        let first = try await deploy(Self.manifest)
        try #require(first.status == 200, "\(first.body)")
        let integration = try #require(first.body.arrayValue?.first)
        #expect(integration["name"] == "crm-sync" && integration["provider"] == "salesforce")
        #expect(integration.at("latestRevision.specVersion") == "1.0.0")
        #expect(integration.at("latestRevision.content.write.objects.0.inheritMapping") == true)
        let again = try await deploy(Self.manifest)
        #expect(again.body.at("0.id") == integration["id"])
        #expect(again.body.at("0.latestRevision.id") != integration.at("latestRevision.id"), "a deploy is a new revision")

        let before = try await stack.control("GET", "/integrations")
        let bad = try await deploy("""
            specVersion: 1.0.0
            integrations:
              - name: crm-sync
                provider: salesforce
                write:
                  objects:
                    - objectName: contact
                      inheritMapping: maybe
              - name: second
                provider: zendesk
                wirte: {}
            """)
        #expect(bad.status == 422)
        let issues = bad.body["issues"]?.arrayValue ?? []
        let located = Dictionary(issues.compactMap { issue in issue["name"]?.stringValue.map { ($0, issue) } }) { first, _ in first }
        #expect(located["integrations[0].write.objects[0].inheritMapping"]?["line"] == 8, "\(bad.body)")
        #expect(located["integrations[1].provider"]?["line"] == 10)
        #expect(located["integrations[1].wirte"]?["column"] == 5)
        #expect(located["integrations[1].wirte"]?["detail"]?.stringValue?.contains("unknown key") == true)
        #expect(bad.body["detail"]?.stringValue?.contains("nothing was deployed") == true)
        let after = try await stack.control("GET", "/integrations")
        #expect(after.body == before.body, "a refused manifest changed the integrations")
        let syntax = try await deploy("integrations: [\n")
        #expect(syntax.status == 422 && syntax.body.at("issues.0.line") != nil, "\(syntax.body)")
        let missing = try await stack.control("PUT", "/integrations:batch", ["yaml": "x"])
        #expect(missing.status == 400 && missing.body.at("issues.0.name") == "sourceYaml")
    }

    @Test("two customers of one integration map the same write to their own fields, with their own defaults; a changed mapping applies to the next write")
    func customerMappings() async throws {
        let stack = try TestStack.stack
        _ = try await deploy(Self.manifest)
        try await stack.install("crm-sync", provider: "salesforce", groupRef: "customer-a", token: "sandbox-salesforce-token", config: [
            "read": ["objects": ["contact": ["objectName": "contact", "selectedFieldMappings": ["warmth": "Warmth__c"]]]],
            "write": ["objects": ["contact": ["objectName": "contact", "selectedFieldSettings": [
                "LeadSource": ["default": ["stringValue": "Writeback"], "writeOnUpdate": "never"],
                "Internal_Note__c": ["writeOnCreate": "never"],
            ]]]],
        ])
        let b = try await stack.install("crm-sync", provider: "salesforce", groupRef: "customer-b", token: "sandbox-salesforce-token",
                                        config: ["read": ["objects": ["contact": ["selectedFieldMappings": ["warmth": "Temperature__c"]]]]])

        let record: JSONValue = ["LastName": "Same", "warmth": "hot", "email": "same@example.com", "Internal_Note__c": "x"]
        var stored: [String: JSONValue] = [:]
        for customer in ["customer-a", "customer-b"] {
            let answer = try await stack.write("crm-sync", "contact", ["groupRef": .string(customer), "record": record])
            try #require(answer.status == 200, "\(answer.body)")
            let id = try #require(answer.body.at("result.recordId")?.stringValue)
            stored[customer] = try await stack.salesforceRecord("Contact", id).body
        }
        let a = try #require(stored["customer-a"])
        #expect(a["Warmth__c"] == "hot" && a["Email"] == "same@example.com" && a["LeadSource"] == "Writeback", "\(a)")
        #expect(a["Temperature__c"] == nil && a["warmth"] == nil && a["Internal_Note__c"] == nil)
        let bRecord = try #require(stored["customer-b"])
        #expect(bRecord["Temperature__c"] == "hot" && bRecord["Email"] == "same@example.com" && bRecord["Internal_Note__c"] == "x", "\(bRecord)")
        #expect(bRecord["Warmth__c"] == nil && bRecord["LeadSource"] == nil)

        // The same unified record for both customers: its custom field lands in each one's own field.
        for (customer, field) in [("customer-a", "Warmth__c"), ("customer-b", "Temperature__c")] {
            let unified = try await stack.call("POST", "\(stack.apiURL)/crm/v2/contacts", body: try JSONCoding.encodeString([
                "record": ["last_name": "Unified", "custom_fields": ["warmth": "warm"]],
            ] as JSONValue), headers: [("x-api-key", TestStack.apiKey), ("x-customer-id", .init(customer)),
                                       ("x-provider-name", "salesforce"), ("Content-Type", "application/json")])
            try #require(unified.status == 201, "\(unified.body)")
            let held = try await stack.salesforceRecord("Contact", try #require(unified.body.at("record.id")?.stringValue)).body
            #expect(held[field] == "warm" && held["LastName"] == "Unified" && held["warmth"] == nil, "\(customer): \(held)")
            #expect((held["LeadSource"] == "Writeback") == (customer == "customer-a"), "\(customer): \(held)")
        }

        // Customer B moves warmth to another field: the next write goes there, with nothing redeployed.
        let installation = try #require(b["id"]?.stringValue)
        let changed = try await stack.control("PATCH", "/integrations/crm-sync/installations/\(installation)", [
            "installation": ["config": ["content": ["read": ["objects": ["contact": ["selectedFieldMappings": ["warmth": "Heat__c"]]]]]]],
        ])
        try #require(changed.status == 200, "\(changed.body)")
        let moved = try await stack.write("crm-sync", "contact", ["groupRef": "customer-b", "record": ["LastName": "Moved", "warmth": "cold"]])
        let movedRecord = try await stack.salesforceRecord("Contact", try #require(moved.body.at("result.recordId")?.stringValue)).body
        #expect(movedRecord["Heat__c"] == "cold" && movedRecord["Temperature__c"] == nil, "\(movedRecord)")

        // Configs that do not fit the integration are refused with where they are wrong.
        let wrong = try await stack.control("PATCH", "/integrations/crm-sync/installations/\(installation)", [
            "installation": ["config": ["content": [
                "read": ["objects": ["contact": ["selectedFieldMappings": ["heat": "Heat__c"]]]],
                "write": ["objects": ["lead": ["objectName": "lead"], "account": ["selectedFieldSettings": ["Industry": [
                    "default": ["stringValue": "x"], "writeOnCreate": "sometimes"]]]]],
            ]]],
        ])
        #expect(wrong.status == 422)
        let names = Set((wrong.body["issues"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue })
        #expect(names == [
            "config.content.read.objects.contact.selectedFieldMappings.heat", "config.content.write.objects.lead",
            "config.content.write.objects.account.selectedFieldSettings.Industry.default",
            "config.content.write.objects.account.selectedFieldSettings.Industry.writeOnCreate",
        ], "\(wrong.body)")
        let twice = try await stack.control("POST", "/integrations/crm-sync/installations", ["groupRef": "customer-a", "config": ["content": [:]]])
        #expect(twice.status == 409)
        let unconnected = try await stack.control("POST", "/integrations/crm-sync/installations", ["groupRef": "customer-z", "config": ["content": [:]]])
        #expect(unconnected.status == 422 && unconnected.body["detail"]?.stringValue?.contains("no salesforce connection") == true)
    }

    @Test("a write to an object the integration does not declare is refused and reaches no provider")
    func undeclaredObject() async throws {
        let stack = try TestStack.stack
        let before = try await stack.providerCalls().count
        let refused = try await stack.write("write-to-salesforce", "case", ["groupRef": .string(TestStack.groupRef), "record": ["Subject": "x"]])
        #expect(refused.status == 404)
        #expect(refused.body["detail"]?.stringValue?.contains("not written by integration write-to-salesforce") == true, "\(refused.body)")
        #expect(try await stack.providerCalls().count == before)
    }

    func passthrough(_ customer: String, _ provider: String, _ body: JSONValue) async throws -> TestStack.Answer {
        let stack = try TestStack.stack
        return try await stack.call("POST", "\(stack.apiURL)/actions/v2/passthrough", body: try JSONCoding.encodeString(body), headers: [
            ("x-api-key", TestStack.apiKey), ("x-customer-id", customer), ("x-provider-name", provider), ("Content-Type", "application/json"),
        ])
    }

    @Test("pass-through reaches the provider with the stored credentials and refuses any path to another host")
    func passThrough() async throws {
        let stack = try TestStack.stack
        let spec = try OpenAPISchema(oracle: "supaglue/actions-v2.openapi.json")
        let created = try await passthrough(TestStack.groupRef, "salesforce", [
            "path": "/services/data/v60.0/sobjects/Account", "method": "POST", "body": ["Name": "Through the proxy"],
            "headers": ["Authorization": "Bearer stolen", "X-Custom": "1"],
        ])
        #expect(created.status == 200, "\(created.body)")
        #expect(spec.problems(created.body, path: "/passthrough", method: "POST", status: 200).isEmpty)
        #expect(created.body["status"] == 201 && created.body["url"] == .string("\(stack.sandboxURL)/services/data/v60.0/sobjects/Account"))
        let id = try #require(created.body.at("body.id")?.stringValue)
        #expect(try await stack.salesforceRecord("Account", id).body["Name"] == "Through the proxy")
        let company = try await passthrough(TestStack.groupRef, "hubspot", [
            "path": "/crm/v3/objects/companies", "method": "POST", "body": ["properties": ["name": "Proxied"]],
        ])
        let companyId = try #require(company.body.at("body.id")?.scalarText, "\(company.body)")
        let read = try await passthrough(TestStack.groupRef, "hubspot", [
            "path": .string("/crm/v3/objects/companies/\(companyId)"), "method": "GET", "query": ["properties": "name"],
        ])
        #expect(read.status == 200 && read.body["status"] == 200 && read.body.at("body.properties.name") == "Proxied", "\(read.body)")
        #expect(read.body["url"] == .string("\(stack.sandboxURL)/crm/v3/objects/companies/\(companyId)?properties=name"))
        #expect(read.body.at("headers.x-hubspot-ratelimit-max") != nil)

        let before = try await stack.providerCalls().count
        for path in ["//evil.example/steal", "/services/../../steal", "/%2e%2e/steal", "@evil.example/steal", "http://evil.example/",
                     "evil.example/steal", "/a\\b"] {
            let refused = try await passthrough(TestStack.groupRef, "salesforce", ["path": .string(path), "method": "GET"])
            #expect(refused.status == 400 && refused.body.at("errors.0.meta.source") == "body:path", "\(path): \(refused.body)")
        }
        #expect(try await stack.providerCalls().count == before, "a refused pass-through reached a provider")
        _ = try await deploy(Self.manifest)
        _ = try? await stack.install("crm-sync", provider: "salesforce", groupRef: "proxyless", token: "sandbox-salesforce-token")
        let closed = try await passthrough("proxyless", "salesforce", ["path": "/services/data/v60.0/limits", "method": "GET"])
        #expect(closed.status == 403, "\(closed.body)")
    }

    @Test("a customer connects through the OAuth authorization code flow, and its connection writes")
    func oauth() async throws {
        let stack = try TestStack.stack
        let started = try await stack.call("POST", "\(stack.apiURL)/v1/oauth-connect", body: try JSONCoding.encodeString([
            "projectIdOrName": .string(TestStack.project), "provider": "hubspot", "groupRef": "oauth-customer", "consumerRef": "user-1",
        ] as JSONValue), headers: [("X-Api-Key", TestStack.apiKey), ("Content-Type", "application/json")])
        try #require(started.status == 200)
        let consent = try #require(started.body.stringValue)
        #expect(consent.hasPrefix("\(stack.sandboxURL)/oauth/authorize?client_id=sandbox-client-id&redirect_uri="))
        let consented = try await stack.call("GET", consent)
        #expect(consented.status == 302)
        let callback = try #require(consented.headers["location"])
        #expect(callback.hasPrefix("\(stack.apiURL)/callbacks/v1/oauth?"))
        let connected = try await stack.call("GET", callback)
        #expect(connected.status == 200, "\(connected.body)")
        #expect(connected.body["provider"] == "hubspot" && connected.body.at("group.groupRef") == "oauth-customer")
        #expect(!"\(connected.body)".contains("-access-") && !"\(connected.body)".contains("-refresh-"))
        let replayed = try await stack.call("GET", callback)
        #expect(replayed.status == 400, "a callback was accepted twice")

        let installed = try await stack.control("POST", "/integrations/write-to-hubspot/installations",
                                                ["groupRef": "oauth-customer", "config": ["content": [:]]])
        try #require(installed.status == 201, "\(installed.body)")
        let written = try await stack.write("write-to-hubspot", "company", ["groupRef": "oauth-customer", "record": ["name": "Consented Inc"]])
        #expect(written.status == 200 && written.body.at("result.success") == true, "\(written.body)")
    }

    @Test("an object's writable fields are discovered from the customer's provider account")
    func metadata() async throws {
        let stack = try TestStack.stack
        let contact = try await stack.control("GET", "/integrations/write-to-salesforce/objects/contact/metadata?groupRef=\(TestStack.groupRef)")
        try #require(contact.status == 200, "\(contact.body)")
        #expect(contact.body["name"] == "Contact" && contact.body["mappedObjectName"] == "contact")
        #expect(contact.body.at("fields.LastName.isRequired") == true && contact.body.at("fields.LastName.valueType") == "string")
        #expect(contact.body.at("fields.Id.readOnly") == true)
        let writable = try await stack.control(
            "GET", "/integrations/write-to-salesforce/objects/contact/metadata?groupRef=\(TestStack.groupRef)&excludeReadOnly=true")
        #expect(writable.body.at("fields.Id") == nil && writable.body.at("fields.FirstName") != nil)
        let company = try await stack.control("GET", "/integrations/write-to-hubspot/objects/company/metadata?groupRef=\(TestStack.groupRef)")
        #expect(company.status == 200 && company.body["name"] == "companies" && company.body.at("fields.domain.fieldName") == "domain", "\(company.body)")
        let noGroup = try await stack.control("GET", "/integrations/write-to-hubspot/objects/company/metadata")
        #expect(noGroup.status == 400)
    }

    @Test("the CLI checks a manifest offline with located problems, and lists a customer's operations and their logs")
    func cli() async throws {
        let stack = try TestStack.stack
        let file = "\(stack.logDirectory)/bad-amp.yaml"
        try "specVersion: 1.0.0\nintegrations:\n  - name: x\n    provider: nowhere\n    write: {objects: [{objectName: contact}]}\n"
            .write(toFile: file, atomically: true, encoding: .utf8)
        let invalid = try stack.output("writeback", ["validate", file])
        #expect(invalid.status == 1)
        #expect(invalid.text.contains("\(file):4:15: integrations[0].provider: provider 'nowhere' is not supported"), "\(invalid.text)")
        let valid = try stack.output("writeback", ["validate", "examples/amp.yaml"])
        #expect(valid.status == 0 && valid.text.contains("valid, 3 integrations"), "\(valid.text)")

        let written = try await stack.write("write-to-salesforce", "account", ["groupRef": .string(TestStack.groupRef), "record": ["Name": "Listed"]])
        let operationId = try #require(written.body["operationId"]?.stringValue)
        _ = try await stack.finalOperation(operationId)
        try await Task.sleep(for: .milliseconds(500))
        let api = ["--api-url", stack.apiURL, "--api-key", TestStack.apiKey, "--project", TestStack.project]
        let operations = try stack.output("writeback", ["operations", "--integration", "write-to-salesforce", "--group-ref", TestStack.groupRef] + api)
        #expect(operations.status == 0 && operations.text.contains(operationId) && operations.text.contains("success"), "\(operations.text)")
        let logs = try stack.output("writeback", ["logs", "--integration", "write-to-salesforce", "--group-ref", TestStack.groupRef] + api)
        #expect(logs.status == 0 && logs.text.contains("\(operationId)  INFO  salesforce applied the create"), "\(logs.text)")
        let refused = try stack.output("writeback", ["operations", "--integration", "write-to-salesforce", "--group-ref", "nobody"] + api)
        #expect(refused.status != 0 && refused.text.contains("no installation"), "\(refused.text)")
    }

    /// Every credential the stack was given or issued.
    static let secrets = ["sandbox-salesforce-token", "sandbox-hubspot-token", "sandbox-salesforce-refresh-token",
                          "sandbox-hubspot-refresh-token", "sandbox-pipedrive-token", "sandbox-pipedrive-refresh-token",
                          "sandbox-client-secret", "-access-", "-refresh-"]

    @Test("no answer, log line or database value shows a credential; a new key seals every stored one again")
    func secretsHidden() async throws {
        let stack = try TestStack.stack
        var answers: [String] = []
        for path in ["/connections", "/integrations/write-to-salesforce/installations", "/integrations/write-to-hubspot/installations",
                     "/integrations"] {
            let answer = try await stack.control("GET", path)
            #expect(answer.status == 200)
            answers.append("\(answer.body)")
        }
        answers.append("\(try await stack.control("POST", "/provider-apps", ["provider": "salesforce", "clientId": "sandbox-client-id", "clientSecret": "sandbox-client-secret"]).body)")
        for secret in Self.secrets { #expect(!answers.contains { $0.contains(secret) }, "an answer shows \(secret)") }
        let tokenKey = try await stack.control("POST", "/customer-token-keys", [:])
        let signingKey = try #require(tokenKey.body["key"]?.stringValue), signingSecret = try #require(tokenKey.body["secret"]?.stringValue)

        func storedValues() throws -> String {
            try ["connections", "provider_apps", "installations", "oauth_states", "customer_token_keys"].map { table in
                try stack.controlQuery("SELECT coalesce(string_agg(row_to_json(t)::text, ' '), '') AS rows FROM \(table) t").first?["rows"] ?? ""
            }.joined(separator: "\n")
        }
        let database = try storedValues()
        for secret in Self.secrets + [signingSecret] { #expect(!database.contains(secret), "the database holds \(secret) in clear") }
        let sealed = try stack.controlQuery(
            "SELECT secrets FROM connections UNION ALL SELECT secrets FROM provider_apps UNION ALL SELECT secret FROM customer_token_keys")
        let oldKey = try SecretBox.Key(base64: stack.encryptionKey)
        #expect(sealed.count >= 4 && sealed.rows.allSatisfy { $0["secrets"]?.hasPrefix("wb1.\(oldKey.id).") == true })

        // Rotation: the api starts with a new key and the old one as previous, and seals everything again.
        let newKey = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        let rotated = ["WRITEBACK_ENCRYPTION_KEY": newKey, "WRITEBACK_PREVIOUS_ENCRYPTION_KEYS": stack.encryptionKey]
        stack.kill("api", signal: SIGTERM)
        try stack.start("api", environment: rotated)
        try await stack.waitUntilReachable("\(stack.apiURL)/health")
        let newId = try SecretBox.Key(base64: newKey).id
        let resealed = try stack.controlQuery(
            "SELECT secrets FROM connections UNION ALL SELECT secrets FROM provider_apps UNION ALL SELECT secret FROM customer_token_keys")
        #expect(resealed.count == sealed.count && resealed.rows.allSatisfy { $0["secrets"]?.hasPrefix("wb1.\(newId).") == true })
        // A customer token signed with a key made before the rotation still verifies.
        let customerToken = try await TestStack.customerToken(TestStack.groupRef, key: signingKey, secret: signingSecret)
        let actions = try await stack.call("GET", "\(stack.apiURL)/connections/write-to-hubspot/actions",
                                           headers: [("Authorization", "Bearer \(customerToken)")])
        #expect(actions.status == 200, "\(actions.body)")
        // With every value sealed again, the writer needs only the new key.
        stack.kill("writer", signal: SIGTERM)
        try stack.start("writer", environment: ["WRITEBACK_ENCRYPTION_KEY": newKey])
        let written = try await stack.write("write-to-hubspot", "company", ["groupRef": .string(TestStack.groupRef), "record": ["name": "After rotation"]])
        #expect(written.status == 200 && written.body.at("result.success") == true, "\(written.body)")

        let logs = try FileManager.default.contentsOfDirectory(atPath: stack.logDirectory).filter { $0.hasSuffix(".log") }
        #expect(logs.contains("api.log") && logs.contains("writer.log") && logs.contains("demo-setup.log"))
        for name in logs {
            let text = try String(contentsOfFile: "\(stack.logDirectory)/\(name)", encoding: .utf8)
            for secret in Self.secrets + [newKey, stack.encryptionKey, signingSecret, customerToken] {
                #expect(!text.contains(secret), "\(name) shows \(secret)")
            }
        }
    }
}

import Foundation
import Shared
import Testing

/// `GET /openapi.json` as its readers meet it: a valid OpenAPI 3.1 document (openapi-spec-validator), the one
/// its sources build, holding the peers' own schemas where a route serves a peer's shape; and a description
/// the running api keeps: schemathesis fuzzes every operation of it and finds no server error and no answer
/// the document does not describe. (That every routed path is in it, and nothing else, is RouteTests'.)
@Suite("The OpenAPI document", .serialized, .stack("openapi"))
struct OpenAPITests {
    /// Runs a Python tool of the test virtualenv (`WRITEBACK_TEST_PYTHON`, made by scripts/test) to its end.
    func tool(_ name: String, _ arguments: [String], log: String) throws -> (status: Int32, text: String) {
        let python = try #require(ProcessInfo.processInfo.environment["WRITEBACK_TEST_PYTHON"], "scripts/test sets WRITEBACK_TEST_PYTHON")
        let executable = name == "python" ? python : (python as NSString).deletingLastPathComponent + "/" + name
        return try TestStack.stack.runLogged(executable, arguments, log: log)
    }

    @Test("the document validates as OpenAPI 3.1, is the one its sources build, and holds the peers' schemas")
    func valid() async throws {
        let stack = try TestStack.stack
        let answer = try await stack.call("GET", "\(stack.apiURL)/openapi.json")
        #expect(answer.status == 200 && answer.headers["content-type"] == "application/json")
        #expect(answer.body["openapi"] == "3.1.0")
        let path = "\(stack.logDirectory)/openapi.json"
        try Data(JSONCoding.encode(answer.body)).write(to: URL(fileURLWithPath: path))
        let validated = try tool("python", ["-m", "openapi_spec_validator", path], log: "openapi-spec-validator.log")
        #expect(validated.status == 0, "\(validated.text.suffix(2000))")
        let checked = try tool("python", ["scripts/openapi", "check", "\(stack.apiURL)/openapi.json"], log: "openapi-check.log")
        #expect(checked.status == 0, "\(checked.text.suffix(2000))")
    }

    /// What the fuzzer's requests name: the test project's real integration, installation, connection,
    /// operation, customer-token key and notification topic, so that requests reach the handlers.
    func fixtures(_ stack: TestStack) async throws -> String {
        let installation = try #require(try stack.controlQuery(
            "SELECT i.id::text AS id FROM installations i JOIN integrations n ON n.id = i.integration_id WHERE n.name = 'write-to-salesforce'")
            .first?["id"])
        let connection = try #require(try stack.controlQuery(
            "SELECT connection_id::text AS id FROM installations WHERE id = $1::uuid", [installation]).first?["id"])
        let written = try await stack.write("write-to-salesforce", "contact", ["groupRef": .string(TestStack.groupRef), "record": ["LastName": "Fuzzed"]])
        let operation = try #require(written.body["operationId"]?.stringValue, "\(written.body)")
        let made = try await stack.control("POST", "/customer-token-keys", ["label": "fuzzing"])
        let key = try #require(made.body["key"]?.stringValue, "\(made.body)")
        let secret = try #require(made.body["secret"]?.stringValue)
        let token = try await TestStack.customerToken(TestStack.groupRef, key: key, secret: secret)
        let topic = try await stack.control("POST", "/topics", ["name": "fuzzing"])
        let topicId = try #require(topic.body["id"]?.stringValue, "\(topic.body)")
        let signedIn = try await stack.call("POST", "\(stack.apiURL)/console/sign-in", body: "key=\(TestStack.apiKey)",
                                            headers: [("Content-Type", "application/x-www-form-urlencoded")])
        let session = try #require(signedIn.headers["set-cookie"]?.split(separator: ";").first?.split(separator: "=", maxSplits: 1).last,
                                   "signing in to the console set no cookie")
        // Values with a quote or a backslash would need escaping in TOML; none of these has one.
        return """
            [auth.openapi.projectKey]
            api_key = "\(TestStack.apiKey)"
            [auth.openapi.customerToken]
            bearer = "\(token)"
            [auth.openapi.consoleSession]
            api_key = "\(session)"

            [parameters]
            "path.projectIdOrName" = "\(TestStack.project)"
            "path.integrationId" = "write-to-salesforce"
            "path.integrationIdOrName" = "write-to-salesforce"
            "path.installationId" = "\(installation)"
            "path.objectName" = "contact"
            "path.operationId" = "\(operation)"
            "path.operation" = "\(operation)"
            "path.connectionId" = "\(connection)"
            "path.key" = "\(key)"
            "path.topicId" = "\(topicId)"
            "path.connection" = "write-to-hubspot"
            "path.app" = "hubspot"
            "header.linked_account_id" = "\(TestStack.groupRef)"
            "header.x-customer-id" = "\(TestStack.groupRef)"

            [dictionaries.actions]
            values = ["create-contact", "get-contact", "search-contacts", "update-contact", "http-request", "create_contact"]

            [[operations]]
            include-path-regex = "^/(api/v2|connections)/"
            parameters = { "path.action" = { dictionary = "actions", probability = 0.8 } }

            [[operations]]
            include-operation-id = "bulkWriteRecords"
            parameters = { "path.objectName" = "contact:async" }

            # Supaglue's answer for an object a provider does not have (leads at HubSpot, upserting
            # opportunities) is 501 Not Implemented, as its specification documents: an answer, not a failure.
            [[operations]]
            include-path-regex = "^/crm/v2/"
            checks = { not_a_server_error = { expected-statuses = ["2xx", "3xx", "4xx", "501"] } }
            """
    }

    @Test("schemathesis finds no server error and no answer the document does not describe, on every route")
    func fuzzed() async throws {
        let stack = try TestStack.stack
        let config = "\(stack.logDirectory)/schemathesis.toml"
        try Data(try await fixtures(stack).utf8).write(to: URL(fileURLWithPath: config))
        let document = "\(stack.apiURL)/openapi.json"
        let common = ["--url", stack.apiURL, "--checks", "not_a_server_error,response_schema_conformance", "--max-examples", "12",
                      "--request-timeout", "40", "--seed", "1", "--no-color", "--workers", "2"]
        // Everything but DELETE first, so that what the requests name exists while they run; then DELETE.
        for (pass, filter) in [("all-but-delete", ["--exclude-method", "DELETE"]), ("delete", ["--include-method", "DELETE"])] {
            let run = try tool("schemathesis", ["--config-file", config, "run", document] + common + filter, log: "schemathesis-\(pass).log")
            #expect(run.status == 0, "schemathesis (\(pass)) found failures; see schemathesis-\(pass).log:\n\(run.text.suffix(6000))")
            // The summary's count: every case generated passed, and there were cases.
            let counts = run.text.firstMatch(of: /(\d+) generated, (\d+) passed/).map { (Int($0.1) ?? 0, Int($0.2) ?? -1) }
            #expect(counts != nil && counts!.0 > 100 && counts!.0 == counts!.1, "schemathesis (\(pass)): \(counts.map { "\($0)" } ?? "no summary")")
        }
    }
}

import Foundation
import Postgres
import Shared
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The delivery promise under the events of production: a writer stopped while retrying, a slow or
/// rate-limited customer beside another, a request repeated with its key, a batch then a single write of
/// one record, a message nobody can read. Every write request of the stack is on one Kafka partition, so
/// customers share it as they would share a busy one.
@Suite(
    "Delivery under production events", .serialized,
    .stack("delivery", environment: [
        "KAFKA_MOCK_PARTITIONS": "1",
        "WRITER_MAX_IN_FLIGHT": "50",
        "CACHE_INVALIDATOR_MAX_IN_FLIGHT": "50",
        "OPERATIONS_MAX_IN_FLIGHT": "50",
        "WRITER_RETRY_BACKOFF_SECONDS": "0.4",
        "SANDBOX_SALESFORCE_TOKENS": "sandbox-salesforce-token,flaky-sf@flaky,slow-sf@slow,other-sf@other-sf",
        "SANDBOX_HUBSPOT_TOKENS": "sandbox-hubspot-token,limited-hs@limited,other-hs@other-hs,busy-hs@busy",
    ]))
struct DeliveryTests {
    /// Installs an integration for a customer whose connection is an org of its own.
    func customer(_ groupRef: String, _ integration: String, token: String) async throws {
        let provider = integration.hasSuffix("hubspot") ? "hubspot" : "salesforce"
        try await TestStack.stack.install(integration, provider: provider, groupRef: groupRef, token: token)
    }

    func create(_ groupRef: String, _ integration: String, _ record: JSONValue, mode: String = "synchronous",
                headers: [(String, String)] = []) async throws -> TestStack.Answer
    {
        try await TestStack.stack.write(integration, integration.hasSuffix("hubspot") ? "company" : "contact", [
            "groupRef": .string(groupRef), "mode": .string(mode), "record": record,
        ], headers: headers)
    }

    func operationId(_ answer: TestStack.Answer) throws -> String {
        try #require(answer.body["operationId"]?.stringValue, "\(answer.status) \(answer.body)")
    }

    /// Creates at the provider carrying `marker`, by status.
    func created(_ marker: String) async throws -> Int {
        try await TestStack.stack.providerCalls(mentioning: marker).filter { $0["status"] == 201 || $0["status"] == 200 }.count
    }

    /// A synchronous write of a quiet customer, and how long it took.
    func quietWrite(_ groupRef: String, _ name: String) async throws -> (TestStack.Answer, Duration) {
        try await TestStack.stack.timed {
            try await create(groupRef, "write-to-hubspot", ["name": .string(name)])
        }
    }

    @Test("a writer stopped with SIGTERM while its writes retry a failing provider: after the restart every write lands, once")
    func rollingDeployDuringBlip() async throws {
        let stack = try TestStack.stack
        try await customer("flaky-customer", "write-to-salesforce", token: "flaky-sf")
        _ = try await create("flaky-customer", "write-to-salesforce", ["LastName": "Blip-warm-up"])
        try await stack.queueFaults("salesforce", org: "flaky", Array(repeating: ["kind": "error", "status": 503], count: 200))
        var operations: [String] = []
        for number in 0..<5 {
            operations.append(try operationId(try await create(
                "flaky-customer", "write-to-salesforce", ["LastName": .string("Blip-\(number)")], mode: "asynchronous")))
        }
        // Every write has met the outage (and some wait for their next try) when the deploy stops the writer.
        for _ in 0..<100 {
            let failing = try await stack.providerCalls(mentioning: "Blip-").filter { $0["status"] == 503 }
            if Set(failing.compactMap { $0.at("body.LastName")?.stringValue }).count == 5 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        try await Task.sleep(for: .seconds(2))
        stack.kill("writer", signal: SIGTERM)
        try await stack.clearFaults()
        try stack.start("writer")
        for (number, operation) in operations.enumerated() {
            let final = try await stack.finalOperation(operation, timeout: .seconds(90))
            #expect(final["status"] == "success", "Blip-\(number): \(final)")
            #expect(try await created("Blip-\(number)") == 1, "Blip-\(number) was created more or less than once")
        }
    }

    @Test("a request whose key was claimed by an api that died before publishing is published when the client tries again")
    func claimedThenCrashed() async throws {
        let stack = try TestStack.stack
        // What an api killed between claiming the key and publishing leaves: the key names an operation
        // that nothing was published for.
        let body: JSONValue = [
            "groupRef": .string(TestStack.groupRef), "mode": "asynchronous", "record": ["LastName": "Claimed-Then-Crashed"],
        ]
        let integration = try #require(try stack.controlQuery("SELECT id::text AS id FROM integrations WHERE name = 'write-to-salesforce'")
            .first?.string("id"))
        let claimed = UUID().uuidString.lowercased()
        _ = try stack.controlQuery(
            """
            INSERT INTO idempotency_keys (project_id, key, body_hash, operation_id)
            SELECT id, 'crashed-key', encode(sha256(convert_to($1, 'UTF8')), 'hex'), $2::uuid FROM projects WHERE name = $3
            """, ["write:\(integration)/contact\n" + (try JSONCoding.encodeString(body)), claimed, TestStack.project])
        #expect(try await stack.operation(claimed).status == 404, "the claimed operation was never published")

        let retried = try await stack.write("write-to-salesforce", "contact", body, headers: [("Idempotency-Key", "crashed-key")])
        #expect(retried.status == 200, "\(retried.body)")
        #expect(retried.body["operationId"]?.stringValue == claimed, "the retry answers the first request's operation")
        let final = try await stack.finalOperation(claimed)
        #expect(final["status"] == "success", "\(final)")
        let again = try await stack.write("write-to-salesforce", "contact", body, headers: [("Idempotency-Key", "crashed-key")])
        #expect(again.body["operationId"]?.stringValue == claimed)
        #expect(try await created("Claimed-Then-Crashed") == 1)
    }

    @Test("a customer whose provider answers in seconds, with 64 writes queued, does not slow another customer's synchronous writes")
    func slowCustomer() async throws {
        let stack = try TestStack.stack
        try await customer("slow-customer", "write-to-salesforce", token: "slow-sf")
        try await customer("quiet-customer", "write-to-hubspot", token: "other-hs")
        _ = try await create("slow-customer", "write-to-salesforce", ["LastName": "Slow-warm-up"])
        var alone: [Duration] = []
        for number in 0..<3 {
            let (answer, took) = try await quietWrite("quiet-customer", "Quiet-alone-\(number)")
            #expect(answer.status == 200, "\(answer.body)")
            alone.append(took)
        }
        try await stack.setOrg("salesforce", "slow", ["latencyMilliseconds": 4000])
        var backlog: [String] = []
        for number in 0..<64 {
            backlog.append(try operationId(try await create(
                "slow-customer", "write-to-salesforce", ["LastName": .string("Slow-\(number)")], mode: "asynchronous")))
        }
        try await Task.sleep(for: .milliseconds(500))
        let limit = max(.seconds(2), (alone.max() ?? .zero) * 3)
        for number in 0..<5 {
            let (answer, took) = try await quietWrite("quiet-customer", "Quiet-beside-slow-\(number)")
            #expect(answer.status == 200, "\(answer.body)")
            #expect(took < limit, "the quiet customer's write took \(took) beside the slow one (alone: \(alone))")
        }
        var waiting = 0
        for id in backlog where try await stack.operation(id).body["status"] == "in_progress" { waiting += 1 }
        #expect(waiting > 20, "the slow customer's backlog should still be running; \(waiting) left")
        try await stack.setOrg("salesforce", "slow", ["latencyMilliseconds": 0])
        for (number, id) in backlog.enumerated() {
            let final = try await stack.finalOperation(id, timeout: .seconds(120))
            #expect(final["status"] == "success", "Slow-\(number): \(final)")
        }
    }

    @Test("a customer held at its rate limit with 200 writes queued does not delay another customer's synchronous writes; its writes survive a writer crash and land once the limit lifts")
    func heldBacklog() async throws {
        let stack = try TestStack.stack
        try await customer("limited-customer", "write-to-hubspot", token: "limited-hs")
        try await customer("quiet-beside-held", "write-to-hubspot", token: "other-hs")
        try await stack.setOrg("hubspot", "limited", ["limits": ["windowMax": 1, "windowMilliseconds": 5000]])
        _ = try await create("limited-customer", "write-to-hubspot", ["name": "Limited-warm-up"])
        var backlog: [String] = []
        for number in 0..<200 {
            backlog.append(try operationId(try await create(
                "limited-customer", "write-to-hubspot", ["name": .string("Limited-\(number)")], mode: "asynchronous")))
        }
        for number in 0..<5 {
            let (answer, took) = try await quietWrite("quiet-beside-held", "Quiet-beside-held-\(number)")
            #expect(answer.status == 200, "\(answer.body)")
            #expect(took < .seconds(2), "the quiet customer's write took \(took) beside the held backlog")
        }
        var waiting = 0
        for id in backlog where try await stack.operation(id).body["status"] == "in_progress" { waiting += 1 }
        #expect(waiting >= 190, "the held customer's writes wait at its own pace; \(waiting) waiting")
        let held = try stack.controlQuery("SELECT count(*) AS held FROM held_writes").first?.int("held") ?? 0
        #expect(held >= 150, "writes waiting for their connection's limit are held, not kept in memory: \(held) held")

        // The held writes survive the writer's crash.
        stack.kill("writer", signal: SIGKILL)
        try stack.start("writer")
        try await stack.setOrg("hubspot", "limited", ["limits": ["windowMax": 190, "windowMilliseconds": 10000]])
        for (number, id) in backlog.enumerated() {
            let final = try await stack.finalOperation(id, timeout: .seconds(120))
            #expect(final["status"] == "success", "Limited-\(number): \(final)")
        }
        for number in [0, 57, 199] { #expect(try await created("Limited-\(number)\"") == 1) }
        let refused = try await stack.call("GET", "\(stack.sandboxURL)/_sandbox/orgs/hubspot/limited").body["limited"]?.scalarText
        #expect((Int(refused ?? "") ?? 99) <= 3, "the paced connection met \(refused ?? "?") 429s")
    }

    @Test("a synchronous write sent again with its key while the first still runs: both requests are answered, with one operation and one create")
    func sameRequestTwice() async throws {
        let stack = try TestStack.stack
        try await customer("busy-customer", "write-to-hubspot", token: "busy-hs")
        _ = try await create("busy-customer", "write-to-hubspot", ["name": "Twice-warm-up"])
        try await stack.setOrg("hubspot", "busy", ["latencyMilliseconds": 1500])
        let headers = [("Idempotency-Key", "twice-\(UUID().uuidString)")]
        async let first = create("busy-customer", "write-to-hubspot", ["name": "Twice-Sent"], headers: headers)
        try await Task.sleep(for: .milliseconds(400))
        async let second = create("busy-customer", "write-to-hubspot", ["name": "Twice-Sent"], headers: headers)
        let (one, two) = try await (first, second)
        try await stack.setOrg("hubspot", "busy", ["latencyMilliseconds": 0])
        #expect(one.status == 200, "\(one.body)")
        #expect(two.status == 200, "\(two.body)")
        #expect(one.body["operationId"] != nil && one.body["operationId"] == two.body["operationId"])
        #expect(one.body.at("result.recordId") != nil && one.body.at("result.recordId") == two.body.at("result.recordId"))
        #expect(try await created("Twice-Sent") == 1)
    }

    @Test("a bulk write sent again with its key is the same operation, written once")
    func bulkTwice() async throws {
        let stack = try TestStack.stack
        let body: JSONValue = [
            "groupRef": .string(TestStack.groupRef), "primaryKey": "External_Id__c",
            "recordsCSV": "External_Id__c,LastName\nbulk-twice-1,Twice-One\nbulk-twice-2,Twice-Two\n",
        ]
        let headers = [("Idempotency-Key", "bulk-\(UUID().uuidString)"), ("X-Api-Key", TestStack.apiKey), ("Content-Type", "application/json")]
        let url = "\(stack.apiURL)/v1/projects/\(TestStack.project)/integrations/write-to-salesforce/objects/contact:async"
        let first = try await stack.call("PUT", url, body: try JSONCoding.encodeString(body), headers: headers)
        let second = try await stack.call("PUT", url, body: try JSONCoding.encodeString(body), headers: headers)
        #expect(first.status == 200 && second.status == 200, "\(first.body) \(second.body)")
        let operation = try operationId(first)
        #expect(second.body["operationId"]?.stringValue == operation)
        let final = try await stack.finalOperation(operation)
        #expect(final["status"] == "success", "\(final)")
        let jobs = try await stack.providerCalls().filter { $0["method"] == "POST" && ($0["path"]?.stringValue ?? "").hasSuffix("/jobs/ingest") }
        #expect(jobs.count == 1, "\(jobs.count) bulk jobs for one write")
    }

    @Test("an asynchronous batch update of a record followed by a single update of it: the single one's value is what remains")
    func batchThenSingle() async throws {
        let stack = try TestStack.stack
        var ids: [String] = []
        for number in 0..<4 {
            let made = try await create(TestStack.groupRef, "write-to-salesforce", ["LastName": .string("Order-\(number)")])
            ids.append(try #require(made.body.at("result.recordId")?.stringValue, "\(made.body)"))
        }
        try await stack.setProviderLatency(milliseconds: 300)
        var last: [String] = []
        for (number, id) in ids.enumerated() {
            let batch = try await stack.write("write-to-salesforce", "contact", [
                "groupRef": .string(TestStack.groupRef), "type": "update", "mode": "asynchronous",
                "batch": .array(ids.map { ["record": ["Id": .string($0), "Title": .string("batch-\(number)")]] }),
            ])
            #expect(batch.status == 200, "\(batch.body)")
            let single = try await stack.write("write-to-salesforce", "contact", [
                "groupRef": .string(TestStack.groupRef), "type": "update", "mode": "asynchronous",
                "record": ["Id": .string(id), "Title": .string("single-\(number)")],
            ])
            last.append(try operationId(single))
            _ = try operationId(batch)
        }
        for id in last { #expect(try await stack.finalOperation(id)["status"] == "success") }
        try await stack.setProviderLatency(milliseconds: 0)
        // Record i was last written by the single update of round i, after every round's batch before it;
        // the batches of later rounds wrote it again afterwards, in order.
        for (number, id) in ids.enumerated() {
            let expected = number == ids.count - 1 ? "single-\(number)" : "batch-\(ids.count - 1)"
            #expect(try await stack.salesforceRecord("Contact", id).body["Title"] == .string(expected), "record \(number)")
            let row = try #require(try stack.destinationRow(provider: "salesforce", object: "contact", recordId: id))
            let fields = try JSONCoding.decode([String: JSONValue].self, from: try row.string("fields"))
            #expect(fields["Title"] == .string(expected), "destination of record \(number)")
            let titles = try await stack.providerCalls().filter { call in
                call["recordId"]?.stringValue == id || call.at("body.records")?.arrayValue?.contains { $0["id"]?.stringValue == id } == true
            }.compactMap { call -> String? in
                call.at("body.Title")?.stringValue
                    ?? call.at("body.records")?.arrayValue?.first { $0["id"]?.stringValue == id }?["Title"]?.stringValue
            }.filter { $0.hasPrefix("batch-") || $0.hasPrefix("single-") }
            var expectedOrder: [String] = []
            for round in 0..<ids.count {
                expectedOrder.append("batch-\(round)")
                if round == number { expectedOrder.append("single-\(round)") }
            }
            #expect(titles == expectedOrder, "record \(number) received \(titles)")
        }
    }

    @Test("the cache-invalidator and the operations service frozen amid a backlog of 3,000 records, past their Kafka session: once they go on, every record reaches the destination and every operation ends")
    func frozenConsumers() async throws {
        let stack = try TestStack.stack
        let run = UUID().uuidString.prefix(6)
        let frozen = ["cache-invalidator", "operations"]
        for service in frozen { stack.signal(service, SIGSTOP) }
        var operations: [String] = []
        var failure: (any Error)?
        do {
            let started = ContinuousClock.now
            for batch in 0..<30 {
                let answer = try await stack.write("write-to-salesforce", "contact", [
                    "groupRef": .string(TestStack.groupRef), "type": "create", "mode": "asynchronous",
                    "batch": .array((0..<100).map { ["record": ["LastName": .string("Frozen-\(run)-\(batch)-\($0)")]] }),
                ])
                operations.append(try operationId(answer))
            }
            // Let go, they are amid that backlog (each has its fifty in flight, so it stopped fetching)
            // when they are stopped again, past their sessions (6 s).
            try await Task.sleep(for: .seconds(3) - (ContinuousClock.now - started))
            for service in frozen { stack.signal(service, SIGCONT) }
            try await Task.sleep(for: .milliseconds(150))
            for service in frozen { stack.signal(service, SIGSTOP) }
            try await Task.sleep(for: .seconds(9))
        } catch {
            failure = error
        }
        // However the writing went, they go on (the suite's other tests need them).
        for service in frozen { stack.signal(service, SIGCONT) }
        if let failure { throw failure }
        for id in operations { #expect(try await stack.finalOperation(id)["status"] == "success", "\(id)") }
        let connection = try PostgresConnection.connect(stack.destinationDatabase)
        let deadline = ContinuousClock.now + .seconds(90)
        var rows = 0
        while ContinuousClock.now < deadline {
            rows = try connection.query(
                "SELECT count(*)::int AS n FROM records WHERE provider = 'salesforce' AND fields->>'LastName' LIKE $1",
                ["Frozen-\(run)-%"]
            ).first?.int("n") ?? 0
            if rows == 3000 { break }
            try await Task.sleep(for: .milliseconds(500))
        }
        #expect(rows == 3000, "the destination holds \(rows) of the 3,000 records")
    }

    @Test("a write request no service can read fails its operation and is dead-lettered with the reason; the writes after it go on")
    func unreadable() async throws {
        let stack = try TestStack.stack
        let project = try #require(try stack.controlQuery("SELECT id::text AS id FROM projects WHERE name = $1", [TestStack.project])
            .first?.string("id"))
        let installation = try #require(try stack.controlQuery(
            "SELECT id::text AS id FROM installations WHERE group_ref = $1 ORDER BY created_at LIMIT 1", [TestStack.groupRef]
        ).first?.string("id"))
        let operation = UUID().uuidString.lowercased()
        // A request of a newer version, say, whose fields this version cannot read.
        let skewed = try JSONCoding.encodeString([
            "operationId": .string(operation), "projectId": .string(project), "integrationId": .string(UUID().uuidString.lowercased()),
            "installationId": .string(installation), "groupRef": .string(TestStack.groupRef), "objectName": "contact",
            "type": "create", "mode": "asynchronous", "provider": "salesforce", "record": "not an object",
            "acceptedAt": .string(Timestamp.now()),
        ] as JSONValue)
        try stack.kcatProduce("write-requests", key: installation, value: skewed)
        try stack.kcatProduce("write-requests", key: installation, value: "this is not JSON")
        let after = try await create(TestStack.groupRef, "write-to-salesforce", ["LastName": "After-Unreadable"])
        #expect(after.status == 200, "the writes after an unreadable one go on: \(after.body)")

        let final = try await stack.finalOperation(operation)
        #expect(final["status"] == "failure", "\(final)")
        #expect(final.at("metadata.errors.0.message")?.stringValue?.contains("could not read") == true, "\(final)")
        var letters: [JSONValue] = []
        for _ in 0..<50 {
            letters = try stack.kcat(Topics.writeDeadLetters).filter { $0.at("unreadable.topic") == "write-requests" }
            if letters.contains(where: { $0.at("unreadable.value") == "this is not JSON" }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(letters.contains { $0.at("operation.operationId")?.stringValue == operation && $0.at("unreadable.service") == "writer" })
        #expect(letters.contains { $0.at("unreadable.value") == "this is not JSON" && $0["operation"] == nil })
    }

    @Test("no key, token or secret appears in a log line, even at debug level")
    func noSecretsInDebugLogs() async throws {
        let stack = try TestStack.stack
        stack.kill("writer", signal: SIGTERM)
        try stack.start("writer", environment: ["LOG_LEVEL": "debug"])
        let written = try await create(TestStack.groupRef, "write-to-hubspot", ["name": "Debug-Logged"])
        #expect(written.status == 200, "\(written.body)")
        stack.kill("writer", signal: SIGTERM)
        try stack.start("writer")
        let log = try String(contentsOfFile: "\(stack.logDirectory)/writer.log", encoding: .utf8)
        #expect(log.contains("debug writer"), "the writer logged nothing at debug level")
        for secret in [stack.encryptionKey, "sandbox-hubspot-token", "sandbox-salesforce-token", "sandbox-client-secret"] {
            #expect(!log.contains(secret), "a secret is in the writer's log")
        }
        let key = Array(Data(base64Encoded: stack.encryptionKey)!)
        #expect(!log.contains("\(key.prefix(8).map(String.init).joined(separator: ", "))"), "the key's bytes are in the writer's log")
    }
}

import Foundation
import Shared
import Testing

/// Connections at their providers' rate limits. Every write request is on one Kafka partition here, so a
/// held connection would hold everyone if the writer did not keep each connection's writes apart.
@Suite(
    "Rate limits", .serialized,
    .stack("ratelimits", environment: [
        "KAFKA_MOCK_PARTITIONS": "1",
        "SANDBOX_HUBSPOT_TOKENS": "sandbox-hubspot-token,limited-hubspot-token@limited,shared-hubspot-token@shared",
        "SANDBOX_SALESFORCE_TOKENS": "sandbox-salesforce-token,limited-salesforce-token@sf-limited",
        "WRITER_LIMIT_PAUSE_SECONDS": "0.5", "WRITER_LIMIT_MAX_PAUSE_SECONDS": "2",
    ]))
struct RateLimitTests {
    /// Installs an integration for another customer, whose connection is an org of its own.
    func install(_ integration: String, groupRef: String, token: String) async throws {
        let provider = integration.hasSuffix("hubspot") ? "hubspot" : "salesforce"
        try await TestStack.stack.install(integration, provider: provider, groupRef: groupRef, token: token)
    }

    func setLimits(_ provider: String, _ org: String, _ limits: JSONValue) async throws {
        try await TestStack.stack.setOrg(provider, org, ["limits": limits])
    }

    func org(_ provider: String, _ org: String) async throws -> JSONValue {
        let stack = try TestStack.stack
        return try await stack.call("GET", "\(stack.sandboxURL)/_sandbox/orgs/\(provider)/\(org)").body
    }

    /// Queues asynchronous writes of one field each for a customer; returns their operation ids.
    func queue(_ integration: String, _ object: String, groupRef: String, _ field: String, _ values: [String]) async throws
        -> [String]
    {
        var operations: [String] = []
        for value in values {
            let answer = try await TestStack.stack.write(integration, object, [
                "groupRef": .string(groupRef), "mode": "asynchronous", "record": [field: .string(value)],
            ])
            try #require(answer.status == 200, "\(answer.body)")
            operations.append(try #require(answer.body["operationId"]?.stringValue))
        }
        return operations
    }

    func status(_ operationId: String) async throws -> String? {
        try await TestStack.stack.operation(operationId).body["status"]?.stringValue
    }

    @Test("a connection held at its rate limit delays only its own writes; another customer's writes in the same partition go through")
    func heldConnectionIsolated() async throws {
        let stack = try TestStack.stack
        try await install("write-to-hubspot", groupRef: "limited-customer", token: "limited-hubspot-token")
        try await setLimits("hubspot", "limited", ["windowMax": 5, "windowMilliseconds": 2000])

        // Customer A: 30 companies, 5 allowed per 2 s: about 12 s of work at the allowed rate.
        let backlog = try await queue("write-to-hubspot", "company", groupRef: "limited-customer", "name",
                                      (0..<30).map { "Held-\($0)" })
        // Customer B, same partition, meanwhile: each synchronous write answers at once.
        let started = ContinuousClock.now
        for number in 0..<10 {
            let answer = try await stack.write("write-to-hubspot", "company", [
                "groupRef": .string(TestStack.groupRef), "record": ["name": .string("Free-\(number)")],
            ])
            #expect(answer.status == 200, "\(answer.body)")
            #expect(answer.body.at("result.recordId") != nil)
        }
        let elapsed = ContinuousClock.now - started
        var waiting = 0
        for id in backlog where try await status(id) == "in_progress" { waiting += 1 }
        #expect(waiting >= 10, "customer A's backlog should still be draining at its own rate; \(waiting) left")
        #expect(elapsed < .seconds(6), "customer B's ten writes took \(elapsed)")

        // A's writes all land, paced: not faster than allowed, and hardly ever refused.
        for id in backlog {
            let operation = try await stack.finalOperation(id, timeout: .seconds(60))
            #expect(operation["status"] == "success", "\(operation)")
        }
        let report = try await org("hubspot", "limited")
        #expect(report["calls"] == 30)
        let refused = report["limited"]?.scalarText.flatMap { Int($0) } ?? -1
        #expect(refused >= 0 && refused <= 1, "the limited connection met \(refused) 429s")
        let calls = try await stack.providerCalls().filter {
            ($0.at("body.properties.name")?.stringValue ?? "").hasPrefix("Held-") && $0["status"] == 201
        }
        #expect(calls.count == 30)
    }

    @Test("a 429 holds the connection for a window, then the write lands")
    func refusedThenLanded() async throws {
        let stack = try TestStack.stack
        try await install("write-to-hubspot", groupRef: "shared-customer", token: "shared-hubspot-token")
        try await setLimits("hubspot", "shared", ["windowMax": 3, "windowMilliseconds": 1500])
        // Someone else spends the window with the same token.
        for number in 0..<3 {
            let spent = try await stack.call(
                "POST", "\(stack.sandboxURL)/crm/v3/objects/companies", body: #"{"properties":{"name":"Elsewhere-\#(number)"}}"#,
                headers: [("Authorization", "Bearer shared-hubspot-token"), ("Content-Type", "application/json")])
            try #require(spent.status == 201)
        }
        let answer = try await stack.write("write-to-hubspot", "company", [
            "groupRef": "shared-customer", "record": ["name": "After-The-Window"],
        ])
        #expect(answer.status == 200, "\(answer.body)")
        let operation = try await stack.finalOperation(try #require(answer.body["operationId"]?.stringValue))
        #expect(operation["status"] == "success")
        let calls = try await stack.providerCalls().filter { $0.at("body.properties.name") == "After-The-Window" }
        #expect(calls.compactMap { $0["status"]?.scalarText } == ["429", "201"])
    }

    @Test("Salesforce's REQUEST_LIMIT_EXCEEDED holds the org's writes until its allocation has room again")
    func salesforceAllocation() async throws {
        let stack = try TestStack.stack
        try await install("write-to-salesforce", groupRef: "sf-limited-customer", token: "limited-salesforce-token")
        try await setLimits("salesforce", "sf-limited", ["dailyMax": 3, "dailyWindowSeconds": 3])
        let operations = try await queue("write-to-salesforce", "contact", groupRef: "sf-limited-customer", "LastName",
                                         (0..<6).map { "Allocation-\($0)" })
        for id in operations {
            let operation = try await stack.finalOperation(id, timeout: .seconds(60))
            #expect(operation["status"] == "success", "\(operation)")
        }
        let calls = try await stack.providerCalls().filter { ($0.at("body.LastName")?.stringValue ?? "").hasPrefix("Allocation-") }
        #expect(calls.filter { $0["status"] == 201 }.count == 6)
        let refused = calls.filter { $0["status"] == 403 }.count
        #expect(refused >= 1 && refused <= 8, "\(refused) refusals")
    }
}

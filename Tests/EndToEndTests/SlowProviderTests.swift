import Foundation
import Shared
import Testing

/// A provider slower than the api's synchronous timeout.
@Suite("Slow provider", .serialized, .stack("slow", environment: ["API_SYNC_TIMEOUT_SECONDS": "2"]))
struct SlowProviderTests {
    @Test("a synchronous write that outlasts the timeout answers 202 with its operation id, which ends in success")
    func syncTimeout() async throws {
        let stack = try TestStack.stack
        // Let the consumer groups settle with a write that has no deadline.
        let warmUp = try await stack.write("write-to-hubspot", "company", [
            "groupRef": .string(TestStack.groupRef), "mode": "asynchronous", "record": ["name": "Warm-up"],
        ])
        _ = try await stack.finalOperation(try #require(warmUp.body["operationId"]?.stringValue))

        try await stack.setProviderLatency(milliseconds: 4000)
        let started = ContinuousClock.now
        let answer = try await stack.write("write-to-hubspot", "company", [
            "groupRef": .string(TestStack.groupRef), "record": ["name": "Slow & Sure", "industry": "Logistics"],
        ])
        let waited = ContinuousClock.now - started
        #expect(answer.status == 202, "\(answer.body)")
        #expect(answer.body["result"] == nil)
        #expect(waited < .seconds(4), "the answer waited for the provider: \(waited)")
        let operationId = try #require(answer.body["operationId"]?.stringValue)
        #expect(try await stack.operation(operationId).body["status"] == "in_progress")

        let operation = try await stack.finalOperation(operationId)
        #expect(operation["status"] == "success")
        let recordId = try #require(operation.at("metadata.recordId")?.stringValue)
        let company = try await stack.hubspotObject("companies", recordId)
        #expect(company.body.at("properties.name") == "Slow & Sure")
    }
}

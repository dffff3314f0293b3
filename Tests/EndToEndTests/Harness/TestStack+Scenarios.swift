import Foundation
import Shared
import Testing

/// Scenarios more than one suite runs on its own stack.
extension TestStack {
    /// A HubSpot bulk upsert of 800 rows (8 batches) whose writer is stopped (SIGTERM, past a grace of
    /// `SHUTDOWN_GRACE_SECONDS=1`) in the middle of the file: no batch is sent after the stop, and after
    /// the restart every row is written in the same operation.
    func bulkWriteStoppedMidFile() async throws {
        var csv = "email,firstname,lastname\n"
        for index in 1...800 { csv += "stop-\(index)@example.com,First\(index),Stopped\(index)\n" }
        try await setOrg("hubspot", "default", ["latencyMilliseconds": 300])
        let answer = try await call(
            "PUT", "\(apiURL)/v1/projects/\(TestStack.project)/integrations/write-to-hubspot/objects/contact:async",
            body: try JSONCoding.encodeString([
                "groupRef": .string(TestStack.groupRef), "type": "upsert", "primaryKey": "email", "recordsCSV": .string(csv),
            ] as JSONValue),
            headers: [("X-Api-Key", TestStack.apiKey), ("Content-Type", "application/json")])
        try #require(answer.status == 200, "\(answer.status) \(answer.body)")
        let operationId = try #require(answer.body["operationId"]?.stringValue)
        func upserts() async throws -> [JSONValue] {
            try await providerCalls(mentioning: "stop-").filter { $0["path"]?.stringValue?.hasSuffix("/contacts/batch/upsert") == true }
        }
        for _ in 0..<100 {
            if try await upserts().count >= 2 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        // The stop waits a second for the write, then cancels it: it ends at its next chunk.
        kill("writer", signal: SIGTERM)
        let atStop = try await upserts().count
        #expect(atStop >= 2 && atStop < 8, "\(atStop) of 8 batches were sent before the stop")
        try await Task.sleep(for: .seconds(1))
        #expect(try await upserts().count == atStop, "the cancelled write went on calling the provider")

        try await setOrg("hubspot", "default", ["latencyMilliseconds": 0])
        try start("writer")
        let operation = try await finalOperation(operationId, timeout: .seconds(60))
        #expect(operation["status"] == "success", "\(operation)")
        #expect(operation.at("metadata.progress") == ["processed": 800, "succeeded": 800, "failed": 0, "total": 800])
        var sent = Set<String>()
        for call in try await upserts() {
            for input in call.at("body.inputs")?.arrayValue ?? [] { if let email = input["id"]?.stringValue { sent.insert(email) } }
        }
        #expect(sent.count == 800, "every row reached HubSpot")
    }
}

import Foundation
import Shared
import Testing

/// Providers failing for a passing reason, and refusing for good.
@Suite(
    "Provider faults", .serialized,
    .stack("faults", environment: [
        "WRITER_PROVIDER_TIMEOUT_SECONDS": "1", "WRITER_RETRY_BACKOFF_SECONDS": "0.1",
        "WRITER_RETRY_DEADLINE_SECONDS": "4",
    ]))
struct ProviderFaultTests {
    func queue(_ provider: String, _ faults: JSONValue) async throws {
        try await TestStack.stack.queueFaults(provider, faults.arrayValue ?? [])
    }

    /// The provider calls whose logged body or record id mentions `marker`, as their statuses.
    func statuses(_ marker: String) async throws -> [Int] {
        try await TestStack.stack.providerCalls().filter { call in
            call["recordId"]?.stringValue == marker || (try? JSONCoding.encodeString(call["body"] ?? .null))?.contains(marker) == true
        }.compactMap { $0["status"]?.scalarText.flatMap { Int($0) } }
    }

    func create(_ lastName: String) async throws -> String {
        let answer = try await TestStack.stack.write("write-to-salesforce", "contact", [
            "groupRef": .string(TestStack.groupRef), "record": ["LastName": .string(lastName)],
        ])
        return try #require(answer.body.at("result.recordId")?.stringValue, "\(answer.body)")
    }

    @Test("5xx answers are retried until the write succeeds")
    func serverErrors() async throws {
        let stack = try TestStack.stack
        _ = try await create("warm-up")
        try await queue("salesforce", [["kind": "error", "status": 500], ["kind": "error", "status": 503]])
        let created = try await stack.write("write-to-salesforce", "contact", [
            "groupRef": .string(TestStack.groupRef), "record": ["LastName": "Flaky-5xx"],
        ])
        #expect(created.status == 200, "\(created.body)")
        #expect(try await statuses("Flaky-5xx") == [500, 503, 201])
        let operation = try await stack.finalOperation(try #require(created.body["operationId"]?.stringValue))
        #expect(operation.at("metadata.retry.attempts") == 3)

        let company = try await stack.write("write-to-hubspot", "company", [
            "groupRef": .string(TestStack.groupRef), "record": ["name": "Flaky Inc"],
        ])
        let companyId = try #require(company.body.at("result.recordId")?.stringValue)
        try await queue("hubspot", [["kind": "error", "status": 502]])
        let updated = try await stack.write("write-to-hubspot", "company", [
            "groupRef": .string(TestStack.groupRef), "type": "update", "record": ["id": .string(companyId), "industry": "Retail"],
        ])
        #expect(updated.status == 200, "\(updated.body)")
        #expect(try await statuses(companyId).suffix(2) == [502, 200])
    }

    /// Updates the contact's Title through the write API; returns the answer and the statuses of the
    /// provider calls that carried this Title.
    func updateTitle(_ id: String, _ title: String) async throws -> (TestStack.Answer, [String]) {
        let stack = try TestStack.stack
        let updated = try await stack.write("write-to-salesforce", "contact", [
            "groupRef": .string(TestStack.groupRef), "type": "update", "record": ["Id": .string(id), "Title": .string(title)],
        ])
        let calls = try await stack.providerCalls().filter { $0["recordId"]?.stringValue == id && $0.at("body.Title")?.stringValue == title }
        return (updated, calls.compactMap { $0["status"]?.scalarText })
    }

    @Test("a provider call past the timeout, and a locked row, are sent again")
    func timeoutAndLock() async throws {
        let stack = try TestStack.stack
        let id = try await create("Slow-Record")
        try await queue("salesforce", [["kind": "delay", "delayMilliseconds": 2500]])
        let (updated, _) = try await updateTitle(id, "After timeout")
        #expect(updated.status == 200, "\(updated.body)")
        let operation = try await stack.finalOperation(try #require(updated.body["operationId"]?.stringValue))
        #expect(operation.at("metadata.retry.attempts") == 2)
        #expect(try await stack.salesforceRecord("Contact", id).body["Title"] == "After timeout")

        try await queue("salesforce", [["kind": "lock"]])
        let (locked, statuses) = try await updateTitle(id, "After lock")
        #expect(locked.status == 200, "\(locked.body)")
        #expect(try await stack.salesforceRecord("Contact", id).body["Title"] == "After lock")
        #expect(statuses == ["400", "204"])
    }

    @Test("a connection dropped before the answer is sent again")
    func droppedConnection() async throws {
        let stack = try TestStack.stack
        let id = try await create("Dropped-Record")
        try await queue("salesforce", [["kind": "drop"]])
        let (updated, statuses) = try await updateTitle(id, "After drop")
        #expect(updated.status == 200, "\(updated.body)")
        let operation = try await stack.finalOperation(try #require(updated.body["operationId"]?.stringValue))
        #expect(operation.at("metadata.retry.attempts") == 2)
        #expect(try await stack.salesforceRecord("Contact", id).body["Title"] == "After drop")
        #expect(statuses == ["0", "204"])
    }

    @Test("a validation error is not retried")
    func validationNotRetried() async throws {
        let stack = try TestStack.stack
        let refused = try await stack.write("write-to-salesforce", "contact", [
            "groupRef": .string(TestStack.groupRef), "record": ["FirstName": "No-Last-Name-Marker"],
        ])
        #expect(refused.status == 422)
        #expect(try await statuses("No-Last-Name-Marker") == [400])
        let operation = try await stack.finalOperation(try #require(refused.body["operationId"]?.stringValue))
        #expect(operation.at("metadata.retry.attempts") == 1)
    }

    @Test("a write still failing at its retry deadline fails with the provider's error and goes to the dead-letter topic")
    func deadLettered() async throws {
        let stack = try TestStack.stack
        try await queue("salesforce", .array(Array(repeating: ["kind": "error", "status": 503], count: 40)))
        let answer = try await stack.write("write-to-salesforce", "contact", [
            "groupRef": .string(TestStack.groupRef), "record": ["LastName": "Never-Lands"],
        ])
        _ = try await stack.call("DELETE", "\(stack.sandboxURL)/_sandbox/faults")
        #expect(answer.status == 422)
        let calls = try await statuses("Never-Lands")
        // Backoff 0.1 s doubling with jitter within a 4 s deadline: several calls, every one refused.
        #expect(calls.count >= 3 && calls.count <= 8 && calls.allSatisfy { $0 == 503 }, "\(calls)")
        let message = "retry deadline passed after \(calls.count) provider calls: Server is temporarily unavailable"
        #expect(answer.body.at("errors.0.message")?.stringValue == message)
        let operation = try await stack.finalOperation(try #require(answer.body["operationId"]?.stringValue))
        #expect(operation["status"] == "failure")
        #expect(operation.at("metadata.errors.0.deadLettered") == true)
        #expect(operation.at("metadata.retry.attempts") == .number(Double(calls.count)))
        let letters = try stack.kcat(Topics.writeDeadLetters).filter {
            $0.at("request.operationId") == answer.body["operationId"]
        }
        #expect(letters.count == 1)
        #expect(letters.first?.at("request.record.LastName") == "Never-Lands")
        #expect(letters.first?.at("error.message")?.stringValue == message)
        #expect(letters.first?.at("attempts") == .number(Double(calls.count)))
    }

    @Test("a write's retryPolicy.deadlineHours keeps it retrying past the writer's default deadline until it lands")
    func retryPolicy() async throws {
        let stack = try TestStack.stack
        // Seven refusals: with 0.1 s doubling backoff they outlast the stack's default 4 s deadline.
        try await queue("salesforce", .array(Array(repeating: ["kind": "error", "status": 503], count: 7)))
        let started = ContinuousClock.now
        let answer = try await stack.write("write-to-salesforce", "contact", [
            "groupRef": .string(TestStack.groupRef), "mode": "asynchronous", "record": ["LastName": "Patient-Lands"],
            "retryPolicy": ["deadlineHours": 1],
        ])
        try #require(answer.status == 200, "\(answer.body)")
        let operation = try await stack.finalOperation(try #require(answer.body["operationId"]?.stringValue))
        let took = ContinuousClock.now - started
        #expect(operation["status"] == "success", "\(operation)")
        #expect(operation.at("metadata.retry.attempts") == 8)
        #expect(try await statuses("Patient-Lands") == Array(repeating: 503, count: 7) + [201])
        #expect(took > .seconds(4), "landed after \(took), within the default deadline: the test proves nothing")
    }

    @Test("a HubSpot duplicate is reported with the existing record's id")
    func duplicate() async throws {
        let stack = try TestStack.stack
        let first = try await stack.write("write-to-hubspot", "contact", [
            "groupRef": .string(TestStack.groupRef), "record": ["email": "twin@example.com"],
        ])
        let existing = try #require(first.body.at("result.recordId")?.stringValue)
        let second = try await stack.write("write-to-hubspot", "contact", [
            "groupRef": .string(TestStack.groupRef), "record": ["email": "twin@example.com", "firstname": "Fred"],
        ])
        #expect(second.status == 422)
        #expect(second.body.at("errors.0.message")?.stringValue == "Contact already exists. Existing ID: \(existing)")
        #expect(second.body.at("errors.0.existingRecordId")?.stringValue == existing)
        let operation = try await stack.finalOperation(try #require(second.body["operationId"]?.stringValue))
        #expect(operation.at("metadata.errors.0.existingRecordId")?.stringValue == existing)
        #expect(operation.at("metadata.retry.attempts") == 1)
    }
}

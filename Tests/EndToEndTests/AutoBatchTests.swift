import Foundation
import Shared
import Testing

/// Auto-batching: asynchronous single-record writes that ask for it reach the provider in batch calls of
/// up to 100, each write keeping its own operation and result.
@Suite("Auto-batching", .serialized, .stack("autobatch", environment: ["WRITER_AUTO_BATCH_MAX_DELAY_SECONDS": "5"]))
struct AutoBatchTests {
    func queue(_ integration: String, _ object: String, _ records: [JSONValue]) async throws -> [String] {
        var operations: [String] = []
        for record in records {
            let answer = try await TestStack.stack.write(integration, object, [
                "groupRef": .string(TestStack.groupRef), "mode": "asynchronous", "record": record,
                "autoBatchPolicy": ["maxDelayMinutes": 5],
            ])
            try #require(answer.status == 200, "\(answer.body)")
            operations.append(try #require(answer.body["operationId"]?.stringValue))
        }
        return operations
    }

    @Test("200 single writes reach HubSpot as two batch calls of 100; each write has its own operation, record and change")
    func hundreds() async throws {
        let stack = try TestStack.stack
        let operations = try await queue("write-to-hubspot", "company", (1...200).map { ["name": .string("Auto-\($0)")] })
        var records: Set<String> = []
        for operation in operations {
            let final = try await stack.finalOperation(operation)
            #expect(final["status"] == "success", "\(final)")
            if let id = final.at("metadata.recordId")?.stringValue { records.insert(id) }
        }
        #expect(records.count == 200)
        let calls = try await stack.providerCalls().filter {
            ((try? JSONCoding.encodeString($0["body"] ?? .null)) ?? "").contains("Auto-")
        }
        #expect(calls.count == 2, "\(calls.count) provider calls")
        #expect(calls.allSatisfy { $0["path"]?.stringValue?.hasSuffix("/batch/create") == true && $0.at("body.inputs")?.arrayValue?.count == 100 },
                "\(calls.map { $0.at("body.inputs")?.arrayValue?.count ?? 0 })")
        let events = try stack.kcat(Topics.recordChanges).filter { event in operations.contains { event["id"]?.stringValue == $0 } }
        #expect(events.count == 200)
    }

    @Test("a group that does not fill is sent after its delay, and a refused record fails only its own write")
    func delayAndFailure() async throws {
        let stack = try TestStack.stack
        let started = ContinuousClock.now
        let operations = try await queue("write-to-salesforce", "contact", [
            ["LastName": "Delay-1"], ["FirstName": "Delay-2-without-last-name"], ["LastName": "Delay-3"],
        ])
        let finals = try await operations.asyncMap { try await stack.finalOperation($0) }
        #expect(ContinuousClock.now - started >= .seconds(5), "sent before the group's delay")
        #expect(finals.map { $0["status"]?.stringValue } == ["success", "failure", "success"], "\(finals)")
        #expect(finals[1].at("metadata.errors.0.message")?.stringValue?.contains("Required fields are missing") == true)
        let calls = try await stack.providerCalls().filter {
            ((try? JSONCoding.encodeString($0["body"] ?? .null)) ?? "").contains("Delay-")
        }
        #expect(calls.count == 1 && calls.first?["path"]?.stringValue?.hasSuffix("/composite/sobjects") == true, "\(calls)")
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var mapped: [T] = []
        for element in self { mapped.append(try await transform(element)) }
        return mapped
    }
}

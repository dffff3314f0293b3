import Foundation
import Shared
import Testing

/// A bulk write with two chunks at the provider at once (`WRITER_BULK_CHUNKS_IN_FLIGHT=2`): the next
/// Salesforce job is sent while the one before runs, and still a record's rows reach Salesforce in the
/// file's order, every row is counted and every job listed.
@Suite("Bulk CSV writes with chunks in flight", .serialized, .stack("bulkinflight", environment: [
    "WRITER_BULK_JOB_MAX_BYTES": "200", "WRITER_BULK_CHUNKS_IN_FLIGHT": "2",
    // Each provider call takes a while, as Salesforce's do: the jobs' calls overlap.
    "SANDBOX_LATENCY_MS": "30",
]))
struct BulkChunksInFlightTests {
    @Test("jobs run two at a time; a key's later row, in a later job, is the one Salesforce and the destination keep; counts and jobs are whole")
    func twoAtATime() async throws {
        let stack = try TestStack.stack
        var lines = ["External_Id__c,LastName"]
        for number in 1...80 { lines.append("flight-\(number),Row\(number)") }
        // Keys of earlier jobs (of 11 or 12 rows): the one just before (likely still running) and the first.
        lines += ["flight-75,Later", "flight-1,Last"]
        let answer = try await stack.call(
            "PUT", "\(stack.apiURL)/v1/projects/\(TestStack.project)/integrations/write-to-salesforce/objects/contact:async",
            body: try JSONCoding.encodeString([
                "groupRef": .string(TestStack.groupRef), "primaryKey": "External_Id__c",
                "recordsCSV": .string(lines.joined(separator: "\n") + "\n"),
            ] as JSONValue),
            headers: [("X-Api-Key", TestStack.apiKey), ("Content-Type", "application/json")])
        try #require(answer.status == 200, "\(answer.status) \(answer.body)")
        let operationId = try #require(answer.body["operationId"]?.stringValue)
        let operation = try await stack.finalOperation(operationId)
        #expect(operation["status"] == "success", "\(operation)")
        #expect(operation.at("metadata.progress") == ["processed": 82, "succeeded": 82, "failed": 0, "total": 82], "\(operation)")

        // The jobs as Salesforce saw them: created, uploaded, closed.
        let calls = try await stack.providerCalls().filter { $0["object"] == "bulk" }
        let created = calls.filter { $0["method"] == "POST" }.compactMap { $0["recordId"]?.stringValue }
        let jobs = operation.at("metadata.providerJobIds")?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(jobs.count >= 6, "a file of 82 rows goes in jobs of 200 bytes: \(jobs)")
        #expect(jobs == created, "every job listed, in the order they were created")
        func position(_ job: String, _ method: String) -> Int? {
            calls.firstIndex { $0["method"] == .string(method) && ($0["path"]?.stringValue?.contains(job) == true || $0["recordId"] == .string(job)) }
        }
        // Two jobs open at once: one created after another was created and before that one was closed.
        let overlapping = jobs.indices.dropFirst().contains { index in
            guard let next = position(jobs[index], "POST"), let closed = position(jobs[index - 1], "PATCH") else { return false }
            return next < closed
        }
        #expect(overlapping, "the next job is sent while the one before runs: \(calls.map { "\($0["method"] ?? "") \($0["path"] ?? "")" })")
        // A key's later row goes in a job created only once the job with its earlier row was closed.
        func job(holding row: String) -> String? {
            calls.first { $0["method"] == "PUT" && $0["body"]?.stringValue?.contains(row) == true }?["path"]?.stringValue?
                .split(separator: "/").dropLast().last.map(String.init)
        }
        let earlier = try #require(job(holding: "flight-75,Row75"))
        let later = try #require(job(holding: "flight-75,Later"))
        #expect(earlier != later)
        #expect(try #require(position(later, "POST")) > (try #require(position(earlier, "PATCH"))))

        for (key, name) in [("flight-75", "Later"), ("flight-1", "Last"), ("flight-80", "Row80"), ("flight-20", "Row20")] {
            let found = try await stack.salesforceQuery("SELECT Id, LastName FROM Contact WHERE External_Id__c = '\(key)'")
            #expect(found.count == 1 && found.first?["LastName"] == .string(name), "\(key): \(found)")
        }
        // Every written row is a change event; the destination holds each key's last row.
        let events = try stack.kcat(Topics.recordChanges).filter { $0.at("data.operationId") == .string(operationId) }
        #expect(events.count == 82)
        let id = try #require(try await stack.salesforceQuery("SELECT Id FROM Contact WHERE External_Id__c = 'flight-75'").first?["Id"]?
            .stringValue)
        var row = try stack.destinationRow(provider: "salesforce", object: "contact", recordId: id)
        for _ in 0..<100 where row?["fields"]?.contains("Later") != true {
            try await Task.sleep(for: .milliseconds(100))
            row = try stack.destinationRow(provider: "salesforce", object: "contact", recordId: id)
        }
        #expect(row?["fields"]?.contains("Later") == true, "\(String(describing: row))")
    }
}

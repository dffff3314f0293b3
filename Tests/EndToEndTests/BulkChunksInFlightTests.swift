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
    // A stop waits a second for running writes, then cancels them.
    "SHUTDOWN_GRACE_SECONDS": "1",
]))
struct BulkChunksInFlightTests {
    @Test("jobs run two at a time; a key's later row, in a later job, is the one Salesforce and the destination keep; counts and jobs are whole")
    func twoAtATime() async throws {
        let stack = try TestStack.stack
        var lines = ["External_Id__c,LastName"]
        for number in 1...80 { lines.append("flight-\(number),Row\(number)") }
        // A key of the job before (of 11 rows), likely still running when this row's job is full.
        lines.append("flight-75,Later")
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
        #expect(operation.at("metadata.progress") == ["processed": 81, "succeeded": 81, "failed": 0, "total": 81], "\(operation)")

        // The jobs as Salesforce saw them: created, uploaded, closed.
        let calls = try await stack.providerCalls().filter { $0["object"] == "bulk" }
        let created = calls.filter { $0["method"] == "POST" }.compactMap { $0["recordId"]?.stringValue }
        let jobs = operation.at("metadata.providerJobIds")?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(jobs.count >= 6, "a file of 81 rows goes in jobs of 200 bytes: \(jobs)")
        #expect(Set(jobs) == Set(created) && jobs.count == created.count, "every job listed once")
        func position(_ job: String, _ method: String) -> Int? {
            calls.firstIndex { $0["method"] == .string(method) && ($0["path"]?.stringValue?.contains(job) == true || $0["recordId"] == .string(job)) }
        }
        // Two jobs open at once: one created after another was created and before that one was closed.
        let overlapping = jobs.indices.dropFirst().contains { index in
            guard let next = position(jobs[index], "POST"), let closed = position(jobs[index - 1], "PATCH") else { return false }
            return next < closed
        }
        #expect(overlapping, "the next job is sent while the one before runs: \(calls.map { "\($0["method"] ?? "") \($0["path"] ?? "")" })")
        func job(holding row: String) -> String? {
            calls.first { $0["method"] == "PUT" && $0["body"]?.stringValue?.contains("\n\(row)\n") == true }?["path"]?.stringValue?
                .split(separator: "/").dropLast().last.map(String.init)
        }
        // Listed in the file's order: the job of each row comes no earlier than the job of the row before.
        let places = (1...80).compactMap { number in job(holding: "flight-\(number),Row\(number)").flatMap { jobs.firstIndex(of: $0) } }
        #expect(places.count == 80 && places == places.sorted(), "\(places)")
        // A key's later row goes in a job created only once the job with its earlier row had ended.
        func info(_ job: String) async throws -> JSONValue {
            try await stack.call("GET", "\(stack.sandboxURL)/services/data/v60.0/jobs/ingest/\(job)",
                                 headers: [("Authorization", "Bearer sandbox-salesforce-token")]).body
        }
        let earlier = try #require(job(holding: "flight-75,Row75"))
        let later = try #require(job(holding: "flight-75,Later"))
        #expect(earlier != later)
        let ended = try await info(earlier)
        let started = try await info(later)
        #expect(ended["state"] == "JobComplete")
        let endedAt = try #require(ended["systemModstamp"]?.stringValue.flatMap(Timestamp.parse))
        let startedAt = try #require(started["createdDate"]?.stringValue.flatMap(Timestamp.parse))
        #expect(startedAt > endedAt, "job \(later) was created at \(startedAt), before \(earlier) ended at \(endedAt)")

        for (key, name) in [("flight-75", "Later"), ("flight-1", "Row1"), ("flight-80", "Row80"), ("flight-20", "Row20")] {
            let found = try await stack.salesforceQuery("SELECT Id, LastName FROM Contact WHERE External_Id__c = '\(key)'")
            #expect(found.count == 1 && found.first?["LastName"] == .string(name), "\(key): \(found)")
        }
        // Every written row is a change event; the destination holds each key's last row.
        let events = try stack.kcat(Topics.recordChanges).filter { $0.at("data.operationId") == .string(operationId) }
        #expect(events.count == 81)
        let id = try #require(try await stack.salesforceQuery("SELECT Id FROM Contact WHERE External_Id__c = 'flight-75'").first?["Id"]?
            .stringValue)
        var row = try stack.destinationRow(provider: "salesforce", object: "contact", recordId: id)
        for _ in 0..<100 where row?["fields"]?.contains("Later") != true {
            try await Task.sleep(for: .milliseconds(100))
            row = try stack.destinationRow(provider: "salesforce", object: "contact", recordId: id)
        }
        #expect(row?["fields"]?.contains("Later") == true, "\(String(describing: row))")
    }

    @Test("a HubSpot bulk write with two batches at a time, stopped in the middle of its file, sends no batch after the stop; after the restart every row is written in the same operation")
    func stoppedMidFile() async throws {
        try await TestStack.stack.bulkWriteStoppedMidFile()
    }
}

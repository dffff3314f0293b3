import Foundation
import Shared
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Writers stopping and starting while writes stream: killed with SIGKILL, and scaled out and in.
@Suite("Writer crash and scale-out", .serialized, .stack("writers"))
struct WriterCrashTests {
    /// One accepted write and what it was meant to do.
    struct Sent: Sendable {
        var operationId: String
        /// The record, for updates and deletes.
        var record: Int?
        /// Position in its record's sequence (1…), for updates; Int.max for the final delete.
        var step: Int
        /// The unique value that identifies this write at the provider.
        var marker: String
    }

    /// What was sent, and the provider calls made before it.
    struct Stream {
        var ids: [String]
        var sent: [Sent]
        var baseline: Int
        var deleted: Int
    }

    /// Creates `records` contacts, then sends each `updates` asynchronous updates one after another
    /// (and the first `deleted` a final delete), records in parallel, with `creates` creates beside.
    func stream(_ label: String, records: Int, updates: Int, deleted: Int, creates: Int) async throws -> Stream {
        let stack = try TestStack.stack
        try await stack.setProviderLatency(milliseconds: 0)
        var ids: [String] = []
        for index in 0..<records {
            let created = try await stack.write("write-to-salesforce", "contact", [
                "groupRef": .string(TestStack.groupRef), "record": ["LastName": .string("\(label)-record-\(index)")],
            ])
            ids.append(try #require(created.body.at("result.recordId")?.stringValue, "\(created.body)"))
        }
        try await stack.setProviderLatency(milliseconds: 150)
        let baseline = try await stack.providerCalls().count
        let sent = try await withThrowingTaskGroup(of: [Sent].self) { group in
            for (index, id) in ids.enumerated() {
                group.addTask {
                    var sent: [Sent] = []
                    for step in 1...updates {
                        let marker = "\(label)-r\(index)-v\(step)"
                        let answer = try await stack.write("write-to-salesforce", "contact", [
                            "groupRef": .string(TestStack.groupRef), "type": "update", "mode": "asynchronous",
                            "record": ["Id": .string(id), "Title": .string(marker)],
                        ])
                        try #require(answer.status == 200, "\(answer.body)")
                        sent.append(Sent(operationId: answer.body["operationId"]!.stringValue!, record: index, step: step, marker: marker))
                    }
                    if index < deleted {
                        let answer = try await stack.write("write-to-salesforce", "contact", [
                            "groupRef": .string(TestStack.groupRef), "type": "delete", "mode": "asynchronous",
                            "record": ["Id": .string(id)],
                        ])
                        try #require(answer.status == 200, "\(answer.body)")
                        sent.append(Sent(operationId: answer.body["operationId"]!.stringValue!, record: index, step: .max,
                                         marker: "\(label)-delete-\(index)"))
                    }
                    return sent
                }
            }
            group.addTask {
                var sent: [Sent] = []
                for number in 0..<creates {
                    let marker = "\(label)-create-\(number)"
                    let answer = try await stack.write("write-to-salesforce", "contact", [
                        "groupRef": .string(TestStack.groupRef), "mode": "asynchronous", "record": ["LastName": .string(marker)],
                    ])
                    try #require(answer.status == 200, "\(answer.body)")
                    sent.append(Sent(operationId: answer.body["operationId"]!.stringValue!, record: nil, step: 0, marker: marker))
                }
                return sent
            }
            var all: [Sent] = []
            for try await part in group { all += part }
            return all
        }
        #expect(sent.count == records * updates + deleted + creates)
        return Stream(ids: ids, sent: sent, baseline: baseline, deleted: deleted)
    }

    /// Waits until the provider has received at least `count` calls of the stream.
    func waitForProviderCalls(_ stream: Stream, atLeast count: Int) async throws -> Int {
        let stack = try TestStack.stack
        var calls = 0
        for _ in 0..<200 {
            calls = try await stack.providerCalls().count - stream.baseline
            if calls >= count { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        return calls
    }

    /// Every write ended in success; at the provider each record's writes arrived in the order sent,
    /// and a write arrived twice only where `duplicatesAllowed` and its operation says it may have; the
    /// provider and the destination end in the last state.
    func verify(_ stream: Stream, duplicatesAllowed: Bool) async throws {
        let stack = try TestStack.stack
        var operations: [String: JSONValue] = [:]
        for write in stream.sent {
            operations[write.operationId] = try await stack.finalOperation(write.operationId, timeout: .seconds(120))
        }
        let flagged = Set(stream.sent.filter { operations[$0.operationId]?.at("metadata.possiblyDuplicated") == true }.map(\.marker))
        if !duplicatesAllowed { #expect(flagged.isEmpty, "flagged as possibly duplicated: \(flagged)") }
        for write in stream.sent {
            #expect(operations[write.operationId]?["status"] == "success", "\(write.marker): \(operations[write.operationId]!)")
        }
        let calls = Array(try await stack.providerCalls().dropFirst(stream.baseline))
        for (index, id) in stream.ids.enumerated() {
            let sent = stream.sent.filter { $0.record == index }.sorted { $0.step < $1.step }
            let arrivals = calls.filter { $0["recordId"]?.stringValue == id }.map { call -> String in
                call["method"] == "DELETE" ? sent.last!.marker : (call.at("body.Title")?.stringValue ?? "?")
            }
            var deduplicated: [String] = []
            for arrival in arrivals {
                if deduplicated.last == arrival {
                    #expect(flagged.contains(arrival), "\(arrival) reached the provider twice without being flagged")
                } else {
                    deduplicated.append(arrival)
                }
            }
            #expect(deduplicated == sent.map(\.marker), "record \(index) received \(arrivals)")

            let record = try await stack.salesforceRecord("Contact", id)
            let row = try #require(try stack.destinationRow(provider: "salesforce", object: "contact", recordId: id))
            let fields = try JSONCoding.decode([String: JSONValue].self, from: try row.string("fields"))
            if index < stream.deleted {
                #expect(record.body.at("0.errorCode") == "ENTITY_IS_DELETED")
                #expect(row.bool("deleted") == true)
            } else {
                let last = JSONValue.string(sent.last!.marker)
                #expect(record.body["Title"] == last)
                #expect(fields["Title"] == last)
                #expect(row.bool("deleted") == false)
            }
        }
        for write in stream.sent where write.record == nil {
            let count = calls.filter { $0["method"] == "POST" && $0.at("body.LastName")?.stringValue == write.marker }.count
            #expect(count == 1 || (count == 2 && flagged.contains(write.marker)), "\(write.marker) was created \(count) times")
        }
        for write in stream.sent where flagged.contains(write.marker) {
            let logs = try await stack.operationLogs(write.operationId)
            #expect(logs.contains { $0["severity"] == "WARN" && $0.at("message.msg")?.stringValue?.contains("applied it twice") == true })
        }
    }

    @Test("after a SIGKILL every write ends, in order, and none reached the provider twice unflagged")
    func killWriterWhileWritesAreInFlight() async throws {
        let stack = try TestStack.stack
        let stream = try await stream("crash", records: 6, updates: 8, deleted: 2, creates: 10)
        let callsAtKill = try await waitForProviderCalls(stream, atLeast: 8)
        stack.kill("writer", signal: SIGKILL)
        #expect(callsAtKill < stream.sent.count, "the writer had finished before it was killed; nothing was in flight")
        try await Task.sleep(for: .seconds(1))
        try stack.start("writer")
        try await verify(stream, duplicatesAllowed: true)
    }

    @Test("a PostgreSQL restart mid-stream: every write ends, in order, and none reached the provider twice")
    func restartDatabaseWhileWritesAreInFlight() async throws {
        let stack = try TestStack.stack
        let stream = try await stream("restart", records: 6, updates: 8, deleted: 2, creates: 10)
        let callsAtRestart = try await waitForProviderCalls(stream, atLeast: 8)
        // Every service's connections are cut, and for a moment none can be opened: the writes waiting to
        // record their attempts, their answers and their operations wait for the database, then go on.
        try stack.restartPostgres()
        #expect(callsAtRestart < stream.sent.count, "the writes had all been sent before the restart")
        // Nobody sees the connections the restart closed: the api's first reads after it are answered.
        for write in stream.sent.prefix(12) {
            let answer = try await stack.operation(write.operationId)
            #expect(answer.status == 200, "right after the restart: \(answer.status) \(answer.body)")
        }
        try await verify(stream, duplicatesAllowed: false)
    }

    @Test("a writer joining and another leaving mid-stream keep order and send nothing twice")
    func scaleOutAndIn() async throws {
        let stack = try TestStack.stack
        let stream = try await stream("scale", records: 6, updates: 10, deleted: 1, creates: 6)
        _ = try await waitForProviderCalls(stream, atLeast: 6)
        // Calls begun now outlast a rebalance (about 5 s on the mock cluster), so partitions are handed
        // over while calls for them are still running in the member that gives them up.
        try await stack.setProviderLatency(milliseconds: 8000)
        try stack.start("writer", instance: "writer-2")
        try await Task.sleep(for: .milliseconds(400))
        try await stack.setProviderLatency(milliseconds: 150)
        let callsAtLeave = try await waitForProviderCalls(stream, atLeast: 30)
        try await stack.setProviderLatency(milliseconds: 8000)
        try await Task.sleep(for: .milliseconds(400))
        stack.kill("writer", signal: SIGTERM)
        try await stack.setProviderLatency(milliseconds: 150)
        #expect(callsAtLeave < stream.sent.count, "the stream ended before the first writer left")
        try await verify(stream, duplicatesAllowed: false)
        let secondLog = try String(contentsOfFile: "\(stack.logDirectory)/writer-2.log", encoding: .utf8)
        #expect(secondLog.contains("write answered"), "the second writer wrote nothing")
        try stack.start("writer")
        stack.kill("writer-2", signal: SIGTERM)
    }
}

import Foundation
import Shared
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The writer is killed with SIGKILL while writes are in flight and started again.
@Suite("Writer crash", .serialized, .stack("crash"))
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

    static let records = 6
    static let updatesPerRecord = 8
    static let deletedRecords = 2
    static let creates = 10

    @Test("after a SIGKILL every write ends, in order, and none reached the provider twice unflagged")
    func killWriterWhileWritesAreInFlight() async throws {
        let stack = try TestStack.stack
        var ids: [String] = []
        for index in 0..<Self.records {
            let created = try await stack.write("write-to-salesforce", "contact", [
                "groupRef": .string(TestStack.groupRef), "record": ["LastName": .string("record-\(index)")],
            ])
            ids.append(try #require(created.body.at("result.recordId")?.stringValue, "\(created.body)"))
        }
        try await stack.setProviderLatency(milliseconds: 150)
        let baseline = try await stack.providerCalls().count

        // Every record gets its updates (and two a final delete) one after another; records and the
        // creates go in parallel. All are asynchronous, so they are accepted far faster than written.
        let sent = try await withThrowingTaskGroup(of: [Sent].self) { group in
            for (index, id) in ids.enumerated() {
                group.addTask {
                    var sent: [Sent] = []
                    for step in 1...Self.updatesPerRecord {
                        let marker = "r\(index)-v\(step)"
                        let answer = try await stack.write("write-to-salesforce", "contact", [
                            "groupRef": .string(TestStack.groupRef), "type": "update", "mode": "asynchronous",
                            "record": ["Id": .string(id), "Title": .string(marker)],
                        ])
                        try #require(answer.status == 200, "\(answer.body)")
                        sent.append(Sent(operationId: answer.body["operationId"]!.stringValue!, record: index, step: step, marker: marker))
                    }
                    if index < Self.deletedRecords {
                        let answer = try await stack.write("write-to-salesforce", "contact", [
                            "groupRef": .string(TestStack.groupRef), "type": "delete", "mode": "asynchronous",
                            "record": ["Id": .string(id)],
                        ])
                        try #require(answer.status == 200, "\(answer.body)")
                        sent.append(Sent(operationId: answer.body["operationId"]!.stringValue!, record: index, step: .max, marker: "delete-\(index)"))
                    }
                    return sent
                }
            }
            group.addTask {
                var sent: [Sent] = []
                for number in 0..<Self.creates {
                    let marker = "crash-create-\(number)"
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
        let expectedCalls = Self.records * Self.updatesPerRecord + Self.deletedRecords + Self.creates
        #expect(sent.count == expectedCalls)

        // Kill the writer once it is busy, then start it again.
        var callsAtKill = 0
        for _ in 0..<100 {
            callsAtKill = try await stack.providerCalls().count - baseline
            if callsAtKill >= 8 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        stack.kill("writer", signal: SIGKILL)
        #expect(callsAtKill < expectedCalls, "the writer had finished before it was killed; nothing was in flight")
        try await Task.sleep(for: .seconds(1))
        try stack.start("writer")

        var operations: [String: JSONValue] = [:]
        for write in sent { operations[write.operationId] = try await stack.finalOperation(write.operationId, timeout: .seconds(120)) }
        let flagged = Set(sent.filter { operations[$0.operationId]?.at("metadata.possiblyDuplicated") == true }.map(\.marker))
        for write in sent {
            #expect(operations[write.operationId]?["status"] == "success", "\(write.marker): \(operations[write.operationId]!)")
        }

        let calls = Array(try await stack.providerCalls().dropFirst(baseline))
        // Updates and deletes: at the provider, each record's writes arrived in the order they were sent;
        // a write arrived twice only if its operation says it may have.
        for (index, id) in ids.enumerated() {
            let arrivals = calls.filter { $0["recordId"]?.stringValue == id }.map { call -> String in
                call["method"] == "DELETE" ? "delete-\(index)" : (call.at("body.Title")?.stringValue ?? "?")
            }
            let expected = sent.filter { $0.record == index }.sorted { $0.step < $1.step }.map(\.marker)
            var deduplicated: [String] = []
            for arrival in arrivals {
                if deduplicated.last == arrival {
                    #expect(flagged.contains(arrival), "\(arrival) reached the provider twice without being flagged")
                } else {
                    deduplicated.append(arrival)
                }
            }
            #expect(deduplicated == expected, "record \(index) received \(arrivals)")

            let record = try await stack.salesforceRecord("Contact", id)
            let row = try #require(try stack.destinationRow(provider: "salesforce", object: "contact", recordId: id))
            let fields = try JSONCoding.decode([String: JSONValue].self, from: try row.string("fields"))
            if index < Self.deletedRecords {
                #expect(record.body.at("0.errorCode") == "ENTITY_IS_DELETED")
                #expect(row.bool("deleted") == true)
            } else {
                let last = JSONValue.string("r\(index)-v\(Self.updatesPerRecord)")
                #expect(record.body["Title"] == last)
                #expect(fields["Title"] == last)
                #expect(row.bool("deleted") == false)
            }
        }
        // Creates: one provider create each, two only where flagged.
        for write in sent where write.record == nil {
            let count = calls.filter { $0["method"] == "POST" && $0.at("body.LastName")?.stringValue == write.marker }.count
            #expect(count == 1 || (count == 2 && flagged.contains(write.marker)), "\(write.marker) was created \(count) times")
        }
        // Whatever was sent twice is said so in the operation's log.
        for write in sent where flagged.contains(write.marker) {
            let logs = try await stack.operationLogs(write.operationId)
            #expect(logs.contains { $0["severity"] == "WARN" && $0.at("message.msg")?.stringValue?.contains("applied it twice") == true })
        }
    }
}

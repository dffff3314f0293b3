import Foundation
import Shared
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Every service killed (SIGKILL) and stopped (SIGTERM), several times each, during a stream of writes
/// (creates, ordered updates, batches, upserts) from a client that retries each failed call with the same
/// Idempotency-Key, as a careful client does.
@Suite(
    "Crashes during a stream", .serialized,
    .stack("crashes", environment: ["API_SYNC_TIMEOUT_SECONDS": "10", "SHUTDOWN_GRACE_SECONDS": "10", "WRITER_RETRY_BACKOFF_SECONDS": "0.2"]))
struct CrashTests {
    enum Kind: Sendable { case create, update, batch, upsert }

    /// One write the client handed over, and what it was meant to do.
    struct Sent: Sendable {
        var kind: Kind
        var key: String
        /// The operation the client was answered with (every answer to one key must name the same).
        var operationId: String?
        /// What identifies it at the provider: a create's or batch record's LastName, an update's Title, an
        /// upsert's email.
        var markers: [String]
        /// For updates: the record and the update's place in its sequence; for upserts: the step.
        var record: String?
        var step = 0
        var answers: Set<String> = []
    }

    /// Sends a call until it is answered (2xx) or refused for good (4xx), retrying transport failures
    /// and 5xx with the same Idempotency-Key, for at most two minutes.
    func handOver(_ sent: inout Sent, _ call: @Sendable () async throws -> TestStack.Answer) async {
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            if let answer = try? await call() {
                if (200..<300).contains(answer.status) {
                    let id = answer.body["operationId"]?.stringValue ?? answer.headers["x-operation-id"]
                    if let id {
                        sent.answers.insert(id)
                        sent.operationId = sent.operationId ?? id
                    }
                    return
                }
                if (400..<500).contains(answer.status) {
                    Issue.record("\(sent.key) was refused: \(answer.status) \(answer.body)")
                    return
                }
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
        Issue.record("\(sent.key) was never answered")
    }

    func write(_ body: JSONValue, key: String) -> @Sendable () async throws -> TestStack.Answer {
        { try await TestStack.stack.write("write-to-salesforce", "contact", body, headers: [("Idempotency-Key", key)]) }
    }

    func upsert(email: String, lastName: String, key: String) -> @Sendable () async throws -> TestStack.Answer {
        {
            let stack = try TestStack.stack
            return try await stack.call("POST", "\(stack.apiURL)/crm/v2/contacts/_upsert", body: try JSONCoding.encodeString([
                "record": ["last_name": .string(lastName)], "upsert_on": ["key": "email", "values": [.string(email)]],
            ] as JSONValue), headers: [
                ("x-api-key", TestStack.apiKey), ("x-customer-id", TestStack.groupRef), ("x-provider-name", "salesforce"),
                ("Content-Type", "application/json"), ("Idempotency-Key", key),
            ])
        }
    }

    @Test("every answered write ends in success; no create reaches the provider twice unless flagged; each record's updates arrive in order")
    func stream() async throws {
        let stack = try TestStack.stack
        let run = UUID().uuidString.prefix(6)
        // The records the ordered updates go to.
        var records: [String] = []
        for index in 0..<40 {
            var sent = Sent(kind: .create, key: "\(run)-record-\(index)", markers: ["\(run)-Record-\(index)"])
            await handOver(&sent, write(["groupRef": .string(TestStack.groupRef), "record": ["LastName": .string(sent.markers[0])]],
                                        key: sent.key))
            let final = try await stack.finalOperation(try #require(sent.operationId))
            records.append(try #require(final.at("metadata.recordId")?.stringValue, "\(final)"))
        }
        try await stack.setProviderLatency(milliseconds: 30)
        let baseline = try await stack.providerCalls().count

        let ids = records
        async let killing: Void = killEveryService(rounds: 2)
        let sent = await withTaskGroup(of: [Sent].self) { group in
            for (index, id) in ids.enumerated() {
                group.addTask {
                    var done: [Sent] = []
                    for step in 1...25 {
                        let title = "\(run)-r\(index)-v\(step)"
                        var sent = Sent(kind: .update, key: "\(run)-update-\(index)-\(step)", markers: [title], record: id, step: step)
                        await handOver(&sent, write([
                            "groupRef": .string(TestStack.groupRef), "type": "update", "mode": "asynchronous",
                            "record": ["Id": .string(id), "Title": .string(title)],
                        ], key: sent.key))
                        done.append(sent)
                        try? await Task.sleep(for: .milliseconds(Int.random(in: 900...1500)))
                    }
                    return done
                }
            }
            for worker in 0..<8 {
                group.addTask {
                    var done: [Sent] = []
                    for number in 0..<120 {
                        let name = "\(run)-Create-\(worker)-\(number)"
                        var sent = Sent(kind: .create, key: "\(run)-create-\(worker)-\(number)", markers: [name])
                        await handOver(&sent, write(["groupRef": .string(TestStack.groupRef), "mode": "asynchronous",
                                                     "record": ["LastName": .string(name)]], key: sent.key))
                        done.append(sent)
                        try? await Task.sleep(for: .milliseconds(Int.random(in: 200...320)))
                    }
                    return done
                }
            }
            group.addTask {
                var done: [Sent] = []
                for number in 0..<10 {
                    let names = (0..<10).map { "\(run)-Batch-\(number)-\($0)" }
                    var sent = Sent(kind: .batch, key: "\(run)-batch-\(number)", markers: names)
                    await handOver(&sent, write([
                        "groupRef": .string(TestStack.groupRef), "mode": "asynchronous",
                        "batch": .array(names.map { ["record": ["LastName": .string($0)]] }),
                    ], key: sent.key))
                    done.append(sent)
                    try? await Task.sleep(for: .seconds(3))
                }
                return done
            }
            for email in 0..<20 {
                group.addTask {
                    var done: [Sent] = []
                    let address = "\(run)-upsert-\(email)@example.com".lowercased()
                    for step in 1...3 {
                        var sent = Sent(kind: .upsert, key: "\(run)-upsert-\(email)-\(step)", markers: [address], step: step)
                        await handOver(&sent, upsert(email: address, lastName: "\(run)-Upsert-\(email)-v\(step)", key: sent.key))
                        done.append(sent)
                        try? await Task.sleep(for: .milliseconds(Int.random(in: 4000...9000)))
                    }
                    return done
                }
            }
            var all: [Sent] = []
            for await part in group { all += part }
            return all
        }
        try await killing
        try await stack.setProviderLatency(milliseconds: 0)
        #expect(sent.count >= 2000, "\(sent.count) writes")

        // Every answered write ends in success, and every answer to a key named one operation.
        var operations: [String: JSONValue] = [:]
        for write in sent {
            #expect(write.answers.count <= 1, "\(write.key) was answered with several operations: \(write.answers)")
            guard let id = write.operationId else { continue }
            let final = try await stack.finalOperation(id, timeout: .seconds(240))
            operations[id] = final
            #expect(final["status"] == "success", "\(write.key): \(final)")
        }
        let flagged = { (write: Sent) -> Bool in
            write.operationId.flatMap { operations[$0]?.at("metadata.possiblyDuplicated") } == true
        }
        let calls = Array(try await stack.providerCalls().dropFirst(baseline))
        var createdNames: [String: Int] = [:]
        var createdEmails: [String: Int] = [:]
        for call in calls where call["method"] == "POST" && [200, 201].contains(call["status"]?.scalarText.flatMap { Int($0) } ?? 0) {
            if let name = call.at("body.LastName")?.stringValue { createdNames[name, default: 0] += 1 }
            if let email = call.at("body.Email")?.stringValue?.lowercased() { createdEmails[email, default: 0] += 1 }
            for record in call.at("body.records")?.arrayValue ?? [] {
                if let name = record["LastName"]?.stringValue { createdNames[name, default: 0] += 1 }
            }
        }
        for write in sent where write.kind == .create || write.kind == .batch {
            for name in write.markers {
                let count = createdNames[name] ?? 0
                #expect(count == 1 || (count > 1 && flagged(write)), "\(name) was created \(count) times")
            }
        }
        for write in sent where write.kind == .upsert && write.step == 1 {
            let count = createdEmails[write.markers[0]] ?? 0
            let anyFlagged = sent.filter { $0.kind == .upsert && $0.markers == write.markers }.contains(where: flagged)
            #expect(count == 1 || (count > 1 && anyFlagged), "\(write.markers[0]) was created \(count) times")
        }
        // Each record's updates reached the provider in the order the client sent them (one sent again
        // after a crash arrives right after itself), and the provider and the destination hold the last.
        for id in ids {
            let expected = sent.filter { $0.kind == .update && $0.record == id }.sorted { $0.step < $1.step }.map { $0.markers[0] }
            var arrived: [String] = []
            for call in calls where call["recordId"]?.stringValue == id {
                guard let title = call.at("body.Title")?.stringValue, [200, 204].contains(call["status"]?.scalarText.flatMap { Int($0) } ?? 0)
                else { continue }
                if arrived.last != title { arrived.append(title) }
            }
            #expect(arrived == expected, "record \(id) received \(arrived)")
            #expect(try await stack.salesforceRecord("Contact", id).body["Title"] == expected.last.map(JSONValue.string))
            let row = try #require(try stack.destinationRow(provider: "salesforce", object: "contact", recordId: id))
            let fields = try JSONCoding.decode([String: JSONValue].self, from: try row.string("fields"))
            #expect(fields["Title"] == expected.last.map(JSONValue.string), "destination of \(id)")
        }
    }

    /// Kills each service with SIGKILL and stops it with SIGTERM, `rounds` times, starting it again each
    /// time, while the stream runs.
    func killEveryService(rounds: Int) async throws {
        let stack = try TestStack.stack
        try await Task.sleep(for: .seconds(2))
        for _ in 0..<rounds {
            for service in ["api", "writer", "cache-invalidator", "operations"] {
                for signal in [SIGKILL, SIGTERM] {
                    // A graceful stop may take seconds: wait for it on a thread of its own, not the pool's.
                    await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                        Thread {
                            stack.kill(service, signal: signal)
                            done.resume()
                        }.start()
                    }
                    try await Task.sleep(for: .milliseconds(300))
                    try stack.start(service)
                    if service == "api" { try await stack.waitUntilReachable("\(stack.apiURL)/health") }
                    try await Task.sleep(for: .milliseconds(1500))
                }
            }
        }
    }
}

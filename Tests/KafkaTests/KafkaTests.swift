import Foundation
import Testing

@testable import Kafka

@Suite("Kafka wrapper")
struct KafkaTests {
    @Test("only offsets below the oldest unfinished message are committable")
    func offsetTracking() {
        var tracker = OffsetTracker()
        let partition = TopicPartition(topic: "t", partition: 0)
        for offset in 0..<4 { tracker.dispatched(partition, offset: Int64(offset)) }
        let started = (0..<4).map { tracker.start(partition, offset: Int64($0)) }
        #expect(started == [true, true, true, true])
        tracker.finished(partition, offset: 1)
        tracker.finished(partition, offset: 2)
        #expect(tracker.takeCommittable()[partition] == 0)
        tracker.finished(partition, offset: 0)
        #expect(tracker.takeCommittable()[partition] == 3)
        #expect(tracker.takeCommittable().isEmpty)
        tracker.finished(partition, offset: 3)
        #expect(tracker.takeCommittable()[partition] == 4)
        tracker.reset([partition])
        #expect(tracker.takeCommittable().isEmpty)
    }

    @Test("thousands in flight: the commit point follows the oldest unfinished message, and one handed out again below it holds it back")
    func manyInFlight() {
        var tracker = OffsetTracker()
        let partition = TopicPartition(topic: "t", partition: 0)
        for offset in 0..<5_000 {
            tracker.dispatched(partition, offset: Int64(offset))
            _ = tracker.start(partition, offset: Int64(offset))
        }
        for offset in stride(from: 4_999, through: 1, by: -1) { tracker.finished(partition, offset: Int64(offset)) }
        #expect(tracker.takeCommittable()[partition] == 0, "offset 0 still runs")
        tracker.finished(partition, offset: 0)
        #expect(tracker.takeCommittable()[partition] == 5_000)
        // A message handed out again (a redelivery after a seek) below what was handed out before.
        tracker.dispatched(partition, offset: 5_000)
        tracker.dispatched(partition, offset: 4_200)
        #expect(tracker.start(partition, offset: 5_000) && tracker.start(partition, offset: 4_200))
        tracker.finished(partition, offset: 5_000)
        #expect(tracker.takeCommittable().isEmpty, "4,200 runs again: nothing past it is committed")
        tracker.finished(partition, offset: 4_200)
        #expect(tracker.takeCommittable()[partition] == 5_001)
    }

    @Test("a partition being taken away starts nothing more and keeps its unstarted messages uncommitted")
    func revoking() {
        var tracker = OffsetTracker()
        let partition = TopicPartition(topic: "t", partition: 0)
        for offset in 0..<3 { tracker.dispatched(partition, offset: Int64(offset)) }
        let first = tracker.start(partition, offset: 0)
        let running = tracker.revoke([partition])
        let second = tracker.start(partition, offset: 1)
        #expect(first)
        #expect(running == 1)
        #expect(!second)
        tracker.finished(partition, offset: 0)
        #expect(tracker.running(in: [partition]) == 0)
        #expect(tracker.takeCommittable()[partition] == 1)
    }

    @Test("an abandoned message keeps its offset and everything after it uncommitted")
    func abandoning() {
        var tracker = OffsetTracker()
        let partition = TopicPartition(topic: "t", partition: 0)
        tracker.assign([partition])
        for offset in 0..<3 { tracker.dispatched(partition, offset: Int64(offset)) }
        let started = (0..<3).map { tracker.start(partition, offset: Int64($0)) }
        #expect(started == [true, true, true])
        tracker.finished(partition, offset: 0)
        tracker.abandon(partition, offset: 1)
        tracker.finished(partition, offset: 2)
        #expect(tracker.takeCommittable()[partition] == 1)
        #expect(tracker.running(in: [partition]) == 0)
    }

    @Test("work of a partition that is not a message is waited for, and refused once the partition is being taken away")
    func partitionWork() {
        var tracker = OffsetTracker()
        let partition = TopicPartition(topic: "t", partition: 0)
        let beforeAssignment = tracker.startWork(partition)
        #expect(!beforeAssignment, "a partition that is not assigned")
        tracker.assign([partition])
        let owned = tracker.startWork(partition)
        #expect(owned)
        let running = tracker.revoke([partition])
        #expect(running == 1)
        let whileRevoking = tracker.startWork(partition)
        #expect(!whileRevoking)
        tracker.finishWork(partition)
        #expect(tracker.running(in: [partition]) == 0)
    }

    @Test("a produced message reaches a group consumer; a new member resumes after the committed offset")
    func produceConsumeCommit() async throws {
        let cluster = try KafkaMockCluster(topics: [("events", 2)])
        let configuration = KafkaConfiguration(
            brokers: cluster.bootstrapServers, consumerProperties: ["session.timeout.ms": "6000", "fetch.wait.max.ms": "10"])
        let producer = try KafkaProducer(configuration: configuration)
        defer { producer.shutdown() }
        for number in 0..<4 {
            try await producer.send(topic: "events", key: "record-1", value: Array("m\(number)".utf8))
        }

        // The third is abandoned (its work was cancelled), the fourth finishes: neither is committed.
        let first = try KafkaConsumer(configuration: configuration, groupID: "g", topics: ["events"])
        first.startPolling()
        var received: [String] = []
        for await message in first.messages {
            received.append(String(decoding: message.value, as: UTF8.self))
            #expect(message.keyText == "record-1")
            #expect(first.begin(message))
            if received.count == 3 { first.abandoned(message) } else { first.finished(message) }
            if received.count == 4 { break }
        }
        await first.shutdown()
        #expect(received == ["m0", "m1", "m2", "m3"])

        let second = try KafkaConsumer(configuration: configuration, groupID: "g", topics: ["events"])
        second.startPolling()
        var again: [String] = []
        for await message in second.messages {
            again.append(String(decoding: message.value, as: UTF8.self))
            #expect(second.begin(message))
            second.finished(message)
            if again.count == 2 { break }
        }
        await second.shutdown()
        #expect(again == ["m2", "m3"])
    }

    @Test("clients whose creation fails after their handle exists throw and free it once")
    func failedCreation() async throws {
        let cluster = try KafkaMockCluster(topics: [("present", 1)])
        #expect(throws: KafkaError.self) { try KafkaMockCluster(topics: [("twice", 1), ("twice", 1)]) }
        let configuration = KafkaConfiguration(brokers: cluster.bootstrapServers)
        // No time to read the topic's partitions: the tailer's handle exists when it fails.
        #expect(throws: KafkaError.self) { try KafkaTailer(configuration: configuration, topics: ["present"], timeoutMilliseconds: 0) }
        #expect(throws: KafkaError.self) {
            try KafkaConsumer(configuration: configuration, groupID: "g", topics: ["^[invalid"])
        }
    }

    @Test("a tailer sees what is published after it started, and nothing before")
    func tailer() async throws {
        let cluster = try KafkaMockCluster(topics: [("completions", 3)])
        let configuration = KafkaConfiguration(brokers: cluster.bootstrapServers)
        let producer = try KafkaProducer(configuration: configuration)
        defer { producer.shutdown() }
        try await producer.send(topic: "completions", key: "a", value: Array("before".utf8))
        let tailer = try KafkaTailer(configuration: configuration, topics: ["completions"])
        try await producer.send(topic: "completions", key: "b", value: Array("after".utf8))
        var seen: String?
        for await message in tailer.messages {
            seen = String(decoding: message.value, as: UTF8.self)
            break
        }
        tailer.shutdown()
        #expect(seen == "after")
    }

    @Test("headers travel with a message: a consumer reads each by name, and a message without them has none")
    func headers() async throws {
        let cluster = try KafkaMockCluster(topics: [("completions", 1)])
        let configuration = KafkaConfiguration(brokers: cluster.bootstrapServers)
        let producer = try KafkaProducer(configuration: configuration)
        defer { producer.shutdown() }
        let tailer = try KafkaTailer(configuration: configuration, topics: ["completions"])
        try await producer.send([
            KafkaOutgoing(topic: "completions", key: "a", value: Array("plain".utf8)),
            KafkaOutgoing(topic: "completions", key: "a", value: Array("headed".utf8),
                          headers: [KafkaHeader("writeback-reply-to", "api-7"), KafkaHeader("empty", "")]),
        ])
        var seen: [KafkaMessage] = []
        for await message in tailer.messages {
            seen.append(message)
            if seen.count == 2 { break }
        }
        tailer.shutdown()
        #expect(seen.map { String(decoding: $0.value, as: UTF8.self) } == ["plain", "headed"])
        #expect(seen[0].headers.isEmpty)
        #expect(seen[1].header("writeback-reply-to") == "api-7")
        #expect(seen[1].header("empty") == "")
        #expect(seen[1].header("absent") == nil)
    }
}

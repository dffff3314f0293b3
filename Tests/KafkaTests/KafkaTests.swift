import CRdKafka
import Foundation
import Synchronization
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

    @Test("the read-ahead watch wakes the fetchers once a queue long enough to have reached the bound is three quarters taken, and not for a short one")
    func readAheadWatch() {
        // 200 KB at the first guess of 1 KB a message: a queue of 100 may have reached it.
        var watch = ReadAheadWatch(boundBytes: 200_000)
        #expect(watch.backlog == 97)
        func nudges(_ lengths: [Int]) -> [Bool] {
            var answers: [Bool] = []
            for length in lengths { answers.append(watch.observe(queued: length)) }
            return answers
        }
        // A queue that never gets long: nothing to wake.
        #expect(nudges([10, 50, 96, 0, 20, 0]) == [false, false, false, false, false, false])
        // It fills past the backlog and is taken: one nudge when a quarter is left, then it must fill again.
        #expect(nudges([400, 390, 200, 101, 100]) == [false, false, false, false, true])
        #expect(nudges([50, 0, 0]) == [false, false, false])
        #expect(nudges([300, 120, 75]) == [false, false, true])
        // A pause empties the queue: what it held before tells nothing.
        #expect(nudges([400]) == [false])
        watch.reset()
        #expect(nudges([0, 0]) == [false, false])
        // Smaller messages: the bound holds more of them.
        for _ in 0..<1000 { watch.delivered(bytes: 100) }
        #expect((990...1000).contains(watch.backlog), "\(watch.backlog)")
        #expect(nudges([800, 100]) == [false, false])
    }

    /// A mock cluster with a topic `events` of one partition, its clients' configuration (consumers: a
    /// 6 s session and a 10 ms fetch wait, then `consumerProperties`), and a producer.
    static func events(consumerProperties: [String: String]) throws -> (KafkaMockCluster, KafkaConfiguration, KafkaProducer) {
        let cluster = try KafkaMockCluster(topics: [("events", 1)])
        let configuration = KafkaConfiguration(
            brokers: cluster.bootstrapServers,
            consumerProperties: ["session.timeout.ms": "6000", "fetch.wait.max.ms": "10"].merging(consumerProperties) { $1 })
        return (cluster, configuration, try KafkaProducer(configuration: configuration))
    }

    @Test("a consumer that is behind reads on at its own pace: neither a full read-ahead nor a pause stops its fetching for a second each time")
    func readsOnWhenBehind() async throws {
        // A read-ahead of 50 messages of 1 KB: librdkafka 2.0.2 alone would wait up to a second each time
        // it is full, and after each resume.
        let (cluster, configuration, producer) = try Self.events(consumerProperties: ["queued.max.messages.kbytes": "50"])
        defer { producer.shutdown() }
        let value = [UInt8](repeating: UInt8(ascii: "x"), count: 1000)
        try await producer.send((0..<1500).map { _ in (topic: "events", key: "record-1", value: value) })

        // Twenty in flight: the test finishes them twenty at a time, 150 ms later, so the member pauses
        // (it does after 100 ms full) and resumes twenty times; the other 1,100 are read straight on.
        let consumer = try KafkaConsumer(configuration: configuration, groupID: "g", topics: ["events"], maxInFlight: 20)
        consumer.startPolling()
        let timeout = Task {
            try await Task.sleep(for: .seconds(60))
            consumer.close()
        }
        defer { timeout.cancel() }
        var received = 0
        var started: ContinuousClock.Instant?
        var held: [KafkaMessage] = []
        for await message in consumer.messages {
            started = started ?? .now
            received += 1
            #expect(consumer.begin(message))
            held.append(message)
            if received <= 400 && held.count == 20 {
                try await Task.sleep(for: .milliseconds(150))
            }
            if held.count == 20 || received > 400 {
                held.forEach(consumer.finished)
                held = []
            }
            if received == 1500 { break }
        }
        let elapsed = ContinuousClock.now - (started ?? .now)
        await consumer.shutdown()
        #expect(received == 1500)
        // Twenty pauses of 150 ms are 3 s; a second lost at each pause or full read-ahead would be 40 s.
        #expect(elapsed < .seconds(12), "1,500 messages took \(elapsed)")
        withExtendedLifetime(cluster) {}
    }

    @Test("a member that was full (fetching paused) when it lost its partition fetches it again when the partition comes back")
    func pausedWhenRevoked() async throws {
        // The forgotten member's old self leaves the group when its session ends: short, but longer than
        // the mock cluster's 3 s wait for the members of a new group.
        let (cluster, configuration, producer) = try Self.events(consumerProperties: ["session.timeout.ms": "4000", "heartbeat.interval.ms": "100"])
        defer { producer.shutdown() }
        for number in 0..<4 {
            try await producer.send(topic: "events", key: "record-1", value: Array("m\(number)".utf8))
        }

        // Two in flight at most: the first two, held unfinished, fill the member and its fetching pauses.
        let consumer = try KafkaConsumer(configuration: configuration, groupID: "g", topics: ["events"], maxInFlight: 2)
        let held = Mutex<[KafkaMessage]>([])
        let listener = GiveBackOnRevoke { held.withLock { held in defer { held = [] }; return held } }
        consumer.setRebalanceListener(listener)
        listener.consumer.withLock { $0 = consumer }
        defer {
            listener.consumer.withLock { $0 = nil }
            consumer.close()
        }
        consumer.startPolling()
        // However it goes, the member stops within 30 s (its messages end), so the test cannot hang.
        let timeout = Task {
            try await Task.sleep(for: .seconds(30))
            consumer.close()
        }
        defer { timeout.cancel() }
        var messages = consumer.messages.makeAsyncIterator()
        for _ in 0..<2 {
            let message = try #require(await messages.next())
            held.withLock { $0.append(message) }
        }
        #expect(held.withLock { $0.map(\.offset) } == [0, 1])
        try await Task.sleep(for: .milliseconds(300))

        // The broker forgets the member: it loses its partition, gives its messages back while it has
        // none (so it has room again and resumes what it then has: nothing), and gets the partition back.
        cluster.failRequests(apiKey: 12, with: [RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID])
        // Nothing was committed: the partition is read again from its start.
        var again = false
        while let message = await messages.next() {
            consumer.skipped(message)
            if message.offset == 0 {
                again = true
                break
            }
        }
        #expect(again, "the partition was not fetched again after it came back")
        #expect(listener.revocations.withLock { $0 } >= 1)
        await consumer.shutdown()
        withExtendedLifetime(cluster) {}
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

/// Gives the member's held messages back (unbegun) when its partitions are taken away.
private final class GiveBackOnRevoke: KafkaRebalanceListener {
    let take: @Sendable () -> [KafkaMessage]
    let consumer = Mutex<KafkaConsumer?>(nil)
    let revocations = Mutex(0)

    init(take: @escaping @Sendable () -> [KafkaMessage]) { self.take = take }

    func assigned(_ partitions: [(partition: TopicPartition, committed: Int64)]) {}
    func revoking(_ partitions: [TopicPartition]) {}
    func revoked(_ partitions: [TopicPartition]) {
        revocations.withLock { $0 += 1 }
        guard let consumer = consumer.withLock({ $0 }) else { return }
        for message in take() { consumer.skipped(message) }
    }
}

import Foundation
import Logging
import Pipeline
import ServiceLifecycle
import Synchronization
import Testing

@testable import Kafka

@Suite("Batch processor")
struct BatchProcessorTests {
    @Test("messages are handled in batches, each key's in offset order; a graceful stop commits every handled batch")
    func batches() async throws {
        let cluster = try KafkaMockCluster(topics: [("changes", 2)])
        let configuration = KafkaConfiguration(
            brokers: cluster.bootstrapServers, consumerProperties: ["session.timeout.ms": "6000", "fetch.wait.max.ms": "10"])
        let producer = try KafkaProducer(configuration: configuration)
        defer { producer.shutdown() }
        let keys = (0..<10).map { "record-\($0)" }
        try await producer.send((0..<300).map { number in
            (topic: "changes", key: keys[number % keys.count], value: Array("\(number)".utf8))
        })

        let seen = Mutex<(batches: [Int], perKey: [String: [Int]])>(([], [:]))
        let consumer = try KafkaConsumer(configuration: configuration, groupID: "g", topics: ["changes"])
        let processor = BatchProcessor(consumer: consumer, maxBatch: 64, logger: Logger(label: "test")) { batch in
            // Slow enough that what arrives meanwhile makes the next batch.
            try await Task.sleep(for: .milliseconds(20))
            seen.withLock { seen in
                seen.batches.append(batch.count)
                for message in batch {
                    seen.perKey[message.keyText ?? "", default: []].append(Int(String(decoding: message.value, as: UTF8.self))!)
                }
            }
        }
        let group = ServiceGroup(services: [consumer, processor], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let deadline = ContinuousClock.now + .seconds(30)
            while seen.withLock({ $0.batches.reduce(0, +) }) < 300, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let (batches, perKey) = seen.withLock { $0 }
        #expect(batches.reduce(0, +) == 300)
        #expect(batches.allSatisfy { $0 <= 64 })
        #expect(batches.contains { $0 > 1 }, "\(batches)")
        for (index, key) in keys.enumerated() {
            #expect(perKey[key] == Array(stride(from: index, to: 300, by: keys.count)), "\(key)")
        }

        // Everything handled was committed: the group's next member starts after it.
        try await producer.send(topic: "changes", key: keys[0], value: Array("after".utf8))
        let next = try KafkaConsumer(configuration: configuration, groupID: "g", topics: ["changes"])
        next.startPolling()
        var first: String?
        for await message in next.messages {
            first = String(decoding: message.value, as: UTF8.self)
            break
        }
        await next.shutdown()
        #expect(first == "after")
    }
}

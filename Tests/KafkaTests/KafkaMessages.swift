import Kafka

extension KafkaConsumer {
    /// The consumer's messages one at a time, for tests that read a few. Read it in one loop: each use
    /// starts at the next batch, so a loop left midway leaves the rest of its batch unread (never begun,
    /// so never committed, until the partition is handed over again).
    var messages: KafkaMessages { KafkaMessages(batches: batches) }
}

/// A consumer's messages one at a time, from its batches.
struct KafkaMessages: AsyncSequence, Sendable {
    typealias Element = KafkaMessage
    let batches: AsyncStream<[KafkaMessage]>

    struct AsyncIterator: AsyncIteratorProtocol {
        var batches: AsyncStream<[KafkaMessage]>.AsyncIterator
        var batch: [KafkaMessage] = []
        var index = 0

        mutating func next() async -> KafkaMessage? {
            while index == batch.count {
                guard let next = await batches.next() else { return nil }
                (batch, index) = (next, 0)
            }
            defer { index += 1 }
            return batch[index]
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(batches: batches.makeAsyncIterator()) }
}

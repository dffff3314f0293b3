import CRdKafka
import Foundation
import ServiceLifecycle
import Synchronization

/// Follows topics from their current end without a consumer group: every instance sees every message
/// published after it started. The end offsets are read before `init` returns, so nothing published
/// after that is missed.
///
/// As a `Service`, it follows until graceful shutdown; `messages` ends then.
///
/// `@unchecked Sendable`: the handle is only polled by the tailer's own thread.
public final class KafkaTailer: Service, @unchecked Sendable {
    private let handle: OpaquePointer
    private let running = Atomic<Bool>(true)
    private let stopped = DispatchSemaphore(value: 0)
    private let continuation: AsyncStream<KafkaMessage>.Continuation
    public let messages: AsyncStream<KafkaMessage>

    public init(configuration: KafkaConfiguration, topics: [String], timeoutMilliseconds: Int32 = 10_000) throws {
        let conf = try configuration.makeConf(["enable.partition.eof": "false", "group.id": "tailer-unused"], consumer: true)
        handle = try makeKafkaHandle(RD_KAFKA_CONSUMER, conf: conf)
        (messages, continuation) = AsyncStream.makeStream(of: KafkaMessage.self)
        // Every stored property is set: on failure deinit destroys the handle.
        try assignAtEnd(topics, timeoutMilliseconds: timeoutMilliseconds)
        let thread = Thread { [self] in self.poll() }
        thread.name = "kafka-tailer"
        thread.start()
    }

    deinit {
        rd_kafka_destroy(handle)
    }

    /// Follows until graceful shutdown (or cancellation).
    public func run() async throws {
        try? await gracefulShutdown()
        await onThread("kafka-tailer-close") { self.shutdown() }
    }

    public func shutdown() {
        guard running.exchange(false, ordering: .relaxed) else { return }
        stopped.wait()
    }

    private func assignAtEnd(_ topics: [String], timeoutMilliseconds: Int32) throws {
        guard let list = rd_kafka_topic_partition_list_new(16) else { throw KafkaError(code: -1, message: "out of memory") }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for topic in topics {
            for partition in try partitions(of: topic, timeoutMilliseconds: timeoutMilliseconds) {
                var low: Int64 = 0
                var high: Int64 = 0
                let error = rd_kafka_query_watermark_offsets(handle, topic, partition, &low, &high, timeoutMilliseconds)
                guard error == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(error, context: "end of \(topic)") }
                rd_kafka_topic_partition_list_add(list, topic, partition).pointee.offset = high
            }
        }
        let error = rd_kafka_assign(handle, list)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(error, context: "assign") }
    }

    private func partitions(of topic: String, timeoutMilliseconds: Int32) throws -> [Int32] {
        guard let topicHandle = rd_kafka_topic_new(handle, topic, nil) else {
            throw KafkaError(rd_kafka_last_error(), context: "topic \(topic)")
        }
        defer { rd_kafka_topic_destroy(topicHandle) }
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let error = rd_kafka_metadata(handle, 0, topicHandle, &metadata, timeoutMilliseconds)
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { throw KafkaError(error, context: "metadata of \(topic)") }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt == 1, metadata.pointee.topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR,
            metadata.pointee.topics[0].partition_cnt > 0
        else {
            throw KafkaError(code: -1, message: "topic \(topic) does not exist")
        }
        let found = metadata.pointee.topics[0]
        return (0..<Int(found.partition_cnt)).map { found.partitions[$0].id }
    }

    private func poll() {
        while running.load(ordering: .relaxed) {
            guard let raw = rd_kafka_consumer_poll(handle, 100) else { continue }
            if raw.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR { continuation.yield(KafkaMessage(raw)) }
            rd_kafka_message_destroy(raw)
        }
        rd_kafka_consumer_close(handle)
        continuation.finish()
        stopped.signal()
    }
}

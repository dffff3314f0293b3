import CRdKafka
import Foundation
import ServiceLifecycle
import Synchronization

/// A librdkafka producer. `send` returns once the broker acknowledged the message (acks=all,
/// idempotent), so a caller can commit its input only after its output is safe.
///
/// As a `Service`, it serves until graceful shutdown and then waits for every queued message: put it
/// before the services that publish through it in their `ServiceGroup`, so that it stops after them.
///
/// `@unchecked Sendable`: librdkafka's producer handle is thread-safe; the topic-handle cache is behind
/// a mutex; the poll thread only calls `rd_kafka_poll`.
public final class KafkaProducer: Service, @unchecked Sendable {
    // Stored-property order: the handle is destroyed in deinit after the poll thread has stopped.
    private let handle: OpaquePointer
    private let topics = Mutex<[String: OpaquePointer]>([:])
    private let running = Atomic<Bool>(true)
    private let stopped = DispatchSemaphore(value: 0)

    public init(configuration: KafkaConfiguration) throws {
        let conf = try configuration.makeConf([
            "enable.idempotence": "true",
            "acks": "all",
            "linger.ms": "0",
            "message.timeout.ms": "30000",
            // JSON messages compress several times over: less broker storage and network per write.
            "compression.codec": "lz4",
        ], consumer: false)
        rd_kafka_conf_set_dr_msg_cb(conf, onDelivery)
        handle = try makeKafkaHandle(RD_KAFKA_PRODUCER, conf: conf)
        // The thread holds the producer until `shutdown` stops it.
        let thread = Thread { [self] in
            while running.load(ordering: .relaxed) { rd_kafka_poll(handle, 50) }
            stopped.signal()
        }
        thread.name = "kafka-producer-poll"
        thread.start()
    }

    deinit {
        shutdown()
        topics.withLock { cache in cache.values.forEach { rd_kafka_topic_destroy($0) } }
        rd_kafka_destroy(handle)
    }

    /// Serves until graceful shutdown (or cancellation), then flushes and stops.
    public func run() async throws {
        try? await gracefulShutdown()
        await onThread("kafka-producer-flush") { self.shutdown() }
    }

    /// Publishes one message and waits for the broker's acknowledgement.
    public func send(topic: String, key: String?, value: [UInt8]) async throws {
        guard running.load(ordering: .relaxed) else { throw KafkaError(code: -1, message: "the producer is shut down") }
        let topicHandle = try self.topic(topic)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let box = Unmanaged.passRetained(DeliveryBox(continuation)).toOpaque()
            let keyBytes = key.map { Array($0.utf8) }
            let result = value.withUnsafeBytes { payload in
                (keyBytes ?? []).withUnsafeBytes { keyBuffer in
                    rd_kafka_produce(
                        topicHandle, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
                        UnsafeMutableRawPointer(mutating: payload.baseAddress), payload.count,
                        keyBytes == nil ? nil : keyBuffer.baseAddress, keyBytes?.count ?? 0, box)
                }
            }
            if result != 0 {
                Unmanaged<DeliveryBox>.fromOpaque(box).release()
                continuation.resume(throwing: KafkaError(rd_kafka_last_error(), context: "produce to \(topic)"))
            }
        }
    }

    /// Waits for every queued message, then stops the poll thread. Safe to call twice.
    public func shutdown() {
        guard running.exchange(false, ordering: .relaxed) else { return }
        _ = rd_kafka_flush(handle, 10_000)
        stopped.wait()
    }

    private func topic(_ name: String) throws -> OpaquePointer {
        try topics.withLock { cache in
            if let existing = cache[name] { return existing }
            guard let created = rd_kafka_topic_new(handle, name, nil) else {
                throw KafkaError(rd_kafka_last_error(), context: "topic \(name)")
            }
            cache[name] = created
            return created
        }
    }
}

/// Carries one message's continuation through librdkafka as the message's opaque.
private final class DeliveryBox {
    let continuation: CheckedContinuation<Void, any Error>
    init(_ continuation: CheckedContinuation<Void, any Error>) { self.continuation = continuation }
}

private let onDelivery: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = {
    _, message, _ in
    guard let message, let opaque = message.pointee._private else { return }
    let box = Unmanaged<DeliveryBox>.fromOpaque(opaque).takeRetainedValue()
    if message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
        box.continuation.resume()
    } else {
        box.continuation.resume(throwing: KafkaError(message.pointee.err, context: "delivery"))
    }
}

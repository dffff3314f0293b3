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
            // A message waits at most 1 ms for others bound for its partition: under load they share one
            // request (and the broker's log one batch, which consumers fetch at once) instead of each
            // costing a round trip of its own.
            "linger.ms": "1",
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
    public func send(topic: String, key: String?, value: [UInt8], headers: [KafkaHeader] = []) async throws {
        try await send([KafkaOutgoing(topic: topic, key: key, value: value, headers: headers)])
    }

    /// Publishes messages in their order (one key's messages reach its partition in this order) and waits
    /// until the broker acknowledged every one; throws the first failure once all were answered.
    public func send(_ messages: [(topic: String, key: String?, value: [UInt8])]) async throws {
        try await send(messages.map { KafkaOutgoing(topic: $0.topic, key: $0.key, value: $0.value) })
    }

    /// Publishes messages in their order (one key's messages reach its partition in this order) and waits
    /// until the broker acknowledged every one; throws the first failure once all were answered.
    public func send(_ messages: [KafkaOutgoing]) async throws {
        guard !messages.isEmpty else { return }
        guard running.load(ordering: .relaxed) else { throw KafkaError(code: -1, message: "the producer is shut down") }
        let handles = try messages.map { try self.topic($0.topic) }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let deliveries = Deliveries(count: messages.count, continuation)
            for (index, message) in messages.enumerated() {
                let box = Unmanaged.passRetained(deliveries).toOpaque()
                let result = produce(message, to: handles[index], opaque: box)
                if result != RD_KAFKA_RESP_ERR_NO_ERROR {
                    Unmanaged<Deliveries>.fromOpaque(box).release()
                    // This one and every one not produced after it are answered as failed.
                    deliveries.answer(count: messages.count - index, KafkaError(result, context: "produce to \(message.topic)"))
                    return
                }
            }
        }
    }

    /// Hands one message to librdkafka (copied); its delivery report answers `opaque`.
    private func produce(_ message: KafkaOutgoing, to topic: OpaquePointer, opaque: UnsafeMutableRawPointer) -> rd_kafka_resp_err_t {
        var key = message.key.map { Array($0.utf8) } ?? []
        let hasKey = message.key != nil
        return message.value.withUnsafeBytes { payload in
            key.withUnsafeMutableBytes { keyBuffer in
                let value = UnsafeMutableRawPointer(mutating: payload.baseAddress)
                let keyPointer = hasKey ? keyBuffer.baseAddress : nil
                guard !message.headers.isEmpty else {
                    return rd_kafka_produce(topic, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, value, payload.count, keyPointer,
                                            keyBuffer.count, opaque) == 0 ? RD_KAFKA_RESP_ERR_NO_ERROR : rd_kafka_last_error()
                }
                let headers = rd_kafka_headers_new(message.headers.count)
                for header in message.headers {
                    _ = header.value.utf8.withContiguousStorageIfAvailable { bytes in
                        rd_kafka_header_add(headers, header.name, -1, bytes.baseAddress, bytes.count)
                    } ?? Array(header.value.utf8).withUnsafeBytes { bytes in
                        rd_kafka_header_add(headers, header.name, -1, bytes.baseAddress, bytes.count)
                    }
                }
                let error = wb_kafka_produce_with_headers(handle, topic, value, payload.count, keyPointer, keyBuffer.count, headers, opaque)
                // librdkafka owns the headers once the message is queued.
                if error != RD_KAFKA_RESP_ERR_NO_ERROR { rd_kafka_headers_destroy(headers) }
                return error
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

/// Carries the continuation of a `send` through librdkafka as each of its messages' opaque: resumed
/// once every message was answered, with the first failure if any.
private final class Deliveries: Sendable {
    private let state: Mutex<(left: Int, failure: KafkaError?, continuation: CheckedContinuation<Void, any Error>?)>

    init(count: Int, _ continuation: CheckedContinuation<Void, any Error>) {
        state = Mutex((count, nil, continuation))
    }

    func answer(count: Int = 1, _ failure: KafkaError?) {
        let finished = state.withLock { state -> (CheckedContinuation<Void, any Error>, KafkaError?)? in
            state.left -= count
            state.failure = state.failure ?? failure
            guard state.left <= 0, let continuation = state.continuation else { return nil }
            state.continuation = nil
            return (continuation, state.failure)
        }
        guard let (continuation, failure) = finished else { return }
        if let failure { continuation.resume(throwing: failure) } else { continuation.resume() }
    }
}

private let onDelivery: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = {
    _, message, _ in
    guard let message, let opaque = message.pointee._private else { return }
    let deliveries = Unmanaged<Deliveries>.fromOpaque(opaque).takeRetainedValue()
    deliveries.answer(message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError(message.pointee.err, context: "delivery"))
}

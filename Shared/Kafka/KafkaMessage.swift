import CRdKafka

/// A message copied out of librdkafka.
public struct KafkaMessage: Sendable {
    public let topic: String
    public let partition: Int32
    public let offset: Int64
    public let key: [UInt8]?
    public let value: [UInt8]

    public var keyText: String? { key.map { String(decoding: $0, as: UTF8.self) } }

    init(_ message: UnsafeMutablePointer<rd_kafka_message_t>) {
        let raw = message.pointee
        topic = String(cString: rd_kafka_topic_name(raw.rkt))
        partition = raw.partition
        offset = raw.offset
        key = raw.key.map { Array(UnsafeRawBufferPointer(start: $0, count: raw.key_len)) }
        value = raw.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: raw.len)) } ?? []
    }
}

/// Topic and partition, as a dictionary key.
struct TopicPartition: Hashable, Sendable {
    let topic: String
    let partition: Int32
}

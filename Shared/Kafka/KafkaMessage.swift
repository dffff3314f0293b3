import CRdKafka

/// A message copied out of librdkafka.
public struct KafkaMessage: Sendable {
    public let topic: String
    public let partition: Int32
    public let offset: Int64
    public let key: [UInt8]?
    public let value: [UInt8]
    /// The message's headers, in their order (most messages have none).
    public let headers: [KafkaHeader]

    public var keyText: String? { key.map { String(decoding: $0, as: UTF8.self) } }

    /// The value of the last header named `name`, as text.
    public func header(_ name: String) -> String? {
        headers.last { $0.name == name }?.value
    }

    public var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }

    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8], headers: [KafkaHeader] = []) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.headers = headers
    }

    init(_ message: UnsafeMutablePointer<rd_kafka_message_t>) {
        let raw = message.pointee
        topic = String(cString: rd_kafka_topic_name(raw.rkt))
        partition = raw.partition
        offset = raw.offset
        key = raw.key.map { Array(UnsafeRawBufferPointer(start: $0, count: raw.key_len)) }
        value = raw.payload.map { Array(UnsafeRawBufferPointer(start: $0, count: raw.len)) } ?? []
        headers = KafkaHeader.all(of: message)
    }
}

/// A Kafka message header; Writeback's own carry text.
public struct KafkaHeader: Sendable, Equatable {
    public var name: String
    public var value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }

    /// The headers of a message librdkafka holds (none is the common case, and costs one call).
    static func all(of message: UnsafeMutablePointer<rd_kafka_message_t>) -> [KafkaHeader] {
        var list: OpaquePointer?
        guard rd_kafka_message_headers(message, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { return [] }
        var headers: [KafkaHeader] = []
        var index = 0
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while rd_kafka_header_get_all(list, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
            if let name {
                let text = value.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: size), as: UTF8.self) } ?? ""
                headers.append(KafkaHeader(String(cString: name), text))
            }
            index += 1
        }
        return headers
    }
}

/// A message to publish: where, its key (one key's messages stay in order on one partition), its value
/// and headers.
public struct KafkaOutgoing: Sendable {
    public var topic: String
    public var key: String?
    public var value: [UInt8]
    public var headers: [KafkaHeader]

    public init(topic: String, key: String?, value: [UInt8], headers: [KafkaHeader] = []) {
        self.topic = topic
        self.key = key
        self.value = value
        self.headers = headers
    }
}

/// Topic and partition, as a dictionary key.
public struct TopicPartition: Hashable, Sendable, CustomStringConvertible {
    public let topic: String
    public let partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }
}

import CRdKafka

/// The librdkafka properties a client is created with.
public struct KafkaConfiguration: Sendable {
    /// `bootstrap.servers`: host:port pairs, comma-separated.
    public var brokers: String
    /// Any other librdkafka property by its own name, for every client (e.g. `security.protocol`).
    public var properties: [String: String]
    /// Properties for consumers only (e.g. `session.timeout.ms`, `fetch.wait.max.ms`).
    public var consumerProperties: [String: String]

    public init(brokers: String, properties: [String: String] = [:], consumerProperties: [String: String] = [:]) {
        self.brokers = brokers
        self.properties = properties
        self.consumerProperties = consumerProperties
    }

    /// Builds a conf handle; on failure frees it and throws.
    func makeConf(_ extra: [String: String], consumer: Bool) throws -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else { throw KafkaError(code: -1, message: "rd_kafka_conf_new failed") }
        var all = extra
        all["bootstrap.servers"] = brokers
        // Requests go out at once rather than waiting for the acknowledgement of the one before.
        all["socket.nagle.disable"] = all["socket.nagle.disable"] ?? "true"
        all.merge(properties) { _, configured in configured }
        if consumer { all.merge(consumerProperties) { _, configured in configured } }
        for (name, value) in all {
            var message = [CChar](repeating: 0, count: 512)
            if rd_kafka_conf_set(conf, name, value, &message, message.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw KafkaError(code: -1, message: "\(name): \(cText(message))")
            }
        }
        return conf
    }
}

/// Creates a client handle; librdkafka owns `conf` once this succeeds, and the caller still does if it
/// throws.
func makeKafkaHandle(_ type: rd_kafka_type_t, conf: OpaquePointer) throws -> OpaquePointer {
    var message = [CChar](repeating: 0, count: 512)
    guard let handle = rd_kafka_new(type, conf, &message, message.count) else {
        rd_kafka_conf_destroy(conf)
        throw KafkaError(code: -1, message: "rd_kafka_new: \(cText(message))")
    }
    return handle
}

/// The text of a NUL-terminated C buffer.
func cText(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

import CRdKafka

/// Every librdkafka failure, as one error type.
public struct KafkaError: Error, CustomStringConvertible, Sendable {
    /// librdkafka's rd_kafka_resp_err_t, or -1 for a failure outside it (configuration, creation).
    public let code: Int
    public let message: String

    public init(code: Int, message: String) {
        self.code = code
        self.message = message
    }

    init(_ error: rd_kafka_resp_err_t, context: String) {
        self.init(code: Int(error.rawValue), message: "\(context): \(String(cString: rd_kafka_err2str(error)))")
    }

    public var description: String { "kafka error \(code): \(message)" }
}

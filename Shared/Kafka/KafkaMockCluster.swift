import CRdKafka

/// librdkafka's mock cluster: a Kafka-protocol server on localhost that other processes reach over TCP,
/// for running the stack without a broker. It lives as long as this object.
public final class KafkaMockCluster: @unchecked Sendable {
    // Stored-property order: the cluster is destroyed before the handle that hosts it (see deinit).
    private let cluster: OpaquePointer
    private let handle: OpaquePointer
    /// The bootstrap servers to give every client.
    public let bootstrapServers: String

    /// `@unchecked Sendable`: after creation the object is only read (the mock runs its own threads).
    public init(brokers: Int = 1, topics: [(name: String, partitions: Int)]) throws {
        guard let conf = rd_kafka_conf_new() else { throw KafkaError(code: -1, message: "rd_kafka_conf_new failed") }
        // The mock's brokers answer on sockets made with this handle's settings. With Nagle's algorithm on,
        // the answers to a client's requests for several partitions (a producer sends one per partition)
        // wait, after the first, for the client's delayed acknowledgement: about 40 ms each time.
        var message = [CChar](repeating: 0, count: 512)
        guard rd_kafka_conf_set(conf, "socket.nagle.disable", "true", &message, message.count) == RD_KAFKA_CONF_OK else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(code: -1, message: "socket.nagle.disable: \(cText(message))")
        }
        handle = try makeKafkaHandle(RD_KAFKA_PRODUCER, conf: conf)
        guard let cluster = rd_kafka_mock_cluster_new(handle, Int32(brokers)) else {
            rd_kafka_destroy(handle)
            throw KafkaError(code: -1, message: "could not start the mock cluster")
        }
        self.cluster = cluster
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
        // Every stored property is set: on failure deinit destroys the cluster and the handle.
        for topic in topics {
            let error = rd_kafka_mock_topic_create(cluster, topic.name, Int32(topic.partitions), 1)
            guard error == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(error, context: "create topic \(topic.name)") }
        }
    }

    /// Answers the next `errors.count` requests of API `apiKey` (e.g. 12, Heartbeat) with these errors,
    /// in order, to make a client meet a broker's refusals.
    public func failRequests(apiKey: Int16, with errors: [rd_kafka_resp_err_t]) {
        errors.withUnsafeBufferPointer { rd_kafka_mock_push_request_errors_array(cluster, apiKey, errors.count, $0.baseAddress) }
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster)
        rd_kafka_destroy(handle)
    }
}

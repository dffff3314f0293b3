import Kafka

public struct WriterConfiguration: Sendable {
    public var kafka: KafkaConfiguration
    public var controlDatabaseURL: String
    /// Consumer group of all writer instances. Default `writeback-writer`.
    public var groupID = "writeback-writer"
    /// Records written in parallel per instance. Default 32.
    public var lanes = 32
    /// Seconds a provider call may take. Default 30.
    public var providerTimeout: Double = 30
    /// Provider calls per write before it is dead-lettered, for passing failures. Default 4.
    public var maxAttempts = 4
    /// First wait between tries, in seconds; doubles each time, half of it random. Default 0.5.
    public var retryBackoff: Double = 0.5
    /// Longest wait between tries, in seconds. Default 30.
    public var maxRetryBackoff: Double = 30
    /// HTTP connections to providers. Default 32.
    public var httpConcurrency = 32
    /// How long an installation's provider address and token are reused before being read again.
    /// Default 5 s.
    public var installationCacheSeconds: Double = 5
    /// Control database connections. Default 8.
    public var databaseConnections = 8

    public init(kafka: KafkaConfiguration, controlDatabaseURL: String) {
        self.kafka = kafka
        self.controlDatabaseURL = controlDatabaseURL
    }
}

import Foundation
import Kafka

public struct APIConfiguration: Sendable {
    /// Listen address. Default 127.0.0.1:8080.
    public var host = "127.0.0.1"
    public var port = 8080
    public var kafka: KafkaConfiguration
    public var controlDatabaseURL: String
    /// How long a synchronous write waits before answering 202 with its operation id. Default 30 s.
    public var syncTimeout: Double = 30
    /// Largest request body accepted, in bytes. Default 10 MiB.
    public var maxBodyBytes = 10 << 20
    /// How long API keys, integrations and installations read from the control database are reused.
    /// A change to them takes effect within this time. Default 5 s; 0 reads them on every request.
    public var controlCacheSeconds: Double = 5
    /// Control database connections. Default 8.
    public var databaseConnections = 8
    /// This instance's id, carried by its synchronous requests. Default: a new UUID per start.
    public var instanceId = UUID().uuidString.lowercased()

    public init(kafka: KafkaConfiguration, controlDatabaseURL: String) {
        self.kafka = kafka
        self.controlDatabaseURL = controlDatabaseURL
    }
}

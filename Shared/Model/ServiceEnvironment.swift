import Foundation

/// The environment variables every service reads, with their defaults (listed in the README).
public struct ServiceEnvironment: Sendable {
    public let values: [String: String]

    public init(_ values: [String: String] = ProcessInfo.processInfo.environment) {
        self.values = values
    }

    public func string(_ name: String, default value: String) -> String {
        values[name].flatMap { $0.isEmpty ? nil : $0 } ?? value
    }

    public func int(_ name: String, default value: Int) -> Int {
        values[name].flatMap(Int.init) ?? value
    }

    public func double(_ name: String, default value: Double) -> Double {
        values[name].flatMap(Double.init) ?? value
    }

    /// `KAFKA_BROKERS`: bootstrap servers. Default `127.0.0.1:9092`.
    public var kafkaBrokers: String { string("KAFKA_BROKERS", default: "127.0.0.1:9092") }

    /// librdkafka properties for every client: any `KAFKA_PROPERTY_<name with _ for .>` (e.g.
    /// `KAFKA_PROPERTY_SECURITY_PROTOCOL=ssl`).
    public var kafkaProperties: [String: String] {
        var properties: [String: String] = [:]
        for (name, value) in values where name.hasPrefix("KAFKA_PROPERTY_") {
            properties[name.dropFirst("KAFKA_PROPERTY_".count).lowercased().replacingOccurrences(of: "_", with: ".")] = value
        }
        return properties
    }

    /// librdkafka properties for consumers: `KAFKA_SESSION_TIMEOUT_MS` (default 10000) and
    /// `KAFKA_FETCH_WAIT_MAX_MS` (default 100; a broker answers a fetch as soon as data arrives, but
    /// librdkafka's mock cluster holds every fetch for the whole wait, so the local stack sets 2).
    public var kafkaConsumerProperties: [String: String] {
        ["session.timeout.ms": string("KAFKA_SESSION_TIMEOUT_MS", default: "10000"),
         "fetch.wait.max.ms": string("KAFKA_FETCH_WAIT_MAX_MS", default: "100"),
         "heartbeat.interval.ms": "1000"]
    }

    /// `CONTROL_DATABASE_URL`: projects, installations, operations. Default `postgres:///writeback`.
    public var controlDatabaseURL: String { string("CONTROL_DATABASE_URL", default: "postgres:///writeback") }

    /// `DESTINATION_DATABASE_URL`: the backend's copy of written records. Default
    /// `postgres:///writeback_destination`.
    public var destinationDatabaseURL: String {
        string("DESTINATION_DATABASE_URL", default: "postgres:///writeback_destination")
    }

    /// `LOG_LEVEL`: trace, debug, info (default), notice, warning, error, critical.
    public var logLevel: String { string("LOG_LEVEL", default: "info") }
}

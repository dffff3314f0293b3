import Configuration
import Foundation
import Synchronization

/// The environment variables every service reads, with their defaults (listed in docs/configuration.md),
/// read once per process through swift-configuration. A variable set to a value its reader cannot use
/// is kept as a `ConfigurationError` naming it (`problems`), and the service does not start
/// (`runService` reports every one).
public struct ServiceEnvironment: Sendable {
    public let values: [String: String]
    private let reader: ConfigReader
    private let found = Problems()

    public init(_ values: [String: String] = ProcessInfo.processInfo.environment) {
        self.values = values
        reader = ConfigReader(provider: EnvironmentVariablesProvider(environmentVariables: values))
    }

    /// Every variable read so far whose value could not be used.
    public var problems: [ConfigurationError] { found.list.withLock { $0 } }

    private final class Problems: Sendable {
        let list = Mutex<[ConfigurationError]>([])
    }

    /// The default, remembering why the variable's value was not taken.
    private func refused<T>(_ name: String, _ text: String, expected: String, _ value: T) -> T {
        found.list.withLock { $0.append(ConfigurationError(variable: name, value: text, expected: expected)) }
        return value
    }

    /// `API_PORT` → the key `api.port`, which the environment provider reads as `API_PORT`.
    private static func key(_ name: String) -> ConfigKey {
        ConfigKey(name.lowercased().split(separator: "_").map(String.init))
    }

    /// The variable's text, or nil when it is unset or empty.
    public func text(_ name: String) -> String? {
        reader.string(forKey: Self.key(name)).flatMap { $0.isEmpty ? nil : $0 }
    }

    public func string(_ name: String, default value: String) -> String {
        text(name) ?? value
    }

    public func int(_ name: String, default value: Int) -> Int {
        guard let text = text(name) else { return value }
        guard let number = Int(text.trimmingCharacters(in: .whitespaces)) else {
            return refused(name, text, expected: "a whole number", value)
        }
        return number
    }

    public func double(_ name: String, default value: Double) -> Double {
        guard let text = text(name) else { return value }
        guard let number = Double(text.trimmingCharacters(in: .whitespaces)), number.isFinite else {
            return refused(name, text, expected: "a number", value)
        }
        return number
    }

    /// The variable read by `parse`, or the default when it is unset; a value `parse` refuses (nil) is a
    /// problem, as for the other readers.
    public func parsed<T>(_ name: String, default value: T, expected: String, _ parse: (String) -> T?) -> T {
        guard let text = text(name) else { return value }
        guard let parsed = parse(text) else { return refused(name, text, expected: expected, value) }
        return parsed
    }

    /// One of `allowed`, or the default.
    public func choice(_ name: String, default value: String, allowed: [String]) -> String {
        guard let text = text(name) else { return value }
        guard allowed.contains(text) else { return refused(name, text, expected: "one of " + allowed.joined(separator: ", "), value) }
        return text
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
    public var logLevel: String {
        choice("LOG_LEVEL", default: "info", allowed: ["trace", "debug", "info", "notice", "warning", "error", "critical"])
    }
}

/// A variable whose value cannot be used: the service does not start.
public struct ConfigurationError: Error, CustomStringConvertible, Sendable {
    public var variable: String
    public var value: String
    public var expected: String

    public var description: String { "\(variable) must be \(expected), not '\(value)'" }
}

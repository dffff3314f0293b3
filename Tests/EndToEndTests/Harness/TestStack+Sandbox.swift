import Foundation
import Shared
import Testing

/// What a test does to the simulated providers and to Kafka directly.
extension TestStack {
    /// The records a SOQL query finds at the simulated Salesforce.
    func salesforceQuery(_ soql: String) async throws -> [JSONValue] {
        let query = soql.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? soql
        return try await call("GET", "\(sandboxURL)/services/data/v60.0/query?q=\(query)",
                              headers: [("Authorization", "Bearer sandbox-salesforce-token")]).body["records"]?.arrayValue ?? []
    }

    /// Sets an org's limits, latency or declared objects (`PUT /_sandbox/orgs/{provider}/{org}`).
    func setOrg(_ provider: String, _ org: String, _ settings: JSONValue) async throws {
        let answer = try await call("PUT", "\(sandboxURL)/_sandbox/orgs/\(provider)/\(org)", body: try JSONCoding.encodeString(settings))
        try #require(answer.status == 200, "\(answer.body)")
    }

    /// Queues faults for the next write calls of a provider (of one org, or of any).
    func queueFaults(_ provider: String, org: String? = nil, _ faults: [JSONValue]) async throws {
        var body: [String: JSONValue] = ["provider": .string(provider), "faults": .array(faults)]
        if let org { body["org"] = .string(org) }
        let answer = try await call("PUT", "\(sandboxURL)/_sandbox/faults", body: try JSONCoding.encodeString(body))
        try #require(answer.status == 200, "\(answer.body)")
    }

    func clearFaults() async throws {
        _ = try await call("DELETE", "\(sandboxURL)/_sandbox/faults")
    }

    /// Publishes one message to a topic with kcat, as a client that is not ours would.
    func kcatProduce(_ topic: String, key: String, value: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/kcat")
        process.arguments = ["-b", kafkaBrokers, "-P", "-t", topic, "-k", key]
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        input.fileHandleForWriting.write(Data(value.utf8))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "kcat could not publish to \(topic)")
    }

    /// The provider calls whose logged body mentions `marker` (its `LastName`, `name`, …).
    func providerCalls(mentioning marker: String) async throws -> [JSONValue] {
        try await providerCalls().filter { ((try? JSONCoding.encodeString($0["body"] ?? .null)) ?? "").contains(marker) }
    }

    /// How long a call takes, and its answer.
    func timed(_ body: () async throws -> Answer) async rethrows -> (Answer, Duration) {
        let started = ContinuousClock.now
        let answer = try await body()
        return (answer, ContinuousClock.now - started)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

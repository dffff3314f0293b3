import Foundation
import Shared
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A webhook endpoint as a process of its own (`Tests/receiver/webhook_receiver.py`): records what it
/// is sent, checks each signature with the Standard Webhooks reference verifier, and answers as a test
/// tells it per path. It can be killed and started again on the same port, keeping what it received.
final class WebhookReceiver: @unchecked Sendable {
    let stack: TestStack
    let folder: String
    private(set) var port = 0
    private var process: Process?

    init(stack: TestStack, name: String = "receiver") throws {
        self.stack = stack
        folder = "\(stack.logDirectory)/\(name)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    var url: String { "http://127.0.0.1:\(port)" }

    /// Starts it (again, on the port it had).
    func start() async throws {
        guard let python = ProcessInfo.processInfo.environment["WRITEBACK_TEST_PYTHON"] else {
            throw HarnessError("run the tests with scripts/test, which installs the Standard Webhooks verifier and sets WRITEBACK_TEST_PYTHON")
        }
        try? FileManager.default.removeItem(atPath: "\(folder)/port")
        if port == 0 { port = try freePort() }
        let wanted = port
        port = 0
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        let script = FileManager.default.currentDirectoryPath + "/Tests/receiver/webhook_receiver.py"
        process.arguments = [script, "--state", folder, "--port", String(wanted)]
        let log = "\(folder)/receiver.log"
        let handle = try appendingLog(log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        self.process = process
        for _ in 0..<200 {
            if let text = try? String(contentsOfFile: "\(folder)/port", encoding: .utf8), let number = Int(text) {
                port = number
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard port != 0 else { throw HarnessError("the webhook receiver did not start; see \(log)") }
        try await stack.waitUntilReachable("\(url)/_admin/health")
    }

    /// Kills it: connections to its port are refused until it starts again.
    func kill() {
        guard let process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// How `path` answers from now: the `statuses` in turn, then `status`, after `delay` seconds.
    func configure(_ path: String, secret: String?, statuses: [Int] = [], status: Int = 200, delay: Double = 0,
                   location: String? = nil) async throws {
        var config: [String: JSONValue] = [
            "path": .string(path), "statuses": .array(statuses.map { .number(Double($0)) }), "status": .number(Double(status)),
            "delay": .number(delay),
        ]
        if let secret { config["secret"] = .string(secret) }
        if let location { config["location"] = .string(location) }
        let answer = try await stack.call("PUT", "\(url)/_admin/paths", body: try JSONCoding.encodeString(JSONValue.object(config)))
        try #require(answer.status == 200, "\(answer.body)")
    }

    /// Every request `path` received, oldest first: `{path, headers, body, verified, error, answered, time}`.
    func received(_ path: String) async throws -> [JSONValue] {
        let answer = try await stack.call("GET", "\(url)/_admin/received?path=\(path)")
        return answer.body.arrayValue ?? []
    }

    func stop() { kill() }

    deinit { kill() }
}

extension JSONValue {
    /// A received request's body, read as JSON.
    var receivedEvent: JSONValue? {
        self["body"]?.stringValue.flatMap { try? JSONCoding.decode(JSONValue.self, from: Array($0.utf8)) }
    }
}

/// Waits until `condition` holds, up to `timeout`; answers whether it did.
func eventually(_ timeout: Duration = .seconds(30), every interval: Duration = .milliseconds(100),
                _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: interval)
    }
    return try await condition()
}

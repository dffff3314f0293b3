import Foundation
import HTTPClient
import Postgres
import Shared
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A whole Writeback stack for a test suite, as separate processes: the mock Kafka cluster host, the
/// sandbox, the api, writer, cache-invalidator, operations and notifier, on databases of their own in the test
/// PostgreSQL server that scripts/test started.
final class TestStack: @unchecked Sendable {
    @TaskLocal static var current: TestStack?

    let name: String
    let bin: String
    let logDirectory: String
    let kafkaBrokers: String
    let apiURL: String
    let sandboxURL: String
    let controlDatabase: String
    let destinationDatabase: String
    let http = HTTPClient(configuration: .init(concurrency: 32), name: "test-http")
    private let environment: [String: String]
    private let lock = NSLock()
    private var processes: [String: Process] = [:]
    private var metricsPorts: [String: Int] = [:]

    static let apiKey = "test-api-key"
    /// The key the stack seals stored credentials with.
    let encryptionKey = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
    static let groupRef = "test-group"
    static let project = "test-project"

    /// The stack of the running suite.
    static var stack: TestStack {
        get throws { try #require(current, "the suite needs the .stack trait") }
    }

    private init(name: String, overrides: [String: String]) throws {
        let env = ProcessInfo.processInfo.environment
        guard let postgres = env["WRITEBACK_TEST_POSTGRES"], let bin = env["WRITEBACK_BIN"] else {
            throw HarnessError("run the tests with scripts/test, which starts PostgreSQL and sets WRITEBACK_TEST_POSTGRES and WRITEBACK_BIN")
        }
        self.name = name
        self.bin = bin
        let unique = "\(name)_\(UInt32.random(in: 0...UInt32.max))"
        logDirectory = (env["WRITEBACK_TEST_LOGS"] ?? NSTemporaryDirectory()) + "/\(unique)"
        try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
        controlDatabase = "\(postgres) dbname=ctl_\(unique)"
        destinationDatabase = "\(postgres) dbname=dst_\(unique)"
        let admin = try PostgresConnection.connect("\(postgres) dbname=postgres")
        try admin.exec("CREATE DATABASE ctl_\(unique)")
        try admin.exec("CREATE DATABASE dst_\(unique)")

        let bootstrapFile = "\(logDirectory)/kafka.bootstrap"
        let apiPort = try freePort()
        let sandboxPort = try freePort()
        apiURL = "http://127.0.0.1:\(apiPort)"
        sandboxURL = "http://127.0.0.1:\(sandboxPort)"
        var base = env
        base["LOG_LEVEL"] = "info"
        base["KAFKA_SESSION_TIMEOUT_MS"] = "6000"
        base["KAFKA_FETCH_WAIT_MAX_MS"] = "2"  // the mock cluster holds fetches for the whole wait
        base["CONTROL_DATABASE_URL"] = controlDatabase
        base["DESTINATION_DATABASE_URL"] = destinationDatabase
        base["API_PORT"] = String(apiPort)
        base["SANDBOX_PORT"] = String(sandboxPort)
        base["SANDBOX_URL"] = sandboxURL
        base["SEED_PROJECT"] = Self.project
        base["SEED_API_KEY"] = Self.apiKey
        base["SEED_GROUP_REF"] = Self.groupRef
        base["WRITEBACK_ENCRYPTION_KEY"] = encryptionKey
        base["SALESFORCE_LOGIN_URL"] = sandboxURL
        base["HUBSPOT_API_URL"] = sandboxURL
        base["HUBSPOT_AUTHORIZE_URL"] = "\(sandboxURL)/oauth/authorize"
        base["PIPEDRIVE_OAUTH_URL"] = "\(sandboxURL)/pipedrive-oauth"
        base["PIPEDRIVE_API_URL"] = sandboxURL
        base["API_PUBLIC_URL"] = apiURL
        base["WRITER_RETRY_BACKOFF_SECONDS"] = "0.2"
        base.merge(overrides) { _, override in override }

        try Self.launch("kafka", bin: bin, arguments: ["kafka", "--bootstrap-file", bootstrapFile], executable: "writeback-dev",
                        environment: base, logDirectory: logDirectory, into: &processes)
        var brokers = ""
        for _ in 0..<200 {
            if let text = try? String(contentsOfFile: bootstrapFile, encoding: .utf8), !text.isEmpty {
                brokers = text
                break
            }
            usleep(50_000)
        }
        guard !brokers.isEmpty else { throw HarnessError("the mock Kafka cluster did not start") }
        kafkaBrokers = brokers
        base["KAFKA_BROKERS"] = brokers
        environment = base
    }

    /// Starts a stack and seeds it; stops it again if any part fails to come up.
    static func start(name: String, overrides: [String: String] = [:]) async throws -> TestStack {
        let stack = try TestStack(name: name, overrides: overrides)
        do {
            try stack.start("sandbox")
            let seed = try stack.run("writeback-dev", ["seed"])
            guard seed == 0 else { throw HarnessError("seeding failed; see \(stack.logDirectory)/seed.log") }
            for service in ["api", "writer", "cache-invalidator", "operations", "notifier"] { try stack.start(service) }
            try await stack.waitUntilReachable("\(stack.apiURL)/health")
            try await stack.waitUntilReachable("\(stack.sandboxURL)/_sandbox/health")
            // The demo data is made as a backend team makes it: the CLI, through the api.
            guard try stack.runScript("scripts/demo-setup") == 0 else {
                throw HarnessError("the demo setup failed; see \(stack.logDirectory)/demo-setup.log")
            }
            return stack
        } catch {
            stack.stop()
            throw error
        }
    }

    /// Starts one of the stack's processes (again): sandbox, api, writer, cache-invalidator, operations, notifier.
    /// `instance` names a further instance of the same service (e.g. a second writer).
    func start(_ service: String, instance: String? = nil, environment overrides: [String: String] = [:]) throws {
        let name = instance ?? service
        let port = try freePort()
        var environment = self.environment.merging(overrides) { _, override in override }
        environment["METRICS_PORT"] = String(port)
        try lock.withLock {
            try Self.launch(name, bin: bin, arguments: [], executable: "writeback-\(service)",
                            environment: environment, logDirectory: logDirectory, into: &processes)
            metricsPorts[name] = port
        }
    }

    /// What a process serves at `GET /metrics`.
    func metrics(_ name: String) async throws -> String {
        let port = try #require(lock.withLock { metricsPorts[name] })
        return try await http.execute(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(port)/metrics")).text
    }

    /// Sends a signal to a process of the stack and waits for it to end.
    func kill(_ service: String, signal: Int32 = SIGKILL) {
        let process = lock.withLock { processes.removeValue(forKey: service) }
        guard let process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, signal)
        // A process left stopped (SIGSTOP) acts on the signal once it goes on.
        Glibc.kill(process.processIdentifier, SIGCONT)
        process.waitUntilExit()
    }

    /// Sends a signal to a running process of the stack and leaves it be (SIGSTOP freezes it as a
    /// starved or suspended machine would, SIGCONT lets it go on).
    func signal(_ service: String, _ signal: Int32) {
        guard let process = lock.withLock({ processes[service] }), process.isRunning else { return }
        Glibc.kill(process.processIdentifier, signal)
    }

    /// Restarts the PostgreSQL server every test shares (`pg_ctl restart -m fast`: open connections are
    /// cut, and the server is down for about a second), as `scripts/test` started it.
    func restartPostgres() throws {
        let env = ProcessInfo.processInfo.environment
        guard let pgCtl = env["WRITEBACK_TEST_PG_CTL"], let folder = env["WRITEBACK_TEST_POSTGRES_DIR"] else {
            throw HarnessError("run the tests with scripts/test, which sets WRITEBACK_TEST_PG_CTL and WRITEBACK_TEST_POSTGRES_DIR")
        }
        let restart = [pgCtl, "-D", "\(folder)/data", "-l", "\(folder)/server.log", "-m", "fast", "-w", "-t", "60", "restart"]
        // The server runs as `postgres` when the tests run as root (initdb refuses root). Spawned and
        // waited for directly: Foundation's `Process` did not see `runuser` end.
        let command = getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] + restart : restart
        let arguments = command.map { strdup($0) }
        defer { arguments.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, command[0], nil, nil, arguments + [nil], environ)
        guard spawned == 0 else { throw HarnessError("could not run pg_ctl: \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        guard status == 0 else { throw HarnessError("pg_ctl restart failed (wait status \(status))") }
    }

    func stop() {
        let names = lock.withLock { Array(processes.keys) }
        for service in names where service != "kafka" { kill(service, signal: SIGTERM) }
        kill("kafka", signal: SIGTERM)
        http.shutdown()
    }

    /// Runs one of the stack's binaries to its end; answers its exit status and what it printed.
    func output(_ executable: String, _ arguments: [String], environment overrides: [String: String] = [:]) throws
        -> (status: Int32, text: String)
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "\(bin)/\(executable)")
        process.arguments = arguments
        process.environment = environment.merging(overrides) { _, override in override }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Runs a command to its end with the stack's environment; its output goes to the log folder.
    @discardableResult
    func run(_ executable: String, _ arguments: [String]) throws -> Int32 {
        var finished: [String: Process] = [:]
        let name = arguments.first ?? executable
        try Self.launch(name, bin: bin, arguments: arguments, executable: executable, environment: environment,
                        logDirectory: logDirectory, into: &finished)
        finished[name]!.waitUntilExit()
        return finished[name]!.terminationStatus
    }

    /// Runs one of the repository's scripts to its end with the stack's environment (binaries from
    /// WRITEBACK_BIN); its output goes to the log folder.
    func runScript(_ path: String, _ arguments: [String] = []) throws -> Int32 {
        var environment = self.environment
        environment["WRITEBACK_BIN"] = bin
        return try runLogged("/bin/bash", [FileManager.default.currentDirectoryPath + "/" + path] + arguments, environment: environment,
                             log: "\((path as NSString).lastPathComponent).log").status
    }

    /// Runs a program to its end in the repository's folder; what it prints goes to `log` in the log folder
    /// and is answered with its exit status.
    func runLogged(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, log: String) throws
        -> (status: Int32, text: String)
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let logPath = "\(logDirectory)/\(log)"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        try handle.close()
        return (process.terminationStatus, (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")
    }

    private static func launch(
        _ name: String, bin: String, arguments: [String], executable: String, environment: [String: String],
        logDirectory: String, into processes: inout [String: Process]
    ) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "\(bin)/\(executable)")
        process.arguments = arguments
        process.environment = environment
        let log = try appendingLog("\(logDirectory)/\(name).log")
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        processes[name] = process
    }

    func waitUntilReachable(_ url: String) async throws {
        for _ in 0..<300 {
            if let response = try? await http.execute(HTTPRequest(method: "GET", url: url, timeout: 2)), response.status == 200 {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw HarnessError("\(url) did not answer; logs in \(logDirectory)")
    }
}

/// A log file to append to (made when missing), for a process's output.
func appendingLog(_ path: String) throws -> FileHandle {
    if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
    let log = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
    log.seekToEndOfFile()
    return log
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A TCP port nobody listens on now, chosen below the kernel's ephemeral range: a port handed out
/// there (port 0 binds of the mock Kafka cluster, outgoing connections) could be taken before the
/// process it is meant for binds it.
func freePort() throws -> Int {
    let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))?
        .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) } ?? []
    let ceiling = max(11_000, (range.first ?? 32_768) - 1)
    for _ in 0..<200 {
        let port = Int.random(in: 10_000...ceiling)
        if bindable(port) { return port }
    }
    throw HarnessError("no free port below \(ceiling + 1)")
}

private func bindable(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

/// Runs a suite with a stack of its own, started before its first test and stopped after its last.
struct StackTrait: SuiteTrait, TestScoping {
    let name: String
    /// Environment variables of the stack's processes that differ from the defaults.
    let overrides: [String: String]
    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void)
        async throws
    {
        let stack = try await TestStack.start(name: name, overrides: overrides)
        defer { stack.stop() }
        try await TestStack.$current.withValue(stack) { try await function() }
    }
}

extension Trait where Self == StackTrait {
    static func stack(_ name: String, environment: [String: String] = [:]) -> StackTrait {
        StackTrait(name: name, overrides: environment)
    }
}

/// The suites whose tests change nothing a later suite relies on (no revoked tokens, no stopped
/// services, default settings), nested here (`extension OneStack`), run one after another on one stack.
@Suite("On one stack", .serialized, .stack("shared"))
struct OneStack {}

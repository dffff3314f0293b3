import Foundation
import Testing

/// Each executable reads its configuration once at start: a variable set to a value it cannot use stops
/// the start with a message naming the variable, before anything is opened.
@Suite("Configuration")
struct ConfigurationTests {
    /// Runs an executable with `environment` and answers its exit status and standard error.
    func start(_ executable: String, _ environment: [String: String]) throws -> (status: Int32, error: String) {
        let bin = ProcessInfo.processInfo.environment["WRITEBACK_BIN"] ?? ".build/debug"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "\(bin)/\(executable)")
        process.environment = environment.merging(["PATH": "/usr/bin:/bin"]) { given, _ in given }
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    @Test("a wrong value stops each service's start with a message naming the variable, and no crash report",
          arguments: [
              ("writeback-api", ["API_PORT": "eighty", "API_SYNC_TIMEOUT_SECONDS": "soon"], ["API_PORT", "API_SYNC_TIMEOUT_SECONDS"]),
              ("writeback-writer", ["WRITER_MAX_IN_FLIGHT": "many"], ["WRITER_MAX_IN_FLIGHT"]),
              ("writeback-cache-invalidator", ["LOG_LEVEL": "loud"], ["LOG_LEVEL"]),
              ("writeback-operations", ["SHUTDOWN_GRACE_SECONDS": "a while"], ["SHUTDOWN_GRACE_SECONDS"]),
              ("writeback-sandbox", ["SANDBOX_PORT": "http"], ["SANDBOX_PORT"]),
          ])
    func wrongValues(_ executable: String, _ environment: [String: String], _ named: [String]) throws {
        var environment = environment
        environment["WRITEBACK_ENCRYPTION_KEY"] = Data((0..<32).map { UInt8($0) }).base64EncodedString()
        let (status, error) = try start(executable, environment)
        #expect(status == 78, "\(executable) exited \(status): \(error)")
        for variable in named { #expect(error.contains("\(executable): \(variable) must be"), "\(error)") }
        #expect(!error.contains("Fatal error") && !error.contains("Backtrac"), "\(error)")
    }

    @Test("a missing encryption key stops the api's start, saying how to make one")
    func missingKey() throws {
        let (status, error) = try start("writeback-api", [:])
        #expect(status == 78)
        #expect(error.contains("WRITEBACK_ENCRYPTION_KEY is not set") && error.contains("openssl rand -base64 32"), "\(error)")
        #expect(!error.contains("Fatal error"), "\(error)")
    }
}

import Foundation
import Shared
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The README's command that runs the product: it comes up, the curl it prints succeeds, Ctrl-C stops it.
@Suite("Local stack command")
struct RunStackTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    @Test("scripts/run-stack starts everything, its printed curl writes a contact, and Ctrl-C stops it all")
    func runStack() async throws {
        let environment = ProcessInfo.processInfo.environment
        let logs = (environment["WRITEBACK_TEST_LOGS"] ?? NSTemporaryDirectory()) + "/run-stack"
        try? FileManager.default.removeItem(atPath: logs)
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let apiPort = try freePort()
        let script = Process()
        // As from a terminal: SIGINT not ignored (a shell in the background would hand it down ignored,
        // and bash cannot trap a signal ignored on entry).
        script.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        script.arguments = ["--default-signal=INT", "bash", Self.repository.appendingPathComponent("scripts/run-stack").path]
        var scriptEnvironment = environment
        scriptEnvironment["API_PORT"] = String(apiPort)
        scriptEnvironment["SANDBOX_PORT"] = String(try freePort())
        scriptEnvironment["WRITEBACK_RUN_DIR"] = logs
        scriptEnvironment["METRICS_PORT"] = "0"  // the default ports may be taken by a developer's own stack
        script.environment = scriptEnvironment
        let outputPath = logs + ".out"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        script.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        script.standardError = script.standardOutput
        try script.run()
        defer { if script.isRunning { kill(script.processIdentifier, SIGKILL) } }

        var output = ""
        for _ in 0..<600 where !output.contains("Ctrl-C stops everything") && script.isRunning {
            try await Task.sleep(for: .milliseconds(200))
            output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        }
        try #require(output.contains("Ctrl-C stops everything"), "run-stack did not come up:\n\(output)")

        // The printed curl, exactly as printed (continuation lines and all), run by a shell.
        let lines = output.components(separatedBy: "\n")
        let start = try #require(lines.firstIndex { $0.hasPrefix("curl ") }, "no curl printed:\n\(output)")
        let end = try #require(lines[start...].firstIndex { !$0.hasSuffix("\\") })
        let curl = lines[start...end].joined(separator: "\n")
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/bash")
        shell.arguments = ["-c", curl]
        let pipe = Pipe()
        shell.standardOutput = pipe
        try shell.run()
        let answer = pipe.fileHandleForReading.readDataToEndOfFile()
        shell.waitUntilExit()
        let json = try JSONCoding.decode(JSONValue.self, from: Array(answer))
        #expect(json["result"]?["success"] == true, "\(String(decoding: answer, as: UTF8.self))")
        #expect(json["result"]?["recordId"]?.stringValue?.hasPrefix("003") == true)

        script.interrupt()  // Ctrl-C
        for _ in 0..<150 where script.isRunning { try await Task.sleep(for: .milliseconds(200)) }
        #expect(!script.isRunning, "run-stack did not stop on Ctrl-C")
        #expect(!FileManager.default.fileExists(atPath: "\(logs)/pg/data/postmaster.pid"), "PostgreSQL still runs")
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        probe.arguments = ["-s", "-o", "/dev/null", "http://127.0.0.1:\(apiPort)/health"]
        try probe.run()
        probe.waitUntilExit()
        #expect(probe.terminationStatus != 0, "the api still answers after Ctrl-C")
    }
}

import Foundation
import HTTPClient
import Testing

/// The client every provider call goes through (its transfers against a live server are exercised by the
/// end-to-end tests).
@Suite("HTTP client")
struct HTTPClientTests {
    /// A loopback port nothing listens on.
    static func closedPort() throws -> Int { try port(listening: false).port }

    /// A loopback port that takes connections (the kernel completes them) but never answers; with its
    /// socket, to close.
    static func silentPort() throws -> (port: Int, socket: Int32) { try port(listening: true) }

    private static func port(listening: Bool) throws -> (port: Int, socket: Int32) {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var keep = false
        defer { if !keep { close(socket) } }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                guard bind(socket, socketAddress, length) == 0, getsockname(socket, socketAddress, &length) == 0 else {
                    throw POSIXError(.EADDRINUSE)
                }
            }
        }
        if listening {
            guard listen(socket, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
            keep = true
        }
        return (Int(UInt16(bigEndian: address.sin_port)), socket)
    }

    @Test("a request nobody answers times out at its limit while other requests go on")
    func timeout() async throws {
        let client = HTTPClient(configuration: .init(concurrency: 4), name: "timeout-test")
        defer { client.shutdown() }
        let silent = try Self.silentPort()
        defer { close(silent.socket) }
        let refusedURL = "http://127.0.0.1:\(try Self.closedPort())/"
        let started = ContinuousClock.now
        async let hanging: HTTPClientError? = {
            do {
                _ = try await client.execute(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(silent.port)/", timeout: 1))
                return nil
            } catch {
                return error as? HTTPClientError
            }
        }()
        try await Task.sleep(for: .milliseconds(100))
        // Another request is not held up by the one waiting for an answer.
        await #expect(throws: HTTPClientError.self) {
            try await client.execute(HTTPRequest(method: "GET", url: refusedURL, timeout: 5))
        }
        #expect(ContinuousClock.now - started < .milliseconds(900), "a refused request waited for the silent one")
        let error = await hanging
        #expect(error?.isTimeout == true, "\(String(describing: error))")
        #expect(error?.notSent == false, "the request reached a server: it may have been applied")
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(900) && elapsed < .seconds(4), "timed out after \(elapsed)")
    }

    @Test("requests to a refused port fail as not sent, each on its own, however many run at once")
    func refused() async throws {
        let client = HTTPClient(configuration: .init(concurrency: 4), name: "refused-test")
        defer { client.shutdown() }
        let url = "http://127.0.0.1:\(try Self.closedPort())/"
        let errors = await withTaskGroup(of: HTTPClientError?.self) { group in
            for _ in 0..<20 {
                group.addTask {
                    do {
                        _ = try await client.execute(HTTPRequest(method: "POST", url: url, body: Array("{}".utf8), timeout: 5))
                        return nil
                    } catch {
                        return error as? HTTPClientError
                    }
                }
            }
            return await group.reduce(into: [HTTPClientError?]()) { $0.append($1) }
        }
        #expect(errors.count == 20)
        #expect(errors.allSatisfy { $0?.notSent == true }, "\(errors)")
    }

    @Test("after shutdown a request fails at once as not sent")
    func afterShutdown() async throws {
        let client = HTTPClient(configuration: .init(concurrency: 2), name: "shutdown-test")
        client.shutdown()
        let error = await #expect(throws: HTTPClientError.self) {
            try await client.execute(HTTPRequest(method: "GET", url: "http://127.0.0.1:1/", timeout: 5))
        }
        #expect(error?.notSent == true)
    }
}

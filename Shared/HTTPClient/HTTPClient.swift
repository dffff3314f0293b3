import CCurl
import ThreadPool

/// An HTTP/1.1 client on libcurl. Each of its threads owns one easy handle and so one set of kept-alive
/// connections; `concurrency` bounds the requests in flight.
public final class HTTPClient: Sendable {
    private let workers: ThreadConfinedPool<CurlHandle>

    public struct Configuration: Sendable {
        /// Requests in flight at once (threads, each with its own handle). Default 16.
        public var concurrency: Int = 16
        /// Seconds to wait for a TCP connection. Default 5.
        public var connectTimeout: Double = 5

        public init(concurrency: Int = 16, connectTimeout: Double = 5) {
            self.concurrency = concurrency
            self.connectTimeout = connectTimeout
        }
    }

    public init(configuration: Configuration = .init(), name: String = "http") {
        _ = HTTPClient.globalInit
        let connectTimeout = configuration.connectTimeout
        workers = ThreadConfinedPool(
            name: name, size: configuration.concurrency,
            makeResource: { try CurlHandle(connectTimeout: connectTimeout) },
            isBroken: { _ in false })
    }

    public func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        try await workers.run { try $0.perform(request) }
    }

    public func shutdown() {
        workers.shutdown()
    }

    private static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_ALL))
    }()
}

import CCurl
import ThreadPool

/// An HTTP/1.1 client on libcurl. Each of its threads owns one easy handle and so one set of kept-alive
/// connections; `concurrency` bounds the requests in flight, shared fairly between the `share`s that
/// requests are made for.
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

    /// The share of the client's handles that requests made in this task draw on (a provider
    /// connection): no share takes them all, and one with nothing running starts first (see
    /// `ThreadConfinedPool`). Nil: none.
    @TaskLocal public static var share: String?

    public func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        try await workers.run(share: Self.share) { try $0.perform(request) }
    }

    public func shutdown() {
        workers.shutdown()
    }

    private static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_ALL))
    }()
}

import CCurl

/// An HTTP/1.1 client on libcurl's multi interface: one thread runs every transfer in flight and keeps
/// the connections alive between them (see `TransferLoop`). `concurrency` bounds the requests in flight,
/// shared fairly between the `share`s that requests are made for.
public final class HTTPClient: Sendable {
    private let loop: TransferLoop

    public struct Configuration: Sendable {
        /// Requests in flight at once. Default 16.
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
        loop = TransferLoop(name: name, concurrency: configuration.concurrency, connectTimeout: configuration.connectTimeout)
    }

    /// The share of the client's transfers that requests made in this task draw on (a provider
    /// connection): no share takes them all, and one with nothing running starts first (see
    /// `ShareQueues`). Nil: none.
    @TaskLocal public static var share: String?

    public func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
        try await loop.execute(request, share: Self.share)
    }

    /// Lets the requests made so far end, then stops; later requests fail as not sent.
    public func shutdown() {
        loop.shutdown()
    }

    private static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_ALL))
    }()
}

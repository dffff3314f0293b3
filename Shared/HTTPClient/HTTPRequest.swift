/// One HTTP request. Header names are sent as given.
public struct HTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]?
    /// The whole transfer's limit in seconds.
    public var timeout: Double
    /// Addresses to connect to instead of asking DNS, as libcurl's `CURLOPT_RESOLVE` takes them
    /// (`+host:port:address,address`): what a `URLGuard` checked, so that DNS cannot answer differently
    /// between the check and the request. Such a request speaks http and https only, and no proxy.
    public var pinned: String?
    /// Connect straight to the server, never through a proxy the environment names, over http or https
    /// only (also true of a `pinned` request).
    public var direct = false
    /// The most bytes of the answer's body kept (0: all); past it the transfer ends and the answer is
    /// its status, headers and the body cut there.
    public var maxResponseBytes = 0

    public init(
        method: String, url: String, headers: [(String, String)] = [], body: [UInt8]? = nil, timeout: Double = 30
    ) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

public struct HTTPResponse: Sendable {
    public let status: Int
    /// Response headers with lower-cased names; the last value wins.
    public let headers: [String: String]
    public let body: [UInt8]

    public init(status: Int, headers: [String: String], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public var text: String { String(decoding: body, as: UTF8.self) }
}

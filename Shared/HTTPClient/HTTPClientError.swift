/// A transfer that produced no HTTP response.
public struct HTTPClientError: Error, CustomStringConvertible, Sendable {
    /// libcurl's CURLcode.
    public let code: Int
    public let message: String
    /// True when the request cannot have reached the server (no connection was made), so sending it
    /// again cannot apply it twice.
    public let notSent: Bool
    public let isTimeout: Bool

    public init(code: Int, message: String, notSent: Bool, isTimeout: Bool) {
        self.code = code
        self.message = message
        self.notSent = notSent
        self.isTimeout = isTimeout
    }

    public var description: String { "http client error \(code): \(message)" }
}

/// Every libpq failure, as one error type.
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable, Equatable {
        case connection
        case query
        case decoding
        case closed
    }

    public let code: Code
    public let message: String
    /// The five-character SQLSTATE where the server sent one.
    public let sqlState: String?

    public init(_ code: Code, _ message: String, sqlState: String? = nil) {
        self.code = code
        self.message = message
        self.sqlState = sqlState
    }

    public var description: String { "postgres \(code): \(message)" }
}

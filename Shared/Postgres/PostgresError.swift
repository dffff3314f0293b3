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

    /// Whether trying again may succeed: the connection broke, or the server refused for a passing
    /// reason (a serialization failure or deadlock, no resources, a lock not available, the server
    /// shutting down). Any other refusal comes again for the same statement.
    public var isTransient: Bool {
        guard code == .query, let sqlState else { return code != .decoding }
        return ["40", "53", "55", "57", "58", "08"].contains(String(sqlState.prefix(2)))
    }

    public var description: String { "postgres \(code): \(message)" }
}

/// A write given up on, as the writer publishes it to `write-dead-letters`: the request as accepted,
/// so it can be sent again, and why it failed.
public struct DeadLetter: Codable, Sendable, Equatable {
    public var request: WriteRequestMessage
    public var error: WriteError
    public var attempts: Int
    public var failedAt: String

    public init(request: WriteRequestMessage, error: WriteError, attempts: Int, failedAt: String) {
        self.request = request
        self.error = error
        self.attempts = attempts
        self.failedAt = failedAt
    }
}

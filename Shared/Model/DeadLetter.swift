/// A message on `write-dead-letters`: a write given up on (the request as accepted, so it can be sent
/// again, and why it failed), or a message a service could not read (where it was, what it held, and
/// why it could not be read), with the operation it belongs to where that could be told.
public struct DeadLetter: Codable, Sendable, Equatable {
    /// The write given up on; nil for an unreadable message.
    public var request: WriteRequestMessage?
    public var error: WriteError
    public var attempts: Int
    public var failedAt: String
    /// The unreadable message.
    public var unreadable: UnreadableMessage?
    /// The operation of an unreadable message, as far as it could be read.
    public var operation: SalvagedIdentity?

    public init(request: WriteRequestMessage, error: WriteError, attempts: Int, failedAt: String) {
        self.request = request
        self.error = error
        self.attempts = attempts
        self.failedAt = failedAt
    }

    /// A message that `service` could not read, for `reason`.
    public init(unreadable: UnreadableMessage, reason: String, operation: SalvagedIdentity?, failedAt: String) {
        self.unreadable = unreadable
        self.operation = operation
        self.error = WriteError(
            message: "\(unreadable.service) could not read a message of \(unreadable.topic): \(reason)", code: "UNREADABLE_MESSAGE",
            deadLettered: true)
        self.attempts = 0
        self.failedAt = failedAt
    }
}

/// Where an unreadable message was, and what it held (as text, at most 64 KiB of it).
public struct UnreadableMessage: Codable, Sendable, Equatable {
    public var service: String
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: String?
    public var value: String

    public init(service: String, topic: String, partition: Int32, offset: Int64, key: String?, value: [UInt8]) {
        self.service = service
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = String(decoding: value.prefix(64 << 10), as: UTF8.self)
    }
}

/// The identity of the operation a message belongs to, read leniently from a message that cannot be read
/// whole: at its top level (write requests and results, bulk progress), in `data` (change events) or in
/// `change` (cache updates).
public struct SalvagedIdentity: Codable, Sendable, Equatable {
    public var operationId: String
    public var projectId: String
    public var integrationId: String
    public var installationId: String
    public var groupRef: String
    public var objectName: String
    /// The write type's raw value, or `unknown`.
    public var type: String
    /// The mode's raw value, or `unknown`.
    public var mode: String

    private struct Fields: Decodable {
        var operationId: String?
        var projectId: String?
        var integrationId: String?
        var installationId: String?
        var groupRef: String?
        var objectName: String?
        var type: String?
        var operation: String?
        var mode: String?
    }

    private struct Nested: Decodable {
        var data: Fields?
        var change: Fields?
    }

    /// The identity in a message, or nil when its operation cannot be told.
    public static func read(from bytes: [UInt8]) -> SalvagedIdentity? {
        var candidates: [Fields] = []
        if let top = try? JSONCoding.decode(Fields.self, from: bytes) { candidates.append(top) }
        if let nested = try? JSONCoding.decode(Nested.self, from: bytes) { candidates += [nested.data, nested.change].compactMap { $0 } }
        for fields in candidates {
            guard let operationId = fields.operationId, let projectId = fields.projectId, let integrationId = fields.integrationId,
                let installationId = fields.installationId
            else { continue }
            return SalvagedIdentity(
                operationId: operationId, projectId: projectId, integrationId: integrationId, installationId: installationId,
                groupRef: fields.groupRef ?? "", objectName: fields.objectName ?? "", type: fields.type ?? fields.operation ?? "unknown",
                mode: fields.mode ?? "unknown")
        }
        return nil
    }
}

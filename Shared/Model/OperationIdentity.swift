import Foundation

/// Which operation a message is about and whose it is: the operation, its project, integration,
/// installation and customer, the object and the kind of write. Every message of a write carries it —
/// the request, its result, a bulk write's progress — among the message's own fields, so that each
/// message keeps its flat shape on the wire.
public struct OperationIdentity: Codable, Sendable, Equatable {
    public var operationId: String
    public var projectId: String
    public var integrationId: String
    public var installationId: String
    /// The customer.
    public var groupRef: String
    /// The object as the integration names it (e.g. `contact`).
    public var objectName: String
    public var type: WriteType

    public init(operationId: String, projectId: String, integrationId: String, installationId: String, groupRef: String,
                objectName: String, type: WriteType)
    {
        self.operationId = operationId
        self.projectId = projectId
        self.integrationId = integrationId
        self.installationId = installationId
        self.groupRef = groupRef
        self.objectName = objectName
        self.type = type
    }

    /// A new operation's id: a UUID of version 7 (RFC 9562), its first 48 bits the milliseconds since the
    /// epoch and 74 bits random, lowercase. Ids made one after another sort together, so each table
    /// keyed by operation takes a new operation at the end of its index rather than on a random page
    /// (as a random UUID would, with a page read and a full-page image in the log for most inserts).
    /// The random bits come from the kernel's generator a few kilobytes at a time (`RandomBytes`), not a
    /// system call per id.
    public static func newOperationId(at date: Date = Date()) -> String {
        var bytes = RandomBytes.shared.uuid()
        let milliseconds = UInt64(max(0, (date.timeIntervalSince1970 * 1000).rounded(.down)))
        bytes.0 = UInt8(truncatingIfNeeded: milliseconds >> 40)
        bytes.1 = UInt8(truncatingIfNeeded: milliseconds >> 32)
        bytes.2 = UInt8(truncatingIfNeeded: milliseconds >> 24)
        bytes.3 = UInt8(truncatingIfNeeded: milliseconds >> 16)
        bytes.4 = UInt8(truncatingIfNeeded: milliseconds >> 8)
        bytes.5 = UInt8(truncatingIfNeeded: milliseconds)
        bytes.6 = bytes.6 & 0x0F | 0x70
        bytes.8 = bytes.8 & 0x3F | 0x80
        return RandomBytes.lowercaseText(bytes)
    }
}

/// A message of one write: its identity and its own content, side by side in one JSON object.
/// `message.operationId` reads the identity and `message.success` the content, as if both were the
/// message's own fields.
@dynamicMemberLookup
public protocol OperationMessage: Codable {
    associatedtype Content: Codable
    var identity: OperationIdentity { get set }
    var content: Content { get set }
    init(identity: OperationIdentity, content: Content)
}

extension OperationMessage {
    public init(from decoder: any Decoder) throws {
        self.init(identity: try OperationIdentity(from: decoder), content: try Content(from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        try identity.encode(to: encoder)
        try content.encode(to: encoder)
    }

    public subscript<T>(dynamicMember path: WritableKeyPath<OperationIdentity, T>) -> T {
        get { identity[keyPath: path] }
        set { identity[keyPath: path] = newValue }
    }

    public subscript<T>(dynamicMember path: WritableKeyPath<Content, T>) -> T {
        get { content[keyPath: path] }
        set { content[keyPath: path] = newValue }
    }

    /// What the content computes (a payload's record, say).
    public subscript<T>(dynamicMember path: KeyPath<Content, T>) -> T {
        content[keyPath: path]
    }
}

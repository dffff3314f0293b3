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

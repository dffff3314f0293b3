/// An accepted write, as the api publishes it to `write-requests`. It carries no credentials: the
/// writer resolves them from the installation.
public struct WriteRequestMessage: Codable, Sendable, Equatable {
    public var operationId: String
    public var projectId: String
    public var integrationId: String
    public var installationId: String
    public var groupRef: String
    public var provider: Provider
    /// The object as the integration names it (e.g. `contact`).
    public var objectName: String
    public var type: WriteType
    public var mode: WriteMode
    /// The fields to write, in the provider's own field names, without the id.
    public var record: [String: JSONValue]
    /// The provider's record id, for update and delete.
    public var recordId: String?
    /// HubSpot associations, passed through.
    public var associations: JSONValue?
    /// The api instance that holds the client's connection, for a synchronous write.
    public var replyTo: String?
    public var acceptedAt: String

    public init(
        operationId: String, projectId: String, integrationId: String, installationId: String, groupRef: String,
        provider: Provider, objectName: String, type: WriteType, mode: WriteMode, record: [String: JSONValue],
        recordId: String?, associations: JSONValue?, replyTo: String?, acceptedAt: String
    ) {
        self.operationId = operationId
        self.projectId = projectId
        self.integrationId = integrationId
        self.installationId = installationId
        self.groupRef = groupRef
        self.provider = provider
        self.objectName = objectName
        self.type = type
        self.mode = mode
        self.record = record
        self.recordId = recordId
        self.associations = associations
        self.replyTo = replyTo
        self.acceptedAt = acceptedAt
    }

    /// The Kafka key: all writes to one record share it and so keep their order. A create has no
    /// provider id yet, so it is keyed by its operation.
    public var routingKey: String {
        RoutingKey.make(projectId: projectId, integrationId: integrationId, groupRef: groupRef, objectName: objectName,
                        recordKey: recordId ?? "new:\(operationId)")
    }
}

public enum RoutingKey {
    public static func make(projectId: String, integrationId: String, groupRef: String, objectName: String,
                            recordKey: String) -> String
    {
        [projectId, integrationId, groupRef, objectName.lowercased(), recordKey].joined(separator: "/")
    }
}

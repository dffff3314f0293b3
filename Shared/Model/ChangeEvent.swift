/// A change applied to a record in a provider, published to `record-changes` as a CloudEvents 1.0
/// JSON event (structured mode) for any Kafka client.
public struct ChangeEvent: Codable, Sendable, Equatable {
    public var specversion = "1.0"
    /// `com.writeback.record.created`, `.updated` or `.deleted`.
    public var type: String
    /// `/projects/{projectId}/integrations/{integrationId}`.
    public var source: String
    /// `{objectName}/{recordId}`.
    public var subject: String
    /// The operation id (with `/{index}` for a record of a batch write): unique per change.
    public var id: String
    public var time: String
    public var datacontenttype = "application/json"
    public var data: ChangeData

    /// The change of one record; `index` is its place in a batch write (the event id is then the
    /// operation's with `/index`, one per change).
    public init(result: WriteResultMessage, recordId: String, fields: [String: JSONValue], index: Int? = nil, line: Int? = nil) {
        let verb: String
        switch result.type {
        case .create: verb = "created"
        case .update: verb = "updated"
        case .delete: verb = "deleted"
        case .upsert: verb = result.providerStatus == 201 ? "created" : "updated"
        }
        type = "com.writeback.record.\(verb)"
        source = "/projects/\(result.projectId)/integrations/\(result.integrationId)"
        subject = "\(result.objectName)/\(recordId)"
        id = index.map { "\(result.operationId)/\($0)" } ?? result.operationId
        time = result.completedAt
        data = ChangeData(
            projectId: result.projectId, integrationId: result.integrationId, installationId: result.installationId,
            groupRef: result.groupRef, provider: result.provider, objectName: result.objectName, recordId: recordId,
            operation: result.type, fields: fields, deleted: result.type == .delete, operationId: result.operationId,
            version: result.version, line: line)
    }

    /// The Kafka key of the event: the record's routing key, so one record's changes stay in order.
    public var routingKey: String {
        RoutingKey.make(projectId: data.projectId, integrationId: data.integrationId, groupRef: data.groupRef,
                        objectName: data.objectName, recordKey: data.recordId)
    }
}

public struct ChangeData: Codable, Sendable, Equatable {
    public var projectId: String
    public var integrationId: String
    public var installationId: String
    public var groupRef: String
    public var provider: Provider
    public var objectName: String
    public var recordId: String
    public var operation: WriteType
    /// The fields written, in the provider's names (empty for a delete).
    public var fields: [String: JSONValue]
    public var deleted: Bool
    public var operationId: String
    /// Microseconds since the epoch when the provider applied it; a consumer keeps the highest.
    public var version: Int64
    /// For a row of a bulk CSV write: its line in the CSV.
    public var line: Int?
}

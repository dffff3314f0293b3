import Foundation

/// What a project may be told about, as the webhook destinations' routes name them (`eventType`).
public enum NotificationEventType: String, CaseIterable, Codable, Sendable {
    case writeAsyncDone = "write.async.done"
    case connectionCreated = "connection.created"
    case connectionUpdated = "connection.updated"
    case connectionDeleted = "connection.deleted"
    case connectionError = "connection.error"
    case connectionRefreshed = "connection.refreshed"
    case installationCreated = "installation.created"
    case installationUpdated = "installation.updated"
    case installationDeleted = "installation.deleted"
    case destinationWebhookDisabled = "destination.webhook.disabled"
}

/// One notification: the JSON object a webhook destination receives as the request's body, and the
/// value of its message on the `notifications` topic (keyed by its id). Its `id` is stable: an event
/// told twice (a redelivered result, a retried batch) has the same id, and is delivered once.
public struct NotificationEvent: Sendable, Equatable {
    public var id: String
    public var type: NotificationEventType
    public var projectId: String
    /// When it happened (`Timestamp`).
    public var createTime: String
    public var data: JSONValue

    public init(id: String, type: NotificationEventType, projectId: String, createTime: String, data: JSONValue) {
        self.id = id
        self.type = type
        self.projectId = projectId
        self.createTime = createTime
        self.data = data
    }

    /// A new event of something that happens once (a connection made, a token renewed): a new id.
    public init(type: NotificationEventType, projectId: String, data: JSONValue, at date: Date = Date()) {
        self.init(id: OperationIdentity.newOperationId(at: date), type: type, projectId: projectId,
                  createTime: Timestamp.format(date), data: data)
    }

    /// The body sent: `{"createTime", "data", "id", "notificationType", "projectId"}` (keys sorted).
    public func encoded() throws -> [UInt8] {
        try JSONCoding.encode(JSONValue.object([
            "id": .string(id), "notificationType": .string(type.rawValue), "projectId": .string(projectId),
            "createTime": .string(createTime), "data": data,
        ]))
    }

    /// Reads a body (or a `notifications` message).
    public init(json bytes: [UInt8]) throws {
        let value = try JSONReader.read(bytes)
        guard let id = value["id"]?.stringValue, let typeName = value["notificationType"]?.stringValue,
              let projectId = value["projectId"]?.stringValue, let createTime = value["createTime"]?.stringValue
        else { throw JSONReader.Failure(message: "a notification needs id, notificationType, projectId and createTime", offset: 0) }
        guard let type = NotificationEventType(rawValue: typeName) else {
            throw JSONReader.Failure(message: "unknown notificationType \(typeName)", offset: 0)
        }
        self.init(id: id, type: type, projectId: projectId, createTime: createTime, data: value["data"] ?? .null)
    }
}

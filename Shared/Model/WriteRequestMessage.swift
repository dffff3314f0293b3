/// An accepted write, as the api publishes it to `write-requests`. It carries no credentials: the
/// writer resolves them from the installation.
public struct WriteRequestMessage: OperationMessage, Sendable, Equatable {
    public var identity: OperationIdentity
    public var content: Write

    /// What to write and how.
    public struct Write: Codable, Sendable, Equatable {
        public var provider: Provider
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
        /// Set when `record` is in the common CRM schema (the unified API): the writer maps it to the
        /// provider's fields.
        public var unifiedObject: UnifiedObject?
        /// For an upsert: the unified key to match on and the values, any of which matches.
        public var upsertOn: UpsertOn?
        /// The request's `retryPolicy.deadlineHours`: failing for a passing reason, it is tried again until
        /// this long after `acceptedAt` (nil: the writer's default deadline).
        public var retryDeadlineHours: Int?
        /// A batch write: its records, in request order (then `record` is empty and `recordId` nil).
        public var batch: [BatchRecord]?
        /// `batchPolicy.allOrNone`: the whole batch fails when one record does.
        public var allOrNone: Bool?
        /// `autoBatchPolicy.maxDelayMinutes`, in seconds: the writer may hold this asynchronous write this
        /// long to send it in one provider batch call with others of the same installation and object.
        public var autoBatchDelaySeconds: Double?
        /// A bulk CSV write: where its rows are and what identifies a row.
        public var bulk: BulkWrite?
    }

    public init(identity: OperationIdentity, content: Write) {
        self.identity = identity
        self.content = content
    }

    public init(
        operationId: String, projectId: String, integrationId: String, installationId: String, groupRef: String,
        provider: Provider, objectName: String, type: WriteType, mode: WriteMode, record: [String: JSONValue],
        recordId: String?, associations: JSONValue?, replyTo: String?, acceptedAt: String,
        unifiedObject: UnifiedObject? = nil, upsertOn: UpsertOn? = nil, retryDeadlineHours: Int? = nil,
        batch: [BatchRecord]? = nil, allOrNone: Bool? = nil, autoBatchDelaySeconds: Double? = nil,
        bulk: BulkWrite? = nil
    ) {
        identity = OperationIdentity(operationId: operationId, projectId: projectId, integrationId: integrationId,
                                     installationId: installationId, groupRef: groupRef, objectName: objectName, type: type)
        content = Write(
            provider: provider, mode: mode, record: record, recordId: recordId, associations: associations, replyTo: replyTo,
            acceptedAt: acceptedAt, unifiedObject: unifiedObject, upsertOn: upsertOn, retryDeadlineHours: retryDeadlineHours,
            batch: batch, allOrNone: allOrNone, autoBatchDelaySeconds: autoBatchDelaySeconds, bulk: bulk)
    }

    /// The Kafka key: the connection (installation). All of one connection's writes are on one partition,
    /// in the order they were accepted, whatever kind they are (single, batch, upsert, auto-batched,
    /// bulk); the writer keeps each record's order inside that.
    public var routingKey: String { identity.installationId }

    /// The record's routing key, as change events and results are keyed: all changes of one record
    /// share it.
    public func recordRoutingKey(recordId: String?) -> String {
        RoutingKey.make(projectId: identity.projectId, integrationId: identity.integrationId, groupRef: identity.groupRef,
                        objectName: identity.objectName, recordKey: recordId ?? "new:\(identity.operationId)")
    }
}

/// One record of a batch write.
public struct BatchRecord: Codable, Sendable, Equatable {
    /// The fields to write, without the id.
    public var record: [String: JSONValue]
    /// The provider's record id, for an update.
    public var recordId: String?
    /// HubSpot associations, passed through on create.
    public var associations: JSONValue?

    public init(record: [String: JSONValue], recordId: String?, associations: JSONValue?) {
        self.record = record
        self.recordId = recordId
        self.associations = associations
    }
}

public struct UpsertOn: Codable, Sendable, Equatable {
    public var key: String
    public var values: [String]

    public init(key: String, values: [String]) {
        self.key = key
        self.values = values
    }
}

public enum RoutingKey {
    public static func make(projectId: String, integrationId: String, groupRef: String, objectName: String,
                            recordKey: String) -> String
    {
        [projectId, integrationId, groupRef, objectName.lowercased(), recordKey].joined(separator: "/")
    }
}

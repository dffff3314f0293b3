/// An accepted write, as the api publishes it to `write-requests`. It carries no credentials: the
/// writer resolves them from the installation.
public struct WriteRequestMessage: OperationMessage, Sendable, Equatable {
    public var identity: OperationIdentity
    public var content: Write

    /// What to write and how.
    public struct Write: Codable, Sendable, Equatable {
        public var provider: Provider
        public var mode: WriteMode
        public var payload: Payload
        /// The api instance that holds the client's connection, for a synchronous write.
        public var replyTo: String?
        public var acceptedAt: String
        /// Set when the record is in the common CRM schema (the unified API): the writer maps it to the
        /// provider's fields.
        public var unifiedObject: UnifiedObject?
        /// For an upsert: the unified key to match on and the values, any of which matches.
        public var upsertOn: UpsertOn?
        /// The request's `retryPolicy.deadlineHours`: failing for a passing reason, it is tried again until
        /// this long after `acceptedAt` (nil: the writer's default deadline).
        public var retryDeadlineHours: Int?
        /// `autoBatchPolicy.maxDelayMinutes`, in seconds: the writer may hold this asynchronous write this
        /// long to send it in one provider batch call with others of the same installation and object.
        public var autoBatchDelaySeconds: Double?
        /// The operation this write sends again (the console's "send again" of a failed write): the same
        /// request as a new operation, linked to the old one.
        public var resentFrom: String?

        /// The fields of a single record (empty for a batch or a bulk write).
        public var record: [String: JSONValue] {
            if case .single(let record, _, _) = payload { return record }
            return [:]
        }

        /// A single record's provider id, for update and delete.
        public var recordId: String? {
            if case .single(_, let recordId, _) = payload { return recordId }
            return nil
        }

        public var associations: JSONValue? {
            if case .single(_, _, let associations) = payload { return associations }
            return nil
        }

        public var batch: [BatchRecord]? {
            if case .batch(let records, _) = payload { return records }
            return nil
        }

        public var allOrNone: Bool? {
            if case .batch(_, let allOrNone) = payload { return allOrNone }
            return nil
        }

        public var bulk: BulkWrite? {
            if case .bulk(let bulk) = payload { return bulk }
            return nil
        }

        // On the wire a payload is its fields among the others: `record` (always, empty for a batch or a
        // bulk write), `recordId`, `associations`, `batch` with `allOrNone`, or `bulk`.
        enum CodingKeys: String, CodingKey {
            case provider, mode, replyTo, acceptedAt, unifiedObject, upsertOn, retryDeadlineHours, autoBatchDelaySeconds, resentFrom
            case record, recordId, associations, batch, allOrNone, bulk
        }

        public init(from decoder: any Decoder) throws {
            let fields = try decoder.container(keyedBy: CodingKeys.self)
            provider = try fields.decode(Provider.self, forKey: .provider)
            mode = try fields.decode(WriteMode.self, forKey: .mode)
            replyTo = try fields.decodeIfPresent(String.self, forKey: .replyTo)
            acceptedAt = try fields.decode(String.self, forKey: .acceptedAt)
            unifiedObject = try fields.decodeIfPresent(UnifiedObject.self, forKey: .unifiedObject)
            upsertOn = try fields.decodeIfPresent(UpsertOn.self, forKey: .upsertOn)
            retryDeadlineHours = try fields.decodeIfPresent(Int.self, forKey: .retryDeadlineHours)
            autoBatchDelaySeconds = try fields.decodeIfPresent(Double.self, forKey: .autoBatchDelaySeconds)
            resentFrom = try fields.decodeIfPresent(String.self, forKey: .resentFrom)
            if let bulk = try fields.decodeIfPresent(BulkWrite.self, forKey: .bulk) {
                payload = .bulk(bulk)
            } else if let batch = try fields.decodeIfPresent([BatchRecord].self, forKey: .batch) {
                payload = .batch(batch, allOrNone: try fields.decodeIfPresent(Bool.self, forKey: .allOrNone) ?? false)
            } else {
                payload = .single(
                    record: try fields.decode([String: JSONValue].self, forKey: .record),
                    recordId: try fields.decodeIfPresent(String.self, forKey: .recordId),
                    associations: try fields.decodeIfPresent(JSONValue.self, forKey: .associations))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var fields = encoder.container(keyedBy: CodingKeys.self)
            try fields.encode(provider, forKey: .provider)
            try fields.encode(mode, forKey: .mode)
            try fields.encodeIfPresent(replyTo, forKey: .replyTo)
            try fields.encode(acceptedAt, forKey: .acceptedAt)
            try fields.encodeIfPresent(unifiedObject, forKey: .unifiedObject)
            try fields.encodeIfPresent(upsertOn, forKey: .upsertOn)
            try fields.encodeIfPresent(retryDeadlineHours, forKey: .retryDeadlineHours)
            try fields.encodeIfPresent(autoBatchDelaySeconds, forKey: .autoBatchDelaySeconds)
            try fields.encodeIfPresent(resentFrom, forKey: .resentFrom)
            try fields.encode(record, forKey: .record)
            switch payload {
            case .single(_, let recordId, let associations):
                try fields.encodeIfPresent(recordId, forKey: .recordId)
                try fields.encodeIfPresent(associations, forKey: .associations)
            case .batch(let records, let allOrNone):
                try fields.encode(records, forKey: .batch)
                try fields.encode(allOrNone, forKey: .allOrNone)
            case .bulk(let bulk):
                try fields.encode(bulk, forKey: .bulk)
            }
        }

        init(provider: Provider, mode: WriteMode, payload: Payload, replyTo: String?, acceptedAt: String, unifiedObject: UnifiedObject?,
             upsertOn: UpsertOn?, retryDeadlineHours: Int?, autoBatchDelaySeconds: Double?)
        {
            self.provider = provider
            self.mode = mode
            self.payload = payload
            self.replyTo = replyTo
            self.acceptedAt = acceptedAt
            self.unifiedObject = unifiedObject
            self.upsertOn = upsertOn
            self.retryDeadlineHours = retryDeadlineHours
            self.autoBatchDelaySeconds = autoBatchDelaySeconds
        }
    }

    /// What a write carries: one record, a batch of them, or a bulk CSV file.
    public enum Payload: Sendable, Equatable {
        /// One record: its fields in the provider's own names (without the id), the provider's record id
        /// for update and delete, HubSpot associations passed through.
        case single(record: [String: JSONValue], recordId: String?, associations: JSONValue?)
        /// A batch write: its records in request order; `allOrNone` fails the whole batch when one record does.
        case batch([BatchRecord], allOrNone: Bool)
        /// A bulk CSV write: where its rows are and what identifies a row.
        case bulk(BulkWrite)
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
        let payload: Payload = if let bulk { .bulk(bulk) } else if let batch { .batch(batch, allOrNone: allOrNone ?? false) }
            else { .single(record: record, recordId: recordId, associations: associations) }
        content = Write(
            provider: provider, mode: mode, payload: payload, replyTo: replyTo, acceptedAt: acceptedAt, unifiedObject: unifiedObject,
            upsertOn: upsertOn, retryDeadlineHours: retryDeadlineHours, autoBatchDelaySeconds: autoBatchDelaySeconds)
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

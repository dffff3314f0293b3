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
        type = Self.type(of: result.type, created: result.providerStatus == 201)
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

    /// The event type of a write's change: an upsert's is `created` or `updated` as it `created` the
    /// record or not.
    public static func type(of write: WriteType, created: Bool) -> String {
        switch write {
        case .create: "com.writeback.record.created"
        case .update: "com.writeback.record.updated"
        case .delete: "com.writeback.record.deleted"
        case .upsert: created ? "com.writeback.record.created" : "com.writeback.record.updated"
        }
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

extension ChangeEvent {
    /// Writes the change events of one write's records: what they share (the operation, customer,
    /// object, time) is written once, and each event is its record's parts between those pieces. The
    /// bytes are those `JSONCoding.encode` writes for the `ChangeEvent` of the same record
    /// (`Tests/SharedTests/JSONTests` holds them equal), at a fraction of the work for a write of many
    /// records.
    public struct Writer: Sendable {
        let result: WriteResultMessage
        let routingPrefix: String
        /// `{"data":{"deleted":…,"fields":`
        let start: [UInt8]
        /// `,"groupRef":…,"integrationId":…,` before the optional line.
        let afterFields: [UInt8]
        /// `"objectName":…,"recordId":`
        let beforeRecord: [UInt8]
        /// `,"version":…},"datacontenttype":…,"id":`
        let beforeId: [UInt8]
        /// `,"source":…,"specversion":"1.0","subject":`
        let beforeSubject: [UInt8]
        /// `,"time":…,"type":`
        let beforeType: [UInt8]

        public init(result: WriteResultMessage) {
            self.result = result
            routingPrefix = RoutingKey.make(projectId: result.projectId, integrationId: result.integrationId, groupRef: result.groupRef,
                                            objectName: result.objectName, recordKey: "")
            func piece(_ build: (inout JSONWriter) -> Void) -> [UInt8] {
                var writer = JSONWriter(capacity: 256)
                build(&writer)
                return writer.bytes
            }
            func member(_ writer: inout JSONWriter, _ key: String, _ value: String) {
                writer.string(key)
                writer.bytes.append(UInt8(ascii: ":"))
                writer.string(value)
            }
            start = piece { writer in
                writer.bytes += #"{"data":{"deleted":"#.utf8
                writer.bool(result.type == .delete)
                writer.bytes += #","fields":"#.utf8
            }
            afterFields = piece { writer in
                writer.bytes.append(UInt8(ascii: ","))
                member(&writer, "groupRef", result.groupRef)
                writer.bytes.append(UInt8(ascii: ","))
                member(&writer, "installationId", result.installationId)
                writer.bytes.append(UInt8(ascii: ","))
                member(&writer, "integrationId", result.integrationId)
                writer.bytes.append(UInt8(ascii: ","))
            }
            beforeRecord = piece { writer in
                member(&writer, "objectName", result.objectName)
                writer.bytes.append(UInt8(ascii: ","))
                member(&writer, "operation", result.type.rawValue)
                writer.bytes.append(UInt8(ascii: ","))
                member(&writer, "operationId", result.operationId)
                writer.bytes.append(UInt8(ascii: ","))
                member(&writer, "projectId", result.projectId)
                writer.bytes.append(UInt8(ascii: ","))
                member(&writer, "provider", result.provider.rawValue)
                writer.bytes += #","recordId":"#.utf8
            }
            beforeId = piece { writer in
                writer.bytes += #","version":"#.utf8
                writer.integer(result.version)
                writer.bytes += #"},"datacontenttype":"application/json","id":"#.utf8
            }
            beforeSubject = piece { writer in
                writer.bytes.append(UInt8(ascii: ","))
                member(&writer, "source", "/projects/\(result.projectId)/integrations/\(result.integrationId)")
                writer.bytes += #","specversion":"1.0","subject":"#.utf8
            }
            beforeType = piece { writer in
                writer.bytes.append(UInt8(ascii: ","))
                member(&writer, "time", result.completedAt)
                writer.bytes += #","type":"#.utf8
            }
        }

        /// The Kafka key of a record's event (`ChangeEvent.routingKey`).
        public func routingKey(recordId: String) -> String { routingPrefix + recordId }

        /// The event of one record: `fields` writes its fields as a JSON object; `created` tells an
        /// upsert's record created from one updated (otherwise the result's provider status does).
        public func bytes(recordId: String, index: Int? = nil, line: Int? = nil, created: Bool? = nil,
                          fields: (inout JSONWriter) -> Void) -> [UInt8]
        {
            var writer = JSONWriter(capacity: 512 + recordId.utf8.count * 2)
            writer.bytes += start
            fields(&writer)
            writer.bytes += afterFields
            if let line {
                writer.bytes += #""line":"#.utf8
                writer.integer(line)
                writer.bytes.append(UInt8(ascii: ","))
            }
            writer.bytes += beforeRecord
            writer.string(recordId)
            writer.bytes += beforeId
            writer.string(index.map { "\(result.operationId)/\($0)" } ?? result.operationId)
            writer.bytes += beforeSubject
            writer.string("\(result.objectName)/\(recordId)")
            writer.bytes += beforeType
            writer.string(ChangeEvent.type(of: result.type, created: created ?? (result.providerStatus == 201)))
            writer.bytes.append(UInt8(ascii: "}"))
            return writer.bytes
        }

        /// The event of one record whose fields are a JSON object's.
        public func bytes(recordId: String, fields: [String: JSONValue], index: Int? = nil, line: Int? = nil, created: Bool? = nil)
            -> [UInt8]
        {
            bytes(recordId: recordId, index: index, line: line, created: created) { $0.object(fields) }
        }
    }
}

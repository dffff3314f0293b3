/// The messages of every write read and written without Codable (`JSONReader`, `JSONWriter`), in the same
/// shapes their Codable conformances give: `JSONCoding` takes this way for them.
public protocol JSONReadable {
    init(json fields: JSONFieldReader) throws
}

/// A message field that is missing or of the wrong kind.
public struct JSONFieldError: Error, CustomStringConvertible {
    public var type: String
    public var key: String
    public var problem: String
    public var description: String { "\(type): \(key) \(problem)" }

    public init(type: String, key: String, problem: String) {
        (self.type, self.key, self.problem) = (type, key, problem)
    }
}

/// For a reader of one type: a member's value read, or the error that names it missing.
public struct JSONRequired {
    let type: String

    public init(_ type: String) { self.type = type }

    public func callAsFunction<T>(_ value: T?, _ key: String) throws -> T {
        guard let value else { throw JSONFieldError(type: type, key: key, problem: "is missing") }
        return value
    }
}

/// The fields of a JSON object, read as a message's properties: a missing required field or a value of
/// the wrong kind throws; an optional one may be missing or null.
public struct JSONFieldReader {
    public let fields: [String: JSONValue]
    let type: String

    public init(_ value: JSONValue, type: String) throws {
        guard case .object(let fields) = value else { throw JSONFieldError(type: type, key: "(value)", problem: "is not an object") }
        self.fields = fields
        self.type = type
    }

    func failure(_ key: String, _ problem: String) -> JSONFieldError { JSONFieldError(type: type, key: key, problem: problem) }

    /// The value at `key`, nil when missing or null.
    func present(_ key: String) -> JSONValue? {
        guard let value = fields[key], value != .null else { return nil }
        return value
    }

    func required(_ key: String) throws -> JSONValue {
        guard let value = present(key) else { throw failure(key, "is missing") }
        return value
    }

    public func string(_ key: String) throws -> String {
        guard let text = try optionalString(key) else { throw failure(key, "is missing") }
        return text
    }

    public func optionalString(_ key: String) throws -> String? {
        guard let value = present(key) else { return nil }
        guard case .string(let text) = value else { throw failure(key, "is not a string") }
        return text
    }

    public func bool(_ key: String) throws -> Bool {
        guard let flag = try optionalBool(key) else { throw failure(key, "is missing") }
        return flag
    }

    public func optionalBool(_ key: String) throws -> Bool? {
        guard let value = present(key) else { return nil }
        guard case .bool(let flag) = value else { throw failure(key, "is not a boolean") }
        return flag
    }

    public func integer<T: FixedWidthInteger>(_ key: String, as: T.Type = T.self) throws -> T {
        guard let number = try optionalInteger(key, as: T.self) else { throw failure(key, "is missing") }
        return number
    }

    public func optionalInteger<T: FixedWidthInteger>(_ key: String, as: T.Type = T.self) throws -> T? {
        guard let value = present(key) else { return nil }
        guard case .number(let number) = value, number.rounded() == number, let exact = T(exactly: number) else {
            throw failure(key, "is not a whole number")
        }
        return exact
    }

    public func optionalNumber(_ key: String) throws -> Double? {
        guard let value = present(key) else { return nil }
        guard case .number(let number) = value else { throw failure(key, "is not a number") }
        return number
    }

    public func object(_ key: String) throws -> [String: JSONValue] {
        guard let fields = try optionalObject(key) else { throw failure(key, "is missing") }
        return fields
    }

    public func optionalObject(_ key: String) throws -> [String: JSONValue]? {
        guard let value = present(key) else { return nil }
        guard case .object(let fields) = value else { throw failure(key, "is not an object") }
        return fields
    }

    public func strings(_ key: String) throws -> [String] {
        guard case .array(let items) = try required(key) else { throw failure(key, "is not an array") }
        return try items.map { item in
            guard case .string(let text) = item else { throw failure(key, "holds a value that is not a string") }
            return text
        }
    }

    public func raw<T: RawRepresentable>(_ key: String, as: T.Type) throws -> T where T.RawValue == String {
        guard let value = T(rawValue: try string(key)) else { throw failure(key, "is not one of its values") }
        return value
    }

    public func optionalRaw<T: RawRepresentable>(_ key: String, as: T.Type) throws -> T? where T.RawValue == String {
        guard let text = try optionalString(key) else { return nil }
        guard let value = T(rawValue: text) else { throw failure(key, "is not one of its values") }
        return value
    }

    public func nested<T: JSONReadable>(_ key: String, as: T.Type) throws -> T {
        guard let value = try optionalNested(key, as: T.self) else { throw failure(key, "is missing") }
        return value
    }

    public func optionalNested<T: JSONReadable>(_ key: String, as: T.Type) throws -> T? {
        guard let value = present(key) else { return nil }
        return try T(json: JSONFieldReader(value, type: "\(T.self)"))
    }

    public func optionalList<T: JSONReadable>(_ key: String, of: T.Type) throws -> [T]? {
        guard let value = present(key) else { return nil }
        guard case .array(let items) = value else { throw failure(key, "is not an array") }
        return try items.map { try T(json: JSONFieldReader($0, type: "\(T.self)")) }
    }
}

extension JSONFields {
    public mutating func field<T: RawRepresentable>(_ key: String, raw value: T?) where T.RawValue == String {
        field(key, value?.rawValue)
    }

    public mutating func field<T: JSONWritable>(_ key: String, list: [T]?) {
        guard let list else { return }
        field(key) { writer in writer.array(list) { writer, item in writer.object { item.writeFields(into: &$0) } } }
    }

    public mutating func field(_ key: String, strings: [String]?) {
        guard let strings else { return }
        field(key) { writer in writer.array(strings) { $0.string($1) } }
    }
}

// MARK: the messages

extension OperationIdentity: JSONWritable, JSONReadable {
    public func writeFields(into fields: inout JSONFields) {
        fields.field("operationId", operationId)
        fields.field("projectId", projectId)
        fields.field("integrationId", integrationId)
        fields.field("installationId", installationId)
        fields.field("groupRef", groupRef)
        fields.field("objectName", objectName)
        fields.field("type", raw: type)
    }

    public init(json fields: JSONFieldReader) throws {
        self.init(
            operationId: try fields.string("operationId"), projectId: try fields.string("projectId"),
            integrationId: try fields.string("integrationId"), installationId: try fields.string("installationId"),
            groupRef: try fields.string("groupRef"), objectName: try fields.string("objectName"),
            type: try fields.raw("type", as: WriteType.self))
    }
}

extension OperationMessage where Self: JSONWritable, Content: JSONWritable {
    public func writeFields(into fields: inout JSONFields) {
        identity.writeFields(into: &fields)
        content.writeFields(into: &fields)
    }
}

extension OperationMessage where Self: JSONReadable, Content: JSONReadable {
    public init(json fields: JSONFieldReader) throws {
        self.init(identity: try OperationIdentity(json: fields), content: try Content(json: fields))
    }
}

extension WriteRequestMessage: JSONWritable, JSONReadable {}
extension WriteResultMessage: JSONWritable, JSONReadable {}

extension WriteRequestMessage.Write: JSONWritable, JSONReadable {
    public func writeFields(into fields: inout JSONFields) {
        fields.field("provider", raw: provider)
        fields.field("mode", raw: mode)
        fields.field("replyTo", replyTo)
        fields.field("acceptedAt", acceptedAt)
        fields.field("unifiedObject", raw: unifiedObject)
        fields.field("upsertOn", object: upsertOn)
        fields.field("retryDeadlineHours", retryDeadlineHours)
        fields.field("autoBatchDelaySeconds", autoBatchDelaySeconds)
        fields.field("resentFrom", resentFrom)
        fields.field("record", record)
        switch payload {
        case .single(_, let recordId, let associations):
            fields.field("recordId", recordId)
            fields.field("associations", associations)
        case .batch(let records, let allOrNone):
            fields.field("batch", list: records)
            fields.field("allOrNone", allOrNone)
        case .bulk(let bulk):
            fields.field("bulk", object: bulk)
        }
    }

    public init(json fields: JSONFieldReader) throws {
        let payload: WriteRequestMessage.Payload
        if let bulk = try fields.optionalNested("bulk", as: BulkWrite.self) {
            payload = .bulk(bulk)
        } else if let batch = try fields.optionalList("batch", of: BatchRecord.self) {
            payload = .batch(batch, allOrNone: try fields.optionalBool("allOrNone") ?? false)
        } else {
            payload = .single(record: try fields.object("record"), recordId: try fields.optionalString("recordId"),
                              associations: fields.present("associations"))
        }
        self.init(
            provider: try fields.raw("provider", as: Provider.self), mode: try fields.raw("mode", as: WriteMode.self), payload: payload,
            replyTo: try fields.optionalString("replyTo"), acceptedAt: try fields.string("acceptedAt"),
            unifiedObject: try fields.optionalRaw("unifiedObject", as: UnifiedObject.self),
            upsertOn: try fields.optionalNested("upsertOn", as: UpsertOn.self),
            retryDeadlineHours: try fields.optionalInteger("retryDeadlineHours", as: Int.self),
            autoBatchDelaySeconds: try fields.optionalNumber("autoBatchDelaySeconds"))
        resentFrom = try fields.optionalString("resentFrom")
    }
}

extension BatchRecord: JSONWritable, JSONReadable {
    public func writeFields(into fields: inout JSONFields) {
        fields.field("record", record)
        fields.field("recordId", recordId)
        fields.field("associations", associations)
    }

    public init(json fields: JSONFieldReader) throws {
        self.init(record: try fields.object("record"), recordId: try fields.optionalString("recordId"),
                  associations: fields.present("associations"))
    }
}

extension UpsertOn: JSONWritable, JSONReadable {
    public func writeFields(into fields: inout JSONFields) {
        fields.field("key", key)
        fields.field("values", strings: values)
    }

    public init(json fields: JSONFieldReader) throws {
        self.init(key: try fields.string("key"), values: try fields.strings("values"))
    }
}

extension BulkWrite: JSONWritable, JSONReadable {
    public func writeFields(into fields: inout JSONFields) {
        fields.field("primaryKey", primaryKey)
        fields.field("header", strings: header)
        fields.field("recordsURL", recordsURL)
        fields.field("bytes", bytes)
    }

    public init(json fields: JSONFieldReader) throws {
        self.init(primaryKey: try fields.string("primaryKey"), header: try fields.strings("header"),
                  recordsURL: try fields.optionalString("recordsURL"), bytes: try fields.optionalInteger("bytes", as: Int.self))
    }
}

extension WriteResultMessage.Outcome: JSONWritable, JSONReadable {
    public func writeFields(into fields: inout JSONFields) {
        fields.field("provider", raw: provider)
        fields.field("mode", raw: mode)
        fields.field("success", success)
        fields.field("recordId", recordId)
        fields.field("data", data)
        fields.field("error", object: error)
        fields.field("providerStatus", providerStatus)
        fields.field("possiblyDuplicated", possiblyDuplicated)
        fields.field("attempts", attempts)
        fields.field("replyTo", replyTo)
        fields.field("completedAt", completedAt)
        fields.field("version", version)
        fields.field("results", list: results)
    }

    public init(json fields: JSONFieldReader) throws {
        self.init(
            provider: try fields.raw("provider", as: Provider.self), mode: try fields.raw("mode", as: WriteMode.self),
            success: try fields.bool("success"), recordId: try fields.optionalString("recordId"), data: try fields.optionalObject("data"),
            error: try fields.optionalNested("error", as: WriteError.self),
            providerStatus: try fields.optionalInteger("providerStatus", as: Int.self),
            possiblyDuplicated: try fields.bool("possiblyDuplicated"), attempts: try fields.integer("attempts", as: Int.self),
            replyTo: try fields.optionalString("replyTo"), completedAt: try fields.string("completedAt"),
            version: try fields.integer("version", as: Int64.self), results: try fields.optionalList("results", of: BatchItemResult.self))
    }
}

extension BatchItemResult: JSONWritable, JSONReadable {
    public func writeFields(into fields: inout JSONFields) {
        fields.field("success", success)
        fields.field("recordId", recordId)
        fields.field("data", data)
        fields.field("error", object: error)
    }

    public init(json fields: JSONFieldReader) throws {
        self.init(success: try fields.bool("success"), recordId: try fields.optionalString("recordId"),
                  data: try fields.optionalObject("data"), error: try fields.optionalNested("error", as: WriteError.self))
    }
}

extension WriteError: JSONWritable, JSONReadable {
    public func writeFields(into fields: inout JSONFields) {
        fields.field("message", message)
        fields.field("code", code)
        fields.field("raw", raw)
        fields.field("deadLettered", deadLettered)
        fields.field("existingRecordId", existingRecordId)
    }

    public init(json fields: JSONFieldReader) throws {
        self.init(message: try fields.string("message"), code: try fields.optionalString("code"), raw: try fields.optionalString("raw"),
                  deadLettered: try fields.bool("deadLettered"), existingRecordId: try fields.optionalString("existingRecordId"))
    }
}

extension ChangeEvent: JSONWritable, JSONReadable {
    /// In key order, like `ChangeData`'s: a bulk write sends one event per row.
    public func writeFields(into fields: inout JSONFields) {
        fields.field("data", object: data)
        fields.field("datacontenttype", datacontenttype)
        fields.field("id", id)
        fields.field("source", source)
        fields.field("specversion", specversion)
        fields.field("subject", subject)
        fields.field("time", time)
        fields.field("type", type)
    }

    public init(json fields: JSONFieldReader) throws {
        self.init(
            specversion: try fields.string("specversion"), type: try fields.string("type"), source: try fields.string("source"),
            subject: try fields.string("subject"), id: try fields.string("id"), time: try fields.string("time"),
            datacontenttype: try fields.string("datacontenttype"), data: try fields.nested("data", as: ChangeData.self))
    }
}

extension ChangeData {
    /// The data of a change event read straight from the event's bytes (its other attributes passed
    /// over), with its `fields` left empty and answered as their JSON text, for a consumer that stores
    /// them as they are: what `JSONCoding.decode(ChangeEvent.self, …).data` reads, at a fraction of
    /// the work.
    public static func read(event bytes: [UInt8]) throws -> (data: ChangeData, fields: String) {
        var read: (data: ChangeData, fields: String)?
        try JSONScanner.members(of: bytes, type: "ChangeEvent") { member in
            guard member.key == "data" else { return }
            read = try ChangeData.read(&member)
        }
        guard let read else { throw JSONFieldError(type: "ChangeEvent", key: "data", problem: "is missing") }
        return read
    }

    static func read(_ scanner: inout JSONScanner) throws -> (data: ChangeData, fields: String) {
        var strings = JSONRequiredStrings(
            ["projectId", "integrationId", "installationId", "groupRef", "objectName", "recordId", "operationId"], type: "ChangeData")
        var provider: Provider?
        var operation: WriteType?
        var fields: String?
        var deleted: Bool?
        var version: Int64?
        var line: Int?
        // A null is as good as absent (and, repeated, the last of a key counts, as in the whole read).
        try scanner.members(type: "ChangeData") { member in
            if try strings.read(&member) { return }
            switch member.key {
            case "provider": provider = try member.orNil { try $0.raw(Provider.self) }
            case "operation": operation = try member.orNil { try $0.raw(WriteType.self) }
            case "fields": fields = try member.orNil { try $0.object() }
            case "deleted": deleted = try member.orNil { try $0.bool() }
            case "version": version = try member.orNil { try $0.integer(as: Int64.self) }
            case "line": line = try member.orNil { try $0.integer(as: Int.self) }
            default: break
            }
        }
        let required = JSONRequired("ChangeData")
        let values = try strings.all()
        let data = ChangeData(
            projectId: values[0], integrationId: values[1], installationId: values[2], groupRef: values[3],
            provider: try required(provider, "provider"), objectName: values[4], recordId: values[5],
            operation: try required(operation, "operation"), fields: [:], deleted: try required(deleted, "deleted"),
            operationId: values[6], version: try required(version, "version"), line: line)
        return (data, try required(fields, "fields"))
    }
}

extension ChangeData: JSONWritable, JSONReadable {
    public func writeFields(into fields: inout JSONFields) {
        fields.field("deleted", deleted)
        fields.field("fields", self.fields)
        fields.field("groupRef", groupRef)
        fields.field("installationId", installationId)
        fields.field("integrationId", integrationId)
        fields.field("line", line)
        fields.field("objectName", objectName)
        fields.field("operation", raw: operation)
        fields.field("operationId", operationId)
        fields.field("projectId", projectId)
        fields.field("provider", raw: provider)
        fields.field("recordId", recordId)
        fields.field("version", version)
    }

    public init(json fields: JSONFieldReader) throws {
        self.init(
            projectId: try fields.string("projectId"), integrationId: try fields.string("integrationId"),
            installationId: try fields.string("installationId"), groupRef: try fields.string("groupRef"),
            provider: try fields.raw("provider", as: Provider.self), objectName: try fields.string("objectName"),
            recordId: try fields.string("recordId"), operation: try fields.raw("operation", as: WriteType.self),
            fields: try fields.object("fields"), deleted: try fields.bool("deleted"), operationId: try fields.string("operationId"),
            version: try fields.integer("version", as: Int64.self), line: try fields.optionalInteger("line", as: Int.self))
    }
}

extension CacheUpdateMessage: JSONWritable, JSONReadable {
    /// Also reads the earlier shape, one record's update with its whole change (`{change, applied,
    /// updatedAt}`), which a cache-invalidator of an earlier version may have left on the topic; a bulk
    /// row's update in that shape holds no record to count.
    public init(json fields: JSONFieldReader) throws {
        guard fields.present("change") != nil else {
            self.init(identity: try OperationIdentity(json: fields), content: try Held(json: fields))
            return
        }
        let change = try fields.nested("change", as: ChangeData.self)
        self.init(change: change, applied: try fields.bool("applied"), updatedAt: try fields.string("updatedAt"))
        if change.line != nil { content.records = [] }
    }
}

extension CacheUpdateMessage.Held: JSONWritable, JSONReadable {
    public func writeFields(into fields: inout JSONFields) {
        fields.field("provider", raw: provider)
        fields.field("records", list: records)
        fields.field("updatedAt", updatedAt)
    }

    public init(json fields: JSONFieldReader) throws {
        self.init(provider: try fields.raw("provider", as: Provider.self),
                  records: try fields.optionalList("records", of: CacheUpdateMessage.Record.self) ?? [],
                  updatedAt: try fields.string("updatedAt"))
    }
}

extension CacheUpdateMessage.Record: JSONWritable, JSONReadable {
    public func writeFields(into fields: inout JSONFields) {
        fields.field("recordId", recordId)
        fields.field("version", version)
        fields.field("applied", applied)
    }

    public init(json fields: JSONFieldReader) throws {
        self.init(recordId: try fields.string("recordId"), version: try fields.integer("version", as: Int64.self),
                  applied: try fields.bool("applied"))
    }
}

extension ChangeEvent {
    /// An event as it was read.
    init(specversion: String, type: String, source: String, subject: String, id: String, time: String, datacontenttype: String,
         data: ChangeData)
    {
        self.specversion = specversion
        self.type = type
        self.source = source
        self.subject = subject
        self.id = id
        self.time = time
        self.datacontenttype = datacontenttype
        self.data = data
    }
}

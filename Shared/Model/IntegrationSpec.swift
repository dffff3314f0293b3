/// An integration as an `amp.yaml` manifest declares it (the `Integration` of the manifest schema):
/// what it reads and writes at a provider, and whether it proxies calls.
public struct IntegrationSpec: Codable, Sendable, Equatable {
    public var name: String
    public var provider: String
    public var displayName: String?
    public var module: String?
    public var read: Read?
    public var write: Write?
    public var proxy: Proxy?
    /// Kept as declared; Writeback does not act on these yet.
    public var subscribe: JSONValue?
    public var watchSchema: JSONValue?

    public struct Read: Codable, Sendable, Equatable {
        public var objects: [ReadObject]?
    }

    public struct ReadObject: Codable, Sendable, Equatable {
        public var objectName: String
        public var destination: String?
        public var schedule: String?
        public var mapToName: String?
        public var mapToDisplayName: String?
        public var requiredFields: [Field]?
        public var optionalFields: [Field]?
        public var optionalFieldsAuto: String?
        public var backfill: JSONValue?
        public var delivery: JSONValue?
        public var enabled: String?
    }

    /// A field a read object declares: a provider field (`fieldName`, optionally renamed `mapToName`),
    /// or a name the backend uses (`mapToName` alone) that each customer maps to a field of theirs.
    public struct Field: Codable, Sendable, Equatable {
        public var fieldName: String?
        public var mapToName: String?
        public var mapToDisplayName: String?
        public var `default`: String?
        public var prompt: String?
    }

    public struct Write: Codable, Sendable, Equatable {
        public var objects: [WriteObject]?
    }

    public struct WriteObject: Codable, Sendable, Equatable {
        public var objectName: String
        /// Writes are reverse-mapped through the mappings the read object of the same name uses.
        public var inheritMapping: Bool?
        public var valueDefaults: ValueDefaults?
    }

    public struct ValueDefaults: Codable, Sendable, Equatable {
        /// Installations may set default values for any field of the object.
        public var allowAnyFields: Bool?
    }

    public struct Proxy: Codable, Sendable, Equatable {
        public var enabled: Bool?
        public var useModule: Bool?
    }

    public var writeObjects: [WriteObject] { write?.objects ?? [] }

    public func writeObject(_ name: String) -> WriteObject? {
        writeObjects.first { $0.objectName.lowercased() == name.lowercased() }
    }

    public func readObject(_ name: String) -> ReadObject? {
        read?.objects?.first { $0.objectName.lowercased() == name.lowercased() }
    }
}

/// What a customer chose when installing an integration (the `content` of an installation's config):
/// per read object the fields and the mappings of the backend's names to their own fields, per write
/// object the settings of fields (defaults, and whether they are written on create and update).
public struct InstallationConfig: Codable, Sendable, Equatable {
    public var provider: String?
    public var read: Objects<ReadObject>?
    public var write: Objects<WriteObject>?
    public var proxy: IntegrationSpec.Proxy?

    public init(provider: String? = nil, read: Objects<ReadObject>? = nil, write: Objects<WriteObject>? = nil) {
        self.provider = provider
        self.read = read
        self.write = write
    }

    public struct Objects<Object: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
        public var objects: [String: Object]?
        public init(objects: [String: Object]?) { self.objects = objects }
    }

    public struct ReadObject: Codable, Sendable, Equatable {
        public var objectName: String?
        public var schedule: String?
        public var destination: String?
        public var selectedFields: [String: Bool]?
        /// The backend's name → the customer's field.
        public var selectedFieldMappings: [String: String]?
        public init(objectName: String? = nil, selectedFieldMappings: [String: String]? = nil) {
            self.objectName = objectName
            self.selectedFieldMappings = selectedFieldMappings
        }
    }

    public struct WriteObject: Codable, Sendable, Equatable {
        public var objectName: String?
        public var selectedFieldSettings: [String: FieldSetting]?
        public init(objectName: String? = nil, selectedFieldSettings: [String: FieldSetting]? = nil) {
            self.objectName = objectName
            self.selectedFieldSettings = selectedFieldSettings
        }
    }

    /// How one provider field is written: a value used when the write does not set the field, and
    /// whether the field is written on create and on update (`always`, the default, or `never`).
    public struct FieldSetting: Codable, Sendable, Equatable {
        public var `default`: DefaultValue?
        public var writeOnCreate: String?
        public var writeOnUpdate: String?
        public init(default value: DefaultValue? = nil, writeOnCreate: String? = nil, writeOnUpdate: String? = nil) {
            self.default = value
            self.writeOnCreate = writeOnCreate
            self.writeOnUpdate = writeOnUpdate
        }
    }

    /// `{stringValue}`, `{integerValue}`, `{booleanValue}`, or `{value}` of any JSON type.
    public struct DefaultValue: Codable, Sendable, Equatable {
        public var stringValue: String?
        public var integerValue: Int?
        public var booleanValue: Bool?
        public var value: JSONValue?
        public init(value: JSONValue) { self.value = value }

        public var json: JSONValue? {
            if let value { return value }
            if let stringValue { return .string(stringValue) }
            if let integerValue { return .number(Double(integerValue)) }
            if let booleanValue { return .bool(booleanValue) }
            return nil
        }
    }

    public func readObject(_ name: String) -> ReadObject? {
        read?.objects?.first { $0.key.lowercased() == name.lowercased() }?.value
    }

    public func writeObject(_ name: String) -> WriteObject? {
        write?.objects?.first { $0.key.lowercased() == name.lowercased() }?.value
    }
}

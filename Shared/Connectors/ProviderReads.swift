import HTTPClient
import Shared

/// A read of records at the provider, in the provider-neutral terms the api's reads use.
public enum RecordRead: Sendable {
    /// One record by id, with the named fields (the provider's default set when empty).
    case get(object: String, id: String, fields: [String])
    /// A page of records: at most `limit`, after the cursor of the previous page.
    case list(object: String, fields: [String], limit: Int, after: String?)
    /// The records whose fields equal the given values (all of them must match).
    case search(object: String, equals: [(field: String, value: JSONValue)], fields: [String], limit: Int, after: String?)
}

/// What a provider answered to a read or a metadata request.
public enum ProviderAnswer<Value: Sendable>: Sendable {
    /// It answered with what was asked.
    case answered(Value)
    /// It refused (not found, a bad query, an outage): its status and body; `rateLimited` when the
    /// connection's request limit was the reason.
    case refused(status: Int, body: JSONValue, rateLimited: Bool)
    /// The access token was refused: renew it and ask again.
    case unauthorized(body: JSONValue)
    /// It could not be reached.
    case unreachable(String)
}

extension ProviderAnswer {
    /// Whether the token was refused.
    public var tokenRefused: Bool {
        if case .unauthorized = self { return true }
        return false
    }
}

/// An object's fields in a customer's account, as the provider describes them.
public struct ObjectMetadata: Sendable, Equatable {
    public var displayName: String
    /// By field name.
    public var fields: [String: FieldMetadata]

    public init(displayName: String, fields: [String: FieldMetadata]) {
        self.displayName = displayName
        self.fields = fields
    }
}

/// One field: the Ampersand `FieldMetadata` shape.
public struct FieldMetadata: Sendable, Equatable, Codable {
    public var fieldName: String
    public var displayName: String
    /// The provider's own type name.
    public var providerType: String
    /// boolean, singleSelect, multiSelect, date, datetime, int, float, reference, string or other.
    public var valueType: String
    public var readOnly: Bool
    public var isCustom: Bool
    public var isRequired: Bool
    public var values: [FieldValue]?
    public var referenceTo: [String]?

    public init(
        fieldName: String, displayName: String, providerType: String, valueType: String, readOnly: Bool, isCustom: Bool,
        isRequired: Bool, values: [FieldValue]? = nil, referenceTo: [String]? = nil
    ) {
        self.fieldName = fieldName
        self.displayName = displayName
        self.providerType = providerType
        self.valueType = valueType
        self.readOnly = readOnly
        self.isCustom = isCustom
        self.isRequired = isRequired
        self.values = values
        self.referenceTo = referenceTo
    }
}

/// One allowed value of a select field.
public struct FieldValue: Sendable, Equatable, Codable {
    public var value: String
    public var displayValue: String

    public init(value: String, displayValue: String) {
        self.value = value
        self.displayValue = displayValue
    }
}

extension FieldValue {
    /// A select field's options as a provider lists them: `value` names the key of each option's value
    /// (its id, for some providers), `label` its label; nil when there are none.
    static func options(_ list: JSONValue?, value key: String, label: String = "label") -> [FieldValue]? {
        let values = (list?.arrayValue ?? []).compactMap { option -> FieldValue? in
            guard let value = option[key]?.scalarText else { return nil }
            return FieldValue(value: value, displayValue: option[label]?.stringValue ?? value)
        }
        return values.isEmpty ? nil : values
    }
}

/// A record as the api's record shapes show it, read from a provider's answer.
public struct RecordSummary: Sendable, Equatable {
    public var id: String
    public var fields: [String: JSONValue]
    public var createdTime: JSONValue?
    public var updatedTime: JSONValue?

    public init(id: String, fields: [String: JSONValue], createdTime: JSONValue? = nil, updatedTime: JSONValue? = nil) {
        self.id = id
        self.fields = fields
        self.createdTime = createdTime
        self.updatedTime = updatedTime
    }
}

/// A raw request at a connection's host, with its credentials added by the connector.
public struct RawRequest: Sendable {
    public var method: String
    /// The whole URL, already checked to be under the connection's host.
    public var url: String
    /// Without any authorization: the connector adds the connection's own.
    public var headers: [(String, String)]
    public var body: [UInt8]?

    public init(method: String, url: String, headers: [(String, String)], body: [UInt8]?) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }
}

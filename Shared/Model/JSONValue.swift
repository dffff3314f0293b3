import Foundation

/// Any JSON value: records are provider-shaped objects whose fields we pass through untouched.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public var objectValue: [String: JSONValue]? {
        if case .object(let value) = self { return value }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var numberValue: Double? {
        if case .number(let value) = self { return value }
        return nil
    }

    /// A scalar rendered as text: ids may arrive as numbers (HubSpot) or strings (Salesforce).
    public var scalarText: String? {
        switch self {
        case .string(let value): return value
        case .number(let value):
            return value.rounded() == value && abs(value) < 9_007_199_254_740_992 ? String(Int64(value)) : String(value)
        case .bool(let value): return String(value)
        default: return nil
        }
    }

    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        // Most values are strings: trying them first saves a thrown mismatch per field.
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode([String: JSONValue].self) {
            self = .object(value)
        } else {
            self = .array(try container.decode([JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value):
            if value.rounded() == value && abs(value) < 9_007_199_254_740_992 {
                try container.encode(Int64(value))
            } else {
                try container.encode(value)
            }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByDictionaryLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral
{
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
}

extension [UInt8] {
    /// Whether JSON text holds `\u0000`, the only way JSON writes NUL, which PostgreSQL's text and jsonb
    /// cannot hold. (Also true of the text `\\u0000`, an escaped backslash and no NUL: a caller that
    /// finds it then looks at the decoded values.)
    public var containsNULEscape: Bool {
        var index = startIndex
        while let slash = self[index...].firstIndex(of: UInt8(ascii: "\\")) {
            if slash + 5 < endIndex, self[slash + 1] == UInt8(ascii: "u"),
               self[slash + 2 ... slash + 5].allSatisfy({ $0 == UInt8(ascii: "0") }) { return true }
            index = slash + 1
        }
        return false
    }
}

extension [UInt8] {
    /// JSON text as PostgreSQL can store it: the same bytes, or, where they hold NUL, the value written
    /// again with U+FFFD in its place (`JSONValue.replacingNUL`).
    public func storableJSON() throws -> [UInt8] {
        guard containsNULEscape else { return self }
        return try JSONCoding.encode(try JSONCoding.decode(JSONValue.self, from: self).replacingNUL())
    }
}

extension JSONValue {
    /// The same value with every NUL in a string or a key replaced by U+FFFD, so that it can be stored.
    public func replacingNUL() -> JSONValue {
        switch self {
        case .string(let text): .string(text.replacingOccurrences(of: "\0", with: "\u{FFFD}"))
        case .array(let items): .array(items.map { $0.replacingNUL() })
        case .object(let members):
            .object(Dictionary(members.map { ($0.key.replacingOccurrences(of: "\0", with: "\u{FFFD}"), $0.value.replacingNUL()) },
                               uniquingKeysWith: { first, _ in first }))
        default: self
        }
    }
}

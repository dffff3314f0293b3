import Foundation
import Shared

/// One way a value does not fit its schema: where (`filters.Email`, `properties[2]`; empty for the whole
/// value) and why.
public struct SchemaIssue: Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}

/// Checks a JSON value against the JSON Schema keywords the action schemas use: type, properties,
/// required, additionalProperties, propertyNames, enum, minimum, maximum, minLength, maxLength,
/// minProperties, items and the date / date-time formats.
public struct SchemaCheck: Sendable {
    /// Accept numbers and booleans sent as strings (`"limit": "1"`) and give back the converted value.
    public var coerceStrings: Bool

    public init(coerceStrings: Bool = false) { self.coerceStrings = coerceStrings }

    /// The value as checked (with strings converted when `coerceStrings`), and every issue found.
    public func check(_ value: JSONValue, against schema: JSONValue) -> (value: JSONValue, issues: [SchemaIssue]) {
        var issues: [SchemaIssue] = []
        let checked = check(value, schema, path: "", issues: &issues)
        return (checked, issues)
    }

    private func join(_ path: String, _ name: String) -> String { path.isEmpty ? name : "\(path).\(name)" }

    private func check(_ value: JSONValue, _ schema: JSONValue, path: String, issues: inout [SchemaIssue]) -> JSONValue {
        var value = value
        let types = schema["type"].map { $0.arrayValue?.compactMap(\.stringValue) ?? [$0.stringValue].compactMap { $0 } } ?? []
        if !types.isEmpty {
            if let converted = fitting(value, types) {
                value = converted
            } else {
                issues.append(.init(path: path, message: "must be \(types.map(Self.article).joined(separator: " or ")), not \(Self.kind(value))"))
                return value
            }
        }
        if let allowed = schema["enum"]?.arrayValue, !allowed.contains(value) {
            let shown = allowed.prefix(20).map { $0.scalarText.map { "'\($0)'" } ?? "null" }.joined(separator: ", ")
            issues.append(.init(path: path, message: "must be one of \(shown)\(allowed.count > 20 ? ", …" : ""); got \(Self.shown(value))"))
        }
        switch value {
        case .string(let text):
            if let minimum = schema["minLength"]?.intValue, text.count < minimum {
                issues.append(.init(path: path, message: minimum == 1 ? "must not be empty" : "must be at least \(minimum) characters"))
            }
            if let maximum = schema["maxLength"]?.intValue, text.count > maximum {
                issues.append(.init(path: path, message: "must be at most \(maximum) characters"))
            }
            if let format = schema["format"]?.stringValue, !Self.fits(text, format: format) {
                issues.append(.init(path: path, message: format == "date" ? "must be a date like 2026-11-26"
                    : "must be a date and time like 2026-11-26T10:04:11Z"))
            }
        case .number(let number):
            if types.contains("integer"), number.rounded() != number {
                issues.append(.init(path: path, message: "must be a whole number, not \(Self.shown(value))"))
            }
            if let minimum = schema["minimum"]?.numberValue, number < minimum {
                issues.append(.init(path: path, message: "must be at least \(Self.shown(.number(minimum)))"))
            }
            if let maximum = schema["maximum"]?.numberValue, number > maximum {
                issues.append(.init(path: path, message: "must be at most \(Self.shown(.number(maximum)))"))
            }
        case .array(let items):
            if let itemSchema = schema["items"] {
                value = .array(items.enumerated().map { index, item in check(item, itemSchema, path: "\(path)[\(index)]", issues: &issues) })
            }
        case .object(var members):
            let properties = schema["properties"]?.objectValue ?? [:]
            for name in (schema["required"]?.arrayValue ?? []).compactMap(\.stringValue) where members[name] == nil {
                let description = properties[name]?["description"]?.stringValue.map { " (\($0))" } ?? ""
                issues.append(.init(path: join(path, name), message: "is required\(description)"))
            }
            if let minimum = schema["minProperties"]?.intValue, members.count < minimum {
                issues.append(.init(path: path, message: minimum == 1 ? "must not be empty" : "needs at least \(minimum) members"))
            }
            let names = schema["propertyNames"]?["enum"]?.arrayValue?.compactMap(\.stringValue)
            for name in members.keys.sorted() {
                let memberPath = join(path, name)
                if let schema = properties[name] {
                    members[name] = check(members[name]!, schema, path: memberPath, issues: &issues)
                    continue
                }
                if let names, !names.contains(name) {
                    issues.append(.init(path: memberPath, message: "is not a field of this object" + Self.suggestion(name, names)))
                    continue
                }
                switch schema["additionalProperties"] {
                case .bool(false)?:
                    let known = properties.keys.sorted()
                    issues.append(.init(path: memberPath, message: "is not a parameter" + (path.isEmpty ? "" : " of \(path)")
                        + Self.suggestion(name, known)))
                case let extra? where extra.objectValue != nil:
                    members[name] = check(members[name]!, extra, path: memberPath, issues: &issues)
                default:
                    break
                }
            }
            value = .object(members)
        default:
            break
        }
        return value
    }

    /// The value as one of the types, converting a string when allowed; nil when it fits none.
    private func fitting(_ value: JSONValue, _ types: [String]) -> JSONValue? {
        for type in types {
            switch (type, value) {
            case ("string", .string), ("boolean", .bool), ("number", .number), ("object", .object), ("array", .array), ("null", .null):
                return value
            case ("integer", .number(let number)) where number.rounded() == number:
                return value
            default:
                continue
            }
        }
        guard coerceStrings, case .string(let text) = value else {
            if types.contains("integer"), case .number = value { return value }
            return nil
        }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for type in types {
            switch type {
            case "integer": if let number = Int(trimmed) { return .number(Double(number)) }
            case "number": if let number = Double(trimmed), number.isFinite { return .number(number) }
            case "boolean": if trimmed == "true" || trimmed == "false" { return .bool(trimmed == "true") }
            default: continue
            }
        }
        return nil
    }

    static func fits(_ text: String, format: String) -> Bool {
        switch format {
        case "date": return text.range(of: #"^\d{4}-\d{2}-\d{2}$"#, options: .regularExpression) != nil
        case "date-time":
            return text.range(of: #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$"#, options: .regularExpression) != nil
        default: return true
        }
    }

    static func article(_ type: String) -> String {
        switch type {
        case "integer": return "a whole number"
        case "object", "array": return "an \(type)"
        case "null": return "null"
        default: return "a \(type)"
        }
    }

    static func kind(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    static func shown(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): return "'\(text)'"
        case .number: return value.scalarText ?? ""
        default: return kind(value)
        }
    }

    /// "; did you mean 'X'?" for the closest known name, when one is close.
    static func suggestion(_ name: String, _ known: [String]) -> String {
        let lowered = name.lowercased()
        if let same = known.first(where: { $0.lowercased() == lowered }) { return "; did you mean '\(same)'?" }
        let scored = known.map { ($0, distance(lowered, $0.lowercased())) }.min { $0.1 < $1.1 }
        guard let (best, score) = scored, score <= max(2, name.count / 3) else { return "" }
        return "; did you mean '\(best)'?"
    }

    /// Edit distance between two strings.
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

extension JSONValue {
    var numberValue: Double? {
        if case .number(let value) = self { return value }
        return nil
    }

    var intValue: Int? { numberValue.map { Int($0) } }
}

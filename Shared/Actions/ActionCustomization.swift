import Foundation
import Shared

/// A customer's customization of an action instance.
///
/// - `fieldMapping`: provider field → `{"$var": "$.input.<name>"}` (the run's input `<name>` is written
///   to that field) or a constant written to it on every run. Only for create and update actions.
/// - `inputDefaults`: input name → the value a run uses when its input leaves it out.
public struct ActionCustomization: Codable, Sendable, Equatable {
    public var name: String?
    public var description: String?
    public var fieldMapping: [String: JSONValue] = [:]
    public var inputDefaults: [String: JSONValue] = [:]

    public init() {}

    public var isEmpty: Bool { self == ActionCustomization() }

    /// The input name a mapping value reads, when it is a `$var` of the input.
    static func source(_ expression: JSONValue) -> String? {
        guard let path = expression.objectValue?["$var"]?.stringValue, path.hasPrefix("$.input.") else { return nil }
        return String(path.dropFirst("$.input.".count))
    }

    /// This customization with a PATCH body merged in (`{name?, description?, config: {fieldMapping?,
    /// inputDefaults?}}`; a null entry removes it), or the issues that refuse it. `base` is the action's
    /// default input schema.
    public func merged(_ patch: [String: JSONValue], action: ActionDefinition, base: JSONValue)
        -> (ActionCustomization, [SchemaIssue])
    {
        var merged = self
        var issues: [SchemaIssue] = []
        for key in patch.keys.sorted() where !["name", "description", "config"].contains(key) {
            issues.append(.init(path: key, message: "cannot be customized; send name, description or config"
                + SchemaCheck.suggestion(key, ["name", "description", "config"])))
        }
        for key in ["name", "description"] {
            switch patch[key] {
            case nil: break
            case .null?: if key == "name" { merged.name = nil } else { merged.description = nil }
            case .string(let text)? where !text.isEmpty: if key == "name" { merged.name = text } else { merged.description = text }
            default: issues.append(.init(path: key, message: "must be a non-empty string or null"))
            }
        }
        guard let configValue = patch["config"] else { return (merged, issues) }
        guard let config = configValue.objectValue else {
            return (merged, issues + [.init(path: "config", message: "must be an object")])
        }
        for key in config.keys.sorted() where !["fieldMapping", "inputDefaults"].contains(key) {
            issues.append(.init(path: "config.\(key)", message: "is not customizable; send fieldMapping or inputDefaults"
                + SchemaCheck.suggestion(key, ["fieldMapping", "inputDefaults"])))
        }
        let properties = base["properties"]?.objectValue ?? [:]
        if let mappingValue = config["fieldMapping"] {
            if action.kind != .create && action.kind != .update {
                issues.append(.init(path: "config.fieldMapping", message: "only create and update actions map fields"))
            } else if let mapping = mappingValue.objectValue {
                for (field, expression) in mapping.sorted(by: { $0.key < $1.key }) {
                    let path = "config.fieldMapping.\(field)"
                    guard field != "id", let fieldSchema = properties[field] else {
                        issues.append(.init(path: path, message: "is not a writable field of \(action.providerObject ?? "the object")"
                            + SchemaCheck.suggestion(field, properties.keys.filter { $0 != "id" })))
                        continue
                    }
                    if expression == .null {
                        merged.fieldMapping[field] = nil
                    } else if expression.objectValue?["$var"] != nil {
                        guard let source = Self.source(expression),
                              source.range(of: #"^[A-Za-z_][A-Za-z0-9_]*$"#, options: .regularExpression) != nil, source != "id"
                        else {
                            issues.append(.init(path: path, message: "a $var must read the input, like {\"$var\": \"$.input.surname\"}"))
                            continue
                        }
                        merged.fieldMapping[field] = expression
                    } else {
                        let checked = SchemaCheck().check(expression, against: fieldSchema)
                        issues += checked.issues.map { .init(path: path + ($0.path.isEmpty ? "" : ".\($0.path)"), message: $0.message) }
                        if checked.issues.isEmpty { merged.fieldMapping[field] = expression }
                    }
                }
            } else {
                issues.append(.init(path: "config.fieldMapping", message: "must be an object of field → {\"$var\": \"$.input.name\"} or a value"))
            }
        }
        if let defaultsValue = config["inputDefaults"] {
            guard let defaults = defaultsValue.objectValue else {
                return (merged, issues + [.init(path: "config.inputDefaults", message: "must be an object of input name → value")])
            }
            var withMapping = merged
            withMapping.inputDefaults = [:]
            let inputs = withMapping.inputSchema(base: base)["properties"]?.objectValue ?? [:]
            for (name, value) in defaults.sorted(by: { $0.key < $1.key }) {
                let path = "config.inputDefaults.\(name)"
                if value == .null {
                    merged.inputDefaults[name] = nil
                    continue
                }
                guard name != "id", let schema = inputs[name] else {
                    issues.append(.init(path: path, message: "is not an input of this action"
                        + SchemaCheck.suggestion(name, inputs.keys.filter { $0 != "id" })))
                    continue
                }
                let checked = SchemaCheck().check(value, against: schema)
                issues += checked.issues.map { .init(path: path + ($0.path.isEmpty ? "" : ".\($0.path)"), message: $0.message) }
                if checked.issues.isEmpty { merged.inputDefaults[name] = value }
            }
        }
        return (merged, issues)
    }

    /// The input schema of the customized instance: a mapped field is fed by its mapping (a `$var`
    /// source becomes an input, required when the field was), a default makes its input optional.
    public func inputSchema(base: JSONValue) -> JSONValue {
        guard var schema = base.objectValue else { return base }
        var properties = schema["properties"]?.objectValue ?? [:]
        var required = (schema["required"]?.arrayValue ?? []).compactMap(\.stringValue)
        let baseProperties = properties
        for (field, expression) in fieldMapping.sorted(by: { $0.key < $1.key }) {
            let source = Self.source(expression)
            guard source != field else { continue }
            let wasRequired = required.contains(field)
            properties[field] = nil
            required.removeAll { $0 == field }
            guard let source else { continue }
            if properties[source] == nil, var sourceSchema = baseProperties[field]?.objectValue {
                sourceSchema["description"] = .string("written to \(field)")
                sourceSchema["title"] = .string(source)
                properties[source] = .object(sourceSchema)
            }
            if wasRequired, !required.contains(source) { required.append(source) }
        }
        for (name, value) in inputDefaults {
            guard var property = properties[name]?.objectValue else { continue }
            property["default"] = value
            properties[name] = .object(property)
            required.removeAll { $0 == name }
        }
        schema["properties"] = .object(properties)
        schema["required"] = required.isEmpty ? nil : .array(required.sorted().map { .string($0) })
        return .object(schema)
    }

    /// The input with the defaults of what it leaves out.
    public func withDefaults(_ input: [String: JSONValue]) -> [String: JSONValue] {
        input.merging(inputDefaults) { given, _ in given }
    }

    /// What a run writes to the provider, from its (checked) input: the input's fields, with each mapped
    /// field taken from its source or set to its constant (a source read by a mapping is not written
    /// under its own name).
    public func record(from input: [String: JSONValue]) -> [String: JSONValue] {
        var record = input
        record["id"] = nil
        for (field, expression) in fieldMapping {
            guard let source = Self.source(expression), source != field else { continue }
            if fieldMapping[source] == nil { record[source] = nil }
        }
        for (field, expression) in fieldMapping {
            if let source = Self.source(expression) {
                record[field] = input[source]
            } else {
                record[field] = expression
            }
        }
        return record
    }
}

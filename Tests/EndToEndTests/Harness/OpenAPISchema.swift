import Foundation
import Manifest
import Shared

/// Checks JSON answers against the response schemas of an OpenAPI 3 document (the subset its schemas
/// use: $ref, type, nullable, enum, required, properties, additionalProperties, items, allOf, anyOf,
/// oneOf). Answers every mismatch with where it is.
struct OpenAPISchema {
    let document: JSONValue

    /// A document kept in Tests/EndToEndTests/Oracles, JSON or YAML.
    init(oracle path: String) throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Oracles/\(path)")
        let data = try Data(contentsOf: url)
        document = path.hasSuffix(".yaml")
            ? try Manifest.jsonValue(yaml: String(decoding: data, as: UTF8.self))
            : try JSONCoding.decode(JSONValue.self, from: Array(data))
    }

    /// A checker of values against standalone JSON Schemas (which refer to nothing).
    init(document: JSONValue = .null) {
        self.document = document
    }

    /// The mismatches of a value with a JSON Schema.
    func problems(_ value: JSONValue, schema: JSONValue) -> [String] {
        check(value, schema, at: "$")
    }

    /// The mismatches of `body` with the schema of `path`'s `method` answer with `status`; a status the
    /// operation does not document is a mismatch itself.
    func problems(_ body: JSONValue, path: String, method: String, status: Int) -> [String] {
        guard let operation = document["paths"]?[path]?[method.lowercased()] else { return ["\(method) \(path) is not in the document"] }
        guard var response = operation["responses"]?[String(status)] else {
            return ["\(method) \(path) does not document status \(status)"]
        }
        if let reference = response["$ref"]?.stringValue { response = resolve(reference) ?? .null }
        guard let schema = response["content"]?["application/json"]?["schema"] else { return [] }
        return check(body, schema, at: "$")
    }

    private func resolve(_ reference: String) -> JSONValue? {
        var node: JSONValue? = document
        for part in reference.dropFirst(2).split(separator: "/") { node = node?[String(part)] }
        return node
    }

    private func check(_ value: JSONValue, _ schema: JSONValue, at path: String) -> [String] {
        if let reference = schema["$ref"]?.stringValue {
            guard let target = resolve(reference) else { return ["\(path): unresolvable \(reference)"] }
            return check(value, target, at: path)
        }
        if value == .null { return schema["nullable"] == true || schema["type"] == nil ? [] : ["\(path): null where not nullable"] }
        var problems: [String] = []
        for part in schema["allOf"]?.arrayValue ?? [] { problems += check(value, part, at: path) }
        for key in ["anyOf", "oneOf"] {
            if let options = schema[key]?.arrayValue, !options.contains(where: { check(value, $0, at: path).isEmpty }) {
                problems.append("\(path): matches none of \(key)")
            }
        }
        if let allowed = schema["enum"]?.arrayValue, !allowed.contains(value) { problems.append("\(path): \(value) is not in the enum") }
        switch (schema["type"]?.stringValue, value) {
        case (nil, _): break
        case ("object", .object(let object)):
            for name in schema["required"]?.arrayValue?.compactMap(\.stringValue) ?? [] where object[name] == nil {
                problems.append("\(path).\(name): required but missing")
            }
            let properties = schema["properties"]?.objectValue ?? [:]
            for (name, item) in object {
                if let property = properties[name] {
                    problems += check(item, property, at: "\(path).\(name)")
                } else if schema["additionalProperties"] == false {
                    problems.append("\(path).\(name): not allowed")
                } else if let extra = schema["additionalProperties"], extra.objectValue != nil {
                    problems += check(item, extra, at: "\(path).\(name)")
                }
            }
        case ("array", .array(let items)):
            if let itemSchema = schema["items"] {
                for (index, item) in items.enumerated() { problems += check(item, itemSchema, at: "\(path)[\(index)]") }
            }
        case ("string", .string), ("boolean", .bool), ("number", .number): break
        case ("integer", .number(let number)) where number == number.rounded(): break
        case (let type?, _): problems.append("\(path): \(value) is not of type \(type)")
        }
        return problems
    }
}

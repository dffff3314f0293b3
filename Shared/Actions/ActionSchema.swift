import Connectors
import Shared

/// The JSON Schemas of an action's input and output, built from the object's fields in the customer's
/// own account (`FieldMetadata` by field name, as the metadata read of describe / properties gives them),
/// so custom fields appear as parameters.
public enum ActionSchema {
    public static let maxLimit = 100

    /// The schema of the action's input.
    public static func input(_ action: ActionDefinition, provider: Provider, fields: [String: JSONValue]) -> JSONValue {
        let known = fields.filter { $0.key != "__displayName" }
        let writable = known.filter { $0.value["readOnly"] != .bool(true) }
        let fieldNames = JSONValue.array(known.keys.sorted().map { .string($0) })
        let object = action.providerObject ?? ""
        var properties: [String: JSONValue] = [:]
        var required: [String] = []
        let idParameter: JSONValue = ["type": "string", "minLength": 1, "description": .string("the \(object) record's id")]
        let limit: JSONValue = ["type": "integer", "minimum": 1, "maximum": .number(Double(maxLimit)), "default": 10,
                                "description": "how many records to return at most"]
        let wanted: JSONValue = ["type": "array", "items": ["type": "string", "enum": fieldNames],
                                 "description": "the fields to return (all when omitted)"]
        switch action.kind {
        case .get:
            properties["id"] = ["type": "string", "minLength": 1,
                                "description": .string("the \(object) record's id; without it, a page of records")]
            properties["limit"] = limit
            properties["properties"] = wanted
            if provider.profile.pagesWithCursor {
                properties["after"] = ["type": "string", "description": "the paging cursor of the previous page (paging.next.after)"]
            }
        case .search:
            properties["filters"] = [
                "type": "object", "minProperties": 1, "propertyNames": ["enum": fieldNames],
                "additionalProperties": ["type": ["string", "number", "boolean"]],
                "description": "field name → the value it must equal; every filter must match",
            ]
            properties["limit"] = limit
            properties["properties"] = wanted
            if provider.profile.pagesWithCursor {
                properties["after"] = ["type": "string", "description": "the paging cursor of the previous page (paging.next.after)"]
            }
            required = ["filters"]
        case .create, .update:
            for (name, field) in writable { properties[name] = fieldSchema(field) }
            if action.kind == .create {
                required = writable.filter { $0.value["isRequired"] == .bool(true) }.map(\.key).sorted()
            } else {
                properties["id"] = idParameter
                required = ["id"]
            }
        case .delete:
            properties["id"] = idParameter
            required = ["id"]
        case .httpRequest:
            properties["method"] = ["type": "string", "enum": ["GET", "POST", "PUT", "PATCH", "DELETE"], "default": "GET",
                                    "description": "the HTTP method"]
            properties["path"] = ["type": "string", "minLength": 1,
                                  "description": "an absolute path at the provider's API host, such as the path of an object's records"]
            properties["query"] = ["type": "object", "additionalProperties": ["type": ["string", "number", "boolean"]],
                                   "description": "query parameters"]
            properties["headers"] = ["type": "object", "additionalProperties": ["type": "string"],
                                     "description": "request headers (Authorization is set from the stored credentials)"]
            properties["body"] = ["description": "the request body: JSON, or a string sent as it is"]
            required = ["path"]
        }
        var schema: [String: JSONValue] = [
            "type": "object", "title": .string(action.name), "description": .string(action.description),
            "properties": .object(properties), "additionalProperties": false,
        ]
        if !required.isEmpty { schema["required"] = .array(required.map { .string($0) }) }
        if action.kind == .update { schema["minProperties"] = 2 }
        return .object(schema)
    }

    /// A field's schema from its metadata: type, title, description, picklist values.
    public static func fieldSchema(_ field: JSONValue) -> JSONValue {
        let label = field["displayName"]?.stringValue ?? field["fieldName"]?.stringValue ?? ""
        var schema: [String: JSONValue] = ["title": .string(label)]
        let custom = field["isCustom"] == .bool(true)
        schema["description"] = .string(label + (custom ? " (custom field)" : ""))
        switch field["valueType"]?.stringValue ?? "string" {
        case "boolean": schema["type"] = "boolean"
        case "int": schema["type"] = "integer"
        case "float": schema["type"] = "number"
        case "date":
            schema["type"] = "string"
            schema["format"] = "date"
        case "datetime":
            schema["type"] = "string"
            schema["format"] = "date-time"
        case "singleSelect":
            schema["type"] = "string"
            let values = (field["values"]?.arrayValue ?? []).compactMap { $0["value"] }
            if !values.isEmpty { schema["enum"] = .array(values) }
        default:
            schema["type"] = "string"
        }
        return .object(schema)
    }

    /// A record in the output: its id, its fields, and when it was made and last changed.
    static let record: JSONValue = [
        "type": "object", "required": ["id", "fields"],
        "properties": [
            "id": ["type": "string"], "fields": ["type": "object"],
            "createdTime": ["type": "string"], "updatedTime": ["type": "string"],
        ],
    ]

    /// The schema of the action's output (the `output` of a run).
    public static func output(_ action: ActionDefinition) -> JSONValue {
        switch action.kind {
        case .get:
            return ["type": "object", "properties": [
                "record": record, "records": ["type": "array", "items": record], "cursor": ["type": "string"],
            ], "description": "record when an id was given, otherwise records (and cursor when there are more)"]
        case .search:
            return ["type": "object", "required": ["records"], "properties": [
                "records": ["type": "array", "items": record], "cursor": ["type": "string"],
            ]]
        case .create, .update, .delete:
            return ["type": "object", "required": ["id", "operationId"], "properties": [
                "id": ["type": "string", "description": "the record's id at the provider"],
                "operationId": ["type": "string", "description": "the write's operation"],
            ]]
        case .httpRequest:
            return ["type": "object", "required": ["status", "headers"], "properties": [
                "status": ["type": "integer"], "headers": ["type": "object"], "data": ["description": "the response body"],
            ]]
        }
    }
}

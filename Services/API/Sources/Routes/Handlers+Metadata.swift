import Foundation
import HTTPClient
import Hummingbird
import ProviderAccess
import Shared

/// `GET /v1/projects/{p}/integrations/{i}/objects/{object}/metadata?groupRef=…`: the fields of an object
/// in the customer's own provider account (Salesforce describe, HubSpot properties), in the Ampersand
/// `ObjectMetadata` shape. Kept for `API_METADATA_CACHE_SECONDS`; `refresh=true` reads it again.
extension Handlers {
    func objectMetadata(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let project = try await project(request, context)
        let integration = try await control.integration(context.parameters.get("integration") ?? "", project: project)
        let query = request.uri.queryParameters
        guard let groupRef = query["groupRef"].map(String.init), !groupRef.isEmpty else {
            throw Problem.badRequest("groupRef is required", in: "query", name: "groupRef")
        }
        let installationId = try await control.installationId(integration: integration, groupRef: groupRef)
        guard let installation = try await installations.context(installationId) else {
            throw Problem.notFound("the installation was removed", name: "groupRef", in: "query")
        }
        let objectName = context.parameters.get("object") ?? ""
        let providerObject = integration.provider.providerObject(for: objectName)
        let fields = try await objectFields(providerObject, installation: installation, provider: integration.provider,
                                            refresh: query["refresh"] == "true")
        var shown = fields.objectValue ?? [:]
        if query["excludeReadOnly"] == "true" { shown = shown.filter { $0.value["readOnly"] != .bool(true) } }
        var answer: [String: JSONValue] = ["name": .string(providerObject), "fields": .object(shown)]
        if let label = fields["__displayName"]?.stringValue { answer["displayName"] = .string(label) }
        answer["fields"] = .object(shown.filter { $0.key != "__displayName" })
        if objectName != providerObject { answer["mappedObjectName"] = .string(objectName) }
        return jsonResponse(200, try JSONCoding.encode(JSONValue.object(answer)))
    }

    /// The provider object's fields in the customer's account as `describe` reads them, kept for
    /// `API_METADATA_CACHE_SECONDS` (`refresh`: read them again).
    func objectFields(_ providerObject: String, installation: InstallationContext, provider: Provider, refresh: Bool = false)
        async throws -> JSONValue
    {
        let key = [installation.installationId, providerObject]
        if refresh { metadata.remove(key) }
        return try await metadata.value(for: key) {
            try await describe(providerObject, installation: installation, provider: provider)
        } ?? .object([:])
    }

    /// The object's fields as `FieldMetadata`, keyed by field name (the display name under `__displayName`).
    private func describe(_ object: String, installation: InstallationContext, provider: Provider) async throws -> JSONValue {
        let base = installation.connection.baseURL
        let url = provider == .salesforce
            ? "\(base)/services/data/v60.0/sobjects/\(object)/describe" : "\(base)/crm/v3/properties/\(object)"
        let response = try await providerCall(installation) { connection in
            ProviderRequest(method: "GET", url: url, headers: [("Authorization", "Bearer \(connection.accessToken)"), ("Accept", "application/json")],
                        timeout: configuration.providerTimeout)
        }
        if response.status == 404 {
            throw Problem.notFound("\(provider.rawValue) has no object \(object) for this customer", name: "objectName")
        }
        guard response.status == 200, let body = try? JSONCoding.decode(JSONValue.self, from: response.body) else {
            throw Problem(title: "Bad Gateway", status: 502, detail: "\(provider.rawValue) answered the metadata request with HTTP \(response.status)")
        }
        var fields: [String: JSONValue] = [:]
        switch provider {
        case .salesforce:
            fields["__displayName"] = body["label"] ?? .string(object)
            for field in body["fields"]?.arrayValue ?? [] {
                guard let name = field["name"]?.stringValue else { continue }
                let type = field["type"]?.stringValue ?? "string"
                var entry: [String: JSONValue] = [
                    "fieldName": .string(name), "displayName": field["label"] ?? .string(name), "providerType": .string(type),
                    "valueType": .string(Self.valueType(salesforce: type)),
                    "readOnly": .bool(field["createable"] == .bool(false) && field["updateable"] == .bool(false)),
                    "isCustom": field["custom"] ?? .bool(name.hasSuffix("__c")),
                    "isRequired": .bool(field["nillable"] == .bool(false) && field["defaultedOnCreate"] != .bool(true)
                        && field["createable"] == .bool(true)),
                ]
                let values = (field["picklistValues"]?.arrayValue ?? []).compactMap { option -> JSONValue? in
                    guard let value = option["value"]?.stringValue else { return nil }
                    return ["value": .string(value), "displayValue": option["label"] ?? .string(value)]
                }
                if !values.isEmpty { entry["values"] = .array(values) }
                if let references = field["referenceTo"]?.arrayValue, !references.isEmpty { entry["referenceTo"] = .array(references) }
                fields[name] = .object(entry)
            }
        case .hubspot:
            fields["__displayName"] = .string(object)
            for property in body["results"]?.arrayValue ?? [] {
                guard let name = property["name"]?.stringValue else { continue }
                let type = property["type"]?.stringValue ?? "string"
                let fieldType = property["fieldType"]?.stringValue ?? ""
                var entry: [String: JSONValue] = [
                    "fieldName": .string(name), "displayName": property["label"] ?? .string(name), "providerType": .string(type),
                    "valueType": .string(Self.valueType(hubspot: type, fieldType: fieldType)),
                    "readOnly": property["modificationMetadata"]?["readOnlyValue"] ?? false,
                    "isCustom": .bool(property["hubspotDefined"] != .bool(true)), "isRequired": false,
                ]
                let values = (property["options"]?.arrayValue ?? []).compactMap { option -> JSONValue? in
                    guard let value = option["value"]?.stringValue else { return nil }
                    return ["value": .string(value), "displayValue": option["label"] ?? .string(value)]
                }
                if !values.isEmpty { entry["values"] = .array(values) }
                fields[name] = .object(entry)
            }
        }
        return .object(fields)
    }

    static func valueType(salesforce type: String) -> String {
        switch type {
        case "boolean": return "boolean"
        case "picklist": return "singleSelect"
        case "multipicklist": return "multiSelect"
        case "date": return "date"
        case "datetime": return "datetime"
        case "int": return "int"
        case "double", "currency", "percent": return "float"
        case "reference": return "reference"
        case "string", "textarea", "email", "phone", "url", "id": return "string"
        default: return "other"
        }
    }

    static func valueType(hubspot type: String, fieldType: String) -> String {
        switch (type, fieldType) {
        case ("bool", _), (_, "booleancheckbox"): return "boolean"
        case ("enumeration", "checkbox"): return "multiSelect"
        case ("enumeration", _): return "singleSelect"
        case ("date", _): return "date"
        case ("datetime", _): return "datetime"
        case ("number", _): return "float"
        case ("string", _), ("phone_number", _): return "string"
        default: return "other"
        }
    }
}

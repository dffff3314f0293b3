import Connectors
import Foundation
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
        let providerObject = integration.provider.profile.objectName(for: objectName)
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
        let answer = try await withConnection(installation, refused: \.tokenRefused) { connector, connection in
            await connector.describe(object, connection: connection)
        }
        switch answer {
        case .answered(let metadata):
            var fields = try JSONCoding.decode([String: JSONValue].self, from: JSONCoding.encode(metadata.fields))
            fields["__displayName"] = .string(metadata.displayName)
            return .object(fields)
        case .refused(404, _, _):
            throw Problem.notFound("\(provider.rawValue) has no object \(object) for this customer", name: "objectName")
        case .refused(let status, _, _):
            throw Problem(title: "Bad Gateway", status: 502, detail: "\(provider.rawValue) answered the metadata request with HTTP \(status)")
        case .unauthorized:
            throw Problem(title: "Bad Gateway", status: 502, detail: "\(provider.rawValue) answered the metadata request with HTTP 401")
        case .unreachable(let reason):
            throw Problem(title: "Bad Gateway", status: 502, detail: "the provider could not be reached: \(reason)")
        }
    }
}

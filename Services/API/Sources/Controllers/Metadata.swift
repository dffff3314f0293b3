import Connectors
import Foundation
import Hummingbird
import ProviderAccess
import Shared

/// `GET /v1/projects/{p}/integrations/{i}/objects/{object}/metadata?groupRef=…`: the fields of an object
/// in the customer's own provider account (Salesforce describe, HubSpot properties), in the Ampersand
/// `ObjectMetadata` shape. Kept for `API_METADATA_CACHE_SECONDS`; `refresh=true` reads it again.
extension IntegrationsController {
    func objectMetadata(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let integration = try await control.integration(context.path("integration"), project: project)
        let query = request.uri.queryParameters
        guard let groupRef = query["groupRef"].map(String.init), !groupRef.isEmpty else {
            throw Problem.badRequest("groupRef is required", in: "query", name: "groupRef")
        }
        let installationId: String
        do {
            installationId = try await control.installationId(integration: integration, groupRef: groupRef)
        } catch let problem as Problem where problem.statusCode == 404 {
            throw Problem.notFound(problem.detail, name: "groupRef", in: "query")
        }
        guard let installation = try await installations.context(installationId) else {
            throw Problem.notFound("the installation was removed", name: "groupRef", in: "query")
        }
        let objectName = context.path("object")
        if let problem = integration.provider.profile.objectNameProblem(objectName) {
            throw Problem.notFound(problem, name: "objectName")
        }
        let providerObject = integration.provider.profile.objectName(for: objectName)
        let fields = try await providers.objectFields(providerObject, installation: installation, provider: integration.provider,
                                            refresh: query["refresh"] == "true")
        var shown = fields.objectValue ?? [:]
        if query["excludeReadOnly"] == "true" { shown = shown.filter { $0.value["readOnly"] != .bool(true) } }
        var answer: [String: JSONValue] = ["name": .string(providerObject), "fields": .object(shown)]
        if let label = fields["__displayName"]?.stringValue { answer["displayName"] = .string(label) }
        answer["fields"] = .object(shown.filter { $0.key != "__displayName" })
        if objectName != providerObject { answer["mappedObjectName"] = .string(objectName) }
        return jsonResponse(200, try JSONCoding.encode(JSONValue.object(answer)))
    }
}

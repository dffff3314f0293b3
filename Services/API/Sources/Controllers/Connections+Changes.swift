import Hummingbird
import Postgres
import ProviderAccess
import Shared

extension ConnectionsController {
    static let updateMasks = ["apiKey", "providerWorkspaceRef", "providerMetadata"]

    /// `PATCH …/connections/{connectionId}` with `{updateMask, connection}`: a new API key (sealed like
    /// the first), a new workspace reference, or a new base URL (`providerMetadata.baseUrl.value`).
    func updateConnection(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let text = context.path("connection")
        guard let id = normalizedUUID(text), let row = try await database.query(
            "SELECT provider, secrets FROM connections WHERE id = $1::uuid AND project_id = $2::uuid", [id, project.id]).first,
            let provider = Provider(rawValue: row["provider"] ?? "")
        else { throw Problem.notFound("connection \(text) was not found", name: "connectionId") }
        let body = try await jsonObject(request)
        guard let mask = body["updateMask"]?.arrayValue?.compactMap(\.stringValue), !mask.isEmpty,
              mask.allSatisfy(Self.updateMasks.contains)
        else {
            throw Problem.badRequest("updateMask is required and may name " + Self.updateMasks.joined(separator: ", "), name: "updateMask",
                                     remedy: "Allowed masks: " + Self.updateMasks.joined(separator: ", "))
        }
        let change = body["connection"]?.objectValue ?? [:]
        var secrets = row["secrets"]
        var workspace: String?, baseURL: String?
        if mask.contains("apiKey") {
            guard let key = change["apiKey"]?.stringValue, !key.isEmpty else {
                throw Problem.badRequest("connection.apiKey is required by the mask", name: "connection.apiKey")
            }
            var credentials = try secrets.map { try StoredCredentials.opened($0, by: configuration.secrets, connectionId: id) }
                ?? StoredCredentials()
            guard credentials.accessToken == nil || credentials.apiKey != nil else {
                throw Problem.unprocessable("connection \(id) uses OAuth; an API key cannot replace its tokens",
                                            issues: [.init(in: "body", name: "connection.apiKey", detail: "auth scheme mismatch")])
            }
            credentials.apiKey = key
            secrets = try credentials.sealed(by: configuration.secrets, connectionId: id)
        }
        if mask.contains("providerWorkspaceRef") {
            guard let ref = change["providerWorkspaceRef"]?.stringValue, !ref.isEmpty else {
                throw Problem.badRequest("connection.providerWorkspaceRef is required by the mask", name: "connection.providerWorkspaceRef")
            }
            workspace = ref
        }
        if mask.contains("providerMetadata") {
            guard change["providerMetadata"]?["baseUrl"]?["value"] != nil else {
                throw Problem.badRequest("connection.providerMetadata.baseUrl.value is required by the mask",
                                         name: "connection.providerMetadata.baseUrl.value")
            }
            baseURL = try connectionBaseURL(provider, workspace: nil, metadata: change["providerMetadata"])
        }
        try await database.query(
            """
            UPDATE connections SET secrets = $3, provider_workspace_ref = coalesce($4, provider_workspace_ref),
                base_url = coalesce($5, base_url), status = CASE WHEN $6::boolean THEN 'created' ELSE status END, updated_at = now()
            WHERE id = $1::uuid AND project_id = $2::uuid
            """, [id, project.id, secrets, workspace, baseURL, mask.contains("apiKey") ? "true" : "false"])
        installations.cache.removeAll()
        let connection = try await connectionJSON(id, project: project.id)
        await notifications.tell(NotificationEvent(type: .connectionUpdated, projectId: project.id, data: ["connection": connection]))
        return jsonResponse(200, try JSONCoding.encode(connection))
    }

    /// `DELETE …/connections/{connectionId}`: refused (409) while an installation uses it.
    func deleteConnection(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let text = context.path("connection")
        guard let id = normalizedUUID(text) else { throw Problem.notFound("connection \(text) was not found", name: "connectionId") }
        let connection = try await connectionJSON(id, project: project.id)
        do {
            try await database.query("DELETE FROM connections WHERE id = $1::uuid AND project_id = $2::uuid", [id, project.id])
        } catch let error as PostgresError where error.sqlState == "23503" {
            throw Problem.conflict("connection \(id) is used by installations; delete them first", in: "path", name: "connectionId")
        }
        installations.cache.removeAll()
        await notifications.tell(NotificationEvent(type: .connectionDeleted, projectId: project.id, data: ["connection": connection]))
        return Response(status: .noContent)
    }
}

import Connectors
import Foundation
import HTTPClient
import Hummingbird
import Logging
import Pipeline
import Postgres
import ProviderAccess
import Shared
import Schema

/// Provider apps (a project's OAuth client), connections (a customer's account at a provider, with
/// sealed credentials) and the OAuth authorization-code flow that makes them. No answer carries a
/// token or secret.
struct ConnectionsController: Controller {
    let configuration: APIConfiguration
    let control: ControlData
    let database: PostgresPool
    let installations: InstallationStore
    let connectors: Connectors
    let notifications: NotificationPublisher
    let logger: Logger

    func addRoutes(to projects: RouterGroup<APIContext>) {
        projects.post("provider-apps") { try await self.createProviderApp($0, $1) }
        projects.post("connections:generate") { try await self.generateConnection($0, $1) }
        projects.get("connections") { try await self.listConnections($0, $1) }
        projects.get("connections/:connection") { try await self.getConnection($0, $1) }
        projects.patch("connections/:connection") { try await self.updateConnection($0, $1) }
        projects.delete("connections/:connection") { try await self.deleteConnection($0, $1) }
    }

    /// The OAuth routes: the project is named in the body (its key checked there) or by the flow's state.
    func addOAuthRoutes(to open: RouterGroup<APIContext>) {
        open.post("v1/oauth-connect") { try await self.oauthConnect($0, $1) }
        open.get("callbacks/v1/oauth") { try await self.oauthCallback($0, $1) }
    }
}

extension ConnectionsController {
    func createProviderApp(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let body = try await jsonObject(request)
        let provider = try providerField(body["provider"], name: "provider")
        guard let clientId = body["clientId"]?.stringValue, !clientId.isEmpty else {
            throw Problem.badRequest("clientId is required", name: "clientId")
        }
        guard let clientSecret = body["clientSecret"]?.stringValue, !clientSecret.isEmpty else {
            throw Problem.badRequest("clientSecret is required", name: "clientSecret")
        }
        let scopes = body["scopes"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let existing = try await database.query(
            "SELECT id::text AS id FROM provider_apps WHERE project_id = $1::uuid AND provider = $2", [project.id, provider.rawValue]
        ).first?["id"]
        let appId = existing ?? UUID().uuidString.lowercased()
        let secrets = try ProviderAppSecrets(clientSecret: clientSecret).sealed(by: configuration.secrets, appId: appId)
        let row = try await database.query(
            """
            INSERT INTO provider_apps (id, project_id, provider, client_id, scopes, secrets)
            VALUES ($1::uuid, $2::uuid, $3, $4, $5::jsonb, $6)
            ON CONFLICT (project_id, provider) DO UPDATE SET client_id = EXCLUDED.client_id, scopes = EXCLUDED.scopes,
                secrets = EXCLUDED.secrets, updated_at = now()
            WHERE provider_apps.id = EXCLUDED.id
            RETURNING id::text AS id, \(timestamp("created_at")) AS create_time, \(timestamp("updated_at")) AS update_time
            """, [appId, project.id, provider.rawValue, clientId, try JSONCoding.encodeString(scopes), secrets]
        ).first
        // The secret is sealed for the app's id: a concurrent first store of this provider's app wins.
        guard let row else {
            throw Problem(title: "Conflict", status: 409, detail: "the \(provider.rawValue) app was stored by another request at once; send it again")
        }
        installations.cache.removeAll()
        let answer: JSONValue = [
            "id": .string(try row.string("id")), "projectId": .string(project.id), "provider": .string(provider.rawValue),
            "clientId": .string(clientId), "scopes": .array(scopes.map(JSONValue.string)),
            "createTime": .string(try row.string("create_time")), "updateTime": .string(try row.string("update_time")),
        ]
        return jsonResponse(existing == nil ? 201 : 200, try JSONCoding.encode(answer))
    }

    /// `POST /v1/projects/{p}/connections:generate`: a connection from credentials the backend already
    /// holds (an access and refresh token, or an API key such as a HubSpot private-app token).
    func generateConnection(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let body = try await jsonObject(request)
        let provider = try providerField(body["provider"], name: "provider")
        let groupRef = try requiredString(body, "groupRef")
        let consumerRef = try requiredString(body, "consumerRef")
        let workspace = body["providerWorkspaceRef"]?.stringValue
        var credentials = StoredCredentials()
        let authScheme: String
        if let apiKey = body["apiKey"]?.stringValue, !apiKey.isEmpty {
            credentials.apiKey = apiKey
            authScheme = "apiKey"
        } else if let tokens = body["oauth2AuthorizationCode"]?.objectValue {
            guard let access = tokens["accessToken"]?["token"]?.stringValue, !access.isEmpty else {
                throw Problem.badRequest("oauth2AuthorizationCode.accessToken.token is required",
                                         name: "oauth2AuthorizationCode.accessToken.token")
            }
            credentials.accessToken = access
            credentials.refreshToken = tokens["refreshToken"]?["token"]?.stringValue
            authScheme = "oauth2/authorizationCode"
        } else {
            throw Problem.badRequest("send the credentials: oauth2AuthorizationCode {accessToken, refreshToken} or apiKey",
                                     name: "oauth2AuthorizationCode")
        }
        let baseURL = try connectionBaseURL(provider, workspace: workspace, metadata: body["providerMetadata"])
        // Renewals go to the login host, unless the connection names its own API host (which serves them too).
        if body["providerMetadata"] == nil { credentials.tokenURL = connectors.connector(for: provider).tokenHost }
        let connection = try await storeConnection(
            project: project, provider: provider, groupRef: groupRef, groupName: body["groupName"]?.stringValue ?? groupRef,
            consumerRef: consumerRef, consumerName: body["consumerName"]?.stringValue ?? consumerRef, workspace: workspace,
            baseURL: baseURL, authScheme: authScheme, credentials: credentials)
        return jsonResponse(201, try JSONCoding.encode(connection))
    }

    /// Stores a connection with its credentials sealed; answers it as the API shows it.
    func storeConnection(
        project: ControlData.Project, provider: Provider, groupRef: String, groupName: String, consumerRef: String,
        consumerName: String, workspace: String?, baseURL: String, authScheme: String, credentials: StoredCredentials
    ) async throws -> JSONValue {
        let id = UUID().uuidString.lowercased()
        let sealed = try credentials.sealed(by: configuration.secrets, connectionId: id)
        try await database.query(
            """
            INSERT INTO connections (id, project_id, provider, group_ref, group_name, consumer_ref, consumer_name,
                                     provider_workspace_ref, base_url, auth_scheme, secrets)
            VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            """, [id, project.id, provider.rawValue, groupRef, groupName, consumerRef, consumerName, workspace, baseURL, authScheme,
                  sealed])
        logger.info("connection created", metadata: ["connection": "\(id)", "provider": "\(provider.rawValue)", "groupRef": "\(groupRef)"])
        let connection = try await connectionJSON(id, project: project.id)
        await notifications.tell(NotificationEvent(type: .connectionCreated, projectId: project.id, data: ["connection": connection]))
        return connection
    }

    func listConnections(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let query = request.uri.queryParameters
        let rows = try await database.query(
            """
            SELECT \(connectionColumns) FROM connections WHERE project_id = $1::uuid
              AND ($2::text IS NULL OR provider = $2) AND ($3::text IS NULL OR group_ref = $3)
              AND ($4::text IS NULL OR consumer_ref = $4)
            ORDER BY created_at
            """, [project.id, query["provider"].map(String.init), query["groupRef"].map(String.init),
                  query["consumerRef"].map(String.init)])
        return jsonResponse(200, try JSONCoding.encode(JSONValue.array(try rows.rows.map(connectionJSON))))
    }

    func getConnection(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let text = context.path("connection")
        guard let id = normalizedUUID(text) else { throw Problem.notFound("connection \(text) was not found", name: "connectionId") }
        return jsonResponse(200, try JSONCoding.encode(try await connectionJSON(id, project: project.id)))
    }

    /// Where a new connection's API is: `providerMetadata.baseUrl.value` when given (a Salesforce instance
    /// URL, a sandbox), else the workspace's `https://{ref}.my.salesforce.com`, else HubSpot's API host.
    func connectionBaseURL(_ provider: Provider, workspace: String?, metadata: JSONValue?) throws -> String {
        if let given = metadata?["baseUrl"]?["value"]?.stringValue ?? metadata?["instanceUrl"]?["value"]?.stringValue {
            guard let url = URL(string: given), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
                throw Problem.badRequest("providerMetadata.baseUrl.value must be an http(s) URL", name: "providerMetadata.baseUrl.value")
            }
            return given
        }
        do {
            return try connectors.connector(for: provider).baseURL(workspace: workspace)
        } catch {
            throw Problem.badRequest(error.message, name: error.field)
        }
    }

    // MARK: OAuth authorization code

    var redirectURI: String {
        (configuration.publicURL ?? "http://\(configuration.host):\(configuration.port)") + "/callbacks/v1/oauth"
    }

    /// `POST /v1/oauth-connect`: the URL of the provider's consent page for the project's provider app;
    /// the provider sends the browser back to `/callbacks/v1/oauth`, which makes the connection.
    func oauthConnect(_ request: Request, _ context: APIContext) async throws -> Response {
        let body = try await jsonObject(request)
        let project = try await control.authenticate(key: request.apiKey, project: try requiredString(body, "projectIdOrName"))
        let provider = try providerField(body["provider"], name: "provider")
        let groupRef = try requiredString(body, "groupRef")
        let consumerRef = try requiredString(body, "consumerRef")
        guard let app = try await database.query(
            "SELECT client_id, scopes::text AS scopes FROM provider_apps WHERE project_id = $1::uuid AND provider = $2",
            [project.id, provider.rawValue]).first
        else {
            throw Problem.unprocessable("project \(project.name) has no \(provider.rawValue) provider app; create one first",
                                        issues: [.init(in: "body", name: "provider", detail: "no provider app for \(provider.rawValue)")])
        }
        let state = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        try await database.query("DELETE FROM oauth_states WHERE expires_at < now()")
        try await database.query(
            """
            INSERT INTO oauth_states (state, project_id, provider, group_ref, group_name, consumer_ref, consumer_name,
                                      provider_workspace_ref, expires_at)
            VALUES ($1, $2::uuid, $3, $4, $5, $6, $7, $8, now() + interval '10 minutes')
            """, [state, project.id, provider.rawValue, groupRef, body["groupName"]?.stringValue ?? groupRef, consumerRef,
                  body["consumerName"]?.stringValue ?? consumerRef, body["providerWorkspaceRef"]?.stringValue])
        let scopes = (try? JSONCoding.decode([String].self, from: app["scopes"] ?? "[]")) ?? []
        let page = connectors.connector(for: provider).authorizationPage(
            OAuthApp(clientId: app["client_id"] ?? "", redirectURI: redirectURI, scopes: scopes), state: state)
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: page)))
    }

    /// `GET /callbacks/v1/oauth?code=…&state=…`: exchanges the code for tokens and stores the connection.
    func oauthCallback(_ request: Request, _ context: APIContext) async throws -> Response {
        let query = request.uri.queryParameters
        guard let state = query["state"].map(String.init), !state.isEmpty else {
            throw Problem.badRequest("state is missing", in: "query", name: "state")
        }
        guard let flow = try await database.query(
            """
            DELETE FROM oauth_states WHERE state = $1 RETURNING project_id::text AS project_id, provider, group_ref, group_name,
                consumer_ref, consumer_name, provider_workspace_ref, expires_at > now() AS live
            """, [state]).first, flow.bool("live") == true, let provider = Provider(rawValue: flow["provider"] ?? "")
        else {
            throw Problem.badRequest("this authorization is unknown or has expired; start again with /v1/oauth-connect",
                                     in: "query", name: "state")
        }
        if let error = query["error"] {
            throw Problem.badRequest("the provider refused the authorization: \(error)", in: "query", name: "error")
        }
        guard let code = query["code"].map(String.init), !code.isEmpty else {
            throw Problem.badRequest("code is missing", in: "query", name: "code")
        }
        let projectId = try flow.string("project_id")
        guard let app = try await database.query(
            "SELECT id::text AS id, client_id, secrets FROM provider_apps WHERE project_id = $1::uuid AND provider = $2",
            [projectId, provider.rawValue]).first
        else { throw Problem.unprocessable("the provider app was removed during the authorization", issues: []) }
        let secret = try ProviderAppSecrets.opened(try app.string("secrets"), by: configuration.secrets, appId: try app.string("id"))
        let exchange = await connectors.connector(for: provider).exchange(
            code: code, app: OAuthApp(clientId: app["client_id"] ?? "", clientSecret: secret.clientSecret, redirectURI: redirectURI))
        let credentials: StoredCredentials
        let baseURL: String
        switch exchange {
        case .connected(let access, let refresh, let base, let tokenURL):
            credentials = StoredCredentials(accessToken: access, refreshToken: refresh, tokenURL: tokenURL)
            baseURL = base
        case .refused(let reason):
            throw Problem(title: "Bad Gateway", status: 502, detail: "the provider refused the authorization code: \(reason)")
        case .unavailable:
            throw Problem.unavailable("the provider's token endpoint could not be reached; start the authorization again")
        }
        let project = ControlData.Project(id: projectId, name: "")
        let connection = try await storeConnection(
            project: project, provider: provider, groupRef: try flow.string("group_ref"), groupName: try flow.string("group_name"),
            consumerRef: try flow.string("consumer_ref"), consumerName: try flow.string("consumer_name"),
            workspace: flow["provider_workspace_ref"], baseURL: baseURL, authScheme: "oauth2/authorizationCode",
            credentials: credentials)
        return jsonResponse(200, try JSONCoding.encode(connection))
    }
}

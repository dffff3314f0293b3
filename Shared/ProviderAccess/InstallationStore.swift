import Connectors
import Postgres
import Secrets
import Shared

/// The credentials stored for a connection, sealed as one JSON value (see `SecretBox`).
public struct StoredCredentials: Codable, Sendable, Equatable {
    public var accessToken: String?
    public var refreshToken: String?
    /// An OAuth client of the connection's own, when it has one; otherwise the project's provider app.
    public var clientId: String?
    public var clientSecret: String?
    /// The token endpoint's base, when it is not the connection's API base.
    public var tokenURL: String?
    /// A HubSpot private-app token or other API key, sent like an access token.
    public var apiKey: String?

    public init(accessToken: String? = nil, refreshToken: String? = nil, clientId: String? = nil, clientSecret: String? = nil,
                tokenURL: String? = nil, apiKey: String? = nil)
    {
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.clientId = clientId
        self.clientSecret = clientSecret
        self.tokenURL = tokenURL
        self.apiKey = apiKey
    }

    public func sealed(by box: SecretBox, connectionId: String) throws -> String {
        try box.seal(JSONCoding.encode(self), context: "connection:\(connectionId)")
    }

    public static func opened(_ sealed: String, by box: SecretBox, connectionId: String) throws -> StoredCredentials {
        try JSONCoding.decode(StoredCredentials.self, from: box.open(sealed, context: "connection:\(connectionId)"))
    }
}

/// Everything a write needs of its installation: the connection to call the provider with, the
/// customer's config, and the integration as its latest manifest declares it.
public struct InstallationContext: Sendable {
    public var installationId: String
    public var connectionId: String
    public var provider: Provider
    public var connection: Connection
    public var config: InstallationConfig
    public var integration: IntegrationSpec?
}

/// Reads installations with their connections, opening the sealed credentials, and stores renewed
/// tokens sealed again. Kept for `lifetime` per installation.
public struct InstallationStore: Sendable {
    public let database: PostgresPool
    public let box: SecretBox
    public let cache: ExpiringCache<String, InstallationContext>

    public init(database: PostgresPool, box: SecretBox, cacheLifetime: Duration) {
        self.database = database
        self.box = box
        cache = ExpiringCache(lifetime: cacheLifetime)
    }

    public func context(_ installationId: String) async throws -> InstallationContext? {
        try await cache.value(for: installationId) { try await load(installationId) }
    }

    /// Reads the installation from the database, past the cache.
    public func load(_ installationId: String) async throws -> InstallationContext? {
        let row = try await database.query(
            """
            SELECT i.config::text AS config, c.id::text AS connection_id, c.provider, c.base_url, c.secrets,
                   n.content::text AS content, a.id::text AS app_id, a.client_id AS app_client_id, a.secrets AS app_secrets
            FROM installations i JOIN connections c ON c.id = i.connection_id JOIN integrations n ON n.id = i.integration_id
            LEFT JOIN provider_apps a ON a.project_id = i.project_id AND a.provider = c.provider
            WHERE i.id = $1::uuid
            """, [installationId]
        ).first
        guard let row, let provider = Provider(rawValue: try row.string("provider")) else { return nil }
        let connectionId = try row.string("connection_id")
        guard let sealed = row["secrets"] else {
            throw SecretError("connection \(connectionId) has credentials that are not sealed yet; start the api to seal them")
        }
        let credentials = try StoredCredentials.opened(sealed, by: box, connectionId: connectionId)
        var clientId = credentials.clientId
        var clientSecret = credentials.clientSecret
        if clientId == nil, let appId = row["app_id"], let appSecrets = row["app_secrets"] {
            clientId = row["app_client_id"]
            clientSecret = try ProviderAppSecrets.opened(appSecrets, by: box, appId: appId).clientSecret
        }
        let connection = Connection(
            baseURL: try row.string("base_url"), accessToken: credentials.accessToken ?? credentials.apiKey ?? "",
            refreshToken: credentials.refreshToken, clientId: clientId, clientSecret: clientSecret,
            tokenURL: credentials.tokenURL, isAPIKey: credentials.accessToken == nil && credentials.apiKey != nil)
        let config = (try? JSONCoding.decode(InstallationConfig.self, from: try row.string("config"))) ?? InstallationConfig()
        let integration = row["content"].flatMap { try? JSONCoding.decode(IntegrationSpec.self, from: $0) }
        return InstallationContext(
            installationId: installationId, connectionId: connectionId, provider: provider, connection: connection,
            config: config, integration: integration)
    }

    /// Stores a renewed token (and a rotated refresh token or moved instance URL), sealed.
    @discardableResult
    public func store(_ connection: Connection, for context: InstallationContext) async throws -> ConnectionChange? {
        let sealed = try await database.query(
            "SELECT secrets FROM connections WHERE id = $1::uuid", [context.connectionId]).first?["secrets"]
        var credentials = try sealed.map { try StoredCredentials.opened($0, by: box, connectionId: context.connectionId) }
            ?? StoredCredentials()
        if credentials.apiKey == nil || credentials.accessToken != nil { credentials.accessToken = connection.accessToken }
        if let refreshToken = connection.refreshToken { credentials.refreshToken = refreshToken }
        let row = try await database.query(
            """
            UPDATE connections SET secrets = $2, base_url = $3, status = 'created', updated_at = now() WHERE id = $1::uuid
            RETURNING \(ConnectionChange.columns)
            """,
            [context.connectionId, try credentials.sealed(by: box, connectionId: context.connectionId), connection.baseURL]).first
        var renewed = context
        renewed.connection = connection
        cache.set(renewed, for: context.installationId)
        return row.flatMap { ConnectionChange(row: $0, installationId: context.installationId, kind: .refreshed) }
    }

    /// Marks a connection whose credentials the provider refused for good; answers the change when the
    /// connection was not marked so already (the customer is told once, not at every refused call).
    public func markBadCredentials(_ context: InstallationContext, error: WriteError) async -> ConnectionChange? {
        let row = try? await database.query(
            """
            UPDATE connections SET status = 'bad_credentials', updated_at = now()
            WHERE id = $1::uuid AND status <> 'bad_credentials' RETURNING \(ConnectionChange.columns)
            """, [context.connectionId]).first
        return row.flatMap { ConnectionChange(row: $0, installationId: context.installationId, kind: .error(error)) }
    }

    /// What a customer-token key's sealed secret is bound to.
    public static func customerTokenKeyContext(_ key: String) -> String { "customer-token-key:\(key)" }

    /// Seals credentials stored in clear and seals again those sealed with a key that is no longer the
    /// current one; returns how many values it sealed.
    @discardableResult
    public func sealStoredSecrets() async throws -> Int {
        var count = 0
        let connections = try await database.query(
            """
            SELECT id::text AS id, secrets, plain_credentials::text AS plain FROM connections
            WHERE plain_credentials IS NOT NULL OR secrets IS NULL OR secrets NOT LIKE $1
            """, ["wb1.\(box.current.id).%"])
        for row in connections.rows {
            let id = try row.string("id")
            let credentials: StoredCredentials
            if let sealed = row["secrets"] {
                credentials = try StoredCredentials.opened(sealed, by: box, connectionId: id)
            } else {
                credentials = (try? JSONCoding.decode(StoredCredentials.self, from: row["plain"] ?? "{}")) ?? StoredCredentials()
            }
            try await database.query(
                "UPDATE connections SET secrets = $2, plain_credentials = NULL WHERE id = $1::uuid",
                [id, try credentials.sealed(by: box, connectionId: id)])
            count += 1
        }
        let apps = try await database.query(
            "SELECT id::text AS id, secrets FROM provider_apps WHERE secrets NOT LIKE $1", ["wb1.\(box.current.id).%"])
        for row in apps.rows {
            let id = try row.string("id")
            let secrets = try ProviderAppSecrets.opened(try row.string("secrets"), by: box, appId: id)
            try await database.query(
                "UPDATE provider_apps SET secrets = $2 WHERE id = $1::uuid", [id, try secrets.sealed(by: box, appId: id)])
            count += 1
        }
        let tokenKeys = try await database.query(
            "SELECT key, secret FROM customer_token_keys WHERE secret NOT LIKE $1", ["wb1.\(box.current.id).%"])
        for row in tokenKeys.rows {
            let key = try row.string("key")
            let secret = try box.open(try row.string("secret"), context: Self.customerTokenKeyContext(key))
            try await database.query(
                "UPDATE customer_token_keys SET secret = $2 WHERE key = $1", [key, try box.seal(secret, context: Self.customerTokenKeyContext(key))])
            count += 1
        }
        return count
    }
}

/// A provider app's client secret, sealed.
public struct ProviderAppSecrets: Codable, Sendable {
    public var clientSecret: String

    public init(clientSecret: String) { self.clientSecret = clientSecret }

    public func sealed(by box: SecretBox, appId: String) throws -> String {
        try box.seal(JSONCoding.encode(self), context: "provider-app:\(appId)")
    }

    public static func opened(_ sealed: String, by box: SecretBox, appId: String) throws -> ProviderAppSecrets {
        try JSONCoding.decode(ProviderAppSecrets.self, from: box.open(sealed, context: "provider-app:\(appId)"))
    }
}

/// A connection's credentials renewed or refused for good, as the project is told of it
/// (`connection.refreshed`, `connection.error`).
public struct ConnectionChange: Sendable {
    public enum Kind: Sendable {
        case refreshed
        case error(WriteError)
    }

    public var kind: Kind
    public var projectId: String
    public var connection: JSONValue
    public var installationId: String

    static let columns = "id::text AS id, project_id::text AS project_id, provider, group_ref, consumer_ref, status"

    init?(row: PostgresRow, installationId: String, kind: Kind) {
        guard let project = row["project_id"], let id = row["id"] else { return nil }
        self.kind = kind
        projectId = project
        self.installationId = installationId
        connection = [
            "id": .string(id), "provider": .string(row["provider"] ?? ""), "groupRef": .string(row["group_ref"] ?? ""),
            "consumerRef": .string(row["consumer_ref"] ?? ""), "status": .string(row["status"] ?? ""),
        ]
    }

    /// The notification: `{connection: {id, provider, groupRef, consumerRef, status}, installationId}` and,
    /// for an error, `error: {code, message}`.
    public var event: NotificationEvent {
        var data: [String: JSONValue] = ["connection": connection, "installationId": .string(installationId)]
        switch kind {
        case .refreshed:
            return NotificationEvent(type: .connectionRefreshed, projectId: projectId, data: .object(data))
        case .error(let error):
            var detail: [String: JSONValue] = ["message": .string(error.message)]
            if let code = error.code { detail["code"] = .string(code) }
            data["error"] = .object(detail)
            return NotificationEvent(type: .connectionError, projectId: projectId, data: .object(data))
        }
    }
}

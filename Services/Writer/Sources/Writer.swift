import Connectors
import HTTPClient
import Kafka
import Logging
import Pipeline
import Postgres
import ServiceLifecycle
import Shared

/// Consumes `write-requests`, calls the provider once per request, and publishes the result to
/// `write-results` and, on success, a change event to `record-changes`, before the request's offset is
/// committed.
public struct Writer: Service {
    let configuration: WriterConfiguration
    let logger: Logger

    public init(configuration: WriterConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    public func run() async throws {
        let database = try await PostgresPool.migrated(
            url: configuration.controlDatabaseURL, size: configuration.databaseConnections, name: "control",
            migrations: ControlSchema.migrations)
        defer { database.shutdown() }
        let client = HTTPClient(configuration: .init(concurrency: configuration.httpConcurrency))
        defer { client.shutdown() }
        let producer = try KafkaProducer(configuration: configuration.kafka)
        defer { producer.shutdown() }
        let installations = Installations(
            database: database, cache: ExpiringCache(lifetime: .milliseconds(Int(configuration.installationCacheSeconds * 1000))))
        let work = WriteExecution(
            configuration: configuration, logger: logger, attempts: WriteAttempts(database: database),
            installations: installations, tokens: TokenRefresher(installations: installations),
            pacers: ConnectionPacers(settings: .init(
                dailyPause: .milliseconds(Int(configuration.limitPause * 1000)),
                maxDailyPause: .milliseconds(Int(configuration.maxLimitPause * 1000)))),
            connectors: Connectors(client: client, timeout: configuration.providerTimeout), producer: producer)
        let processor = KeyedProcessor(
            configuration: .init(kafka: configuration.kafka, groupID: configuration.groupID, topics: [Topics.writeRequests],
                                 maxInFlight: configuration.maxInFlight),
            logger: logger, handle: { message in await work.process(message) })
        try await processor.run()
    }
}

/// Where each installation's provider is and the credentials to call it with.
struct Installations: Sendable {
    let database: PostgresPool
    let cache: ExpiringCache<String, Connection>

    func connection(_ installationId: String) async throws -> Connection? {
        try await cache.value(for: installationId) { try await load(installationId) }
    }

    /// Reads the installation from the database, past the cache.
    func load(_ installationId: String) async throws -> Connection? {
        let row = try await database.query(
            """
            SELECT base_url, credentials->>'accessToken' AS token, credentials->>'refreshToken' AS refresh_token,
                   credentials->>'clientId' AS client_id, credentials->>'clientSecret' AS client_secret,
                   credentials->>'tokenURL' AS token_url
            FROM installations WHERE id = $1::uuid
            """, [installationId]
        ).first
        guard let row, let base = row["base_url"] else { return nil }
        return Connection(
            baseURL: base, accessToken: row["token"] ?? "", refreshToken: row["refresh_token"], clientId: row["client_id"],
            clientSecret: row["client_secret"], tokenURL: row["token_url"])
    }

    /// Stores a renewed token (and a rotated refresh token or moved instance URL).
    func store(_ connection: Connection, for installationId: String) async throws {
        var changes: [String: JSONValue] = ["accessToken": .string(connection.accessToken)]
        if let refreshToken = connection.refreshToken { changes["refreshToken"] = .string(refreshToken) }
        try await database.query(
            "UPDATE installations SET credentials = credentials || $2::jsonb, base_url = $3 WHERE id = $1::uuid",
            [installationId, try JSONCoding.encodeString(changes), connection.baseURL])
        cache.set(connection, for: installationId)
    }
}

/// Renews expired access tokens, one refresh per installation at a time: writes whose token is refused
/// while a renewal runs wait for that renewal (an actor alone would let them in at its await and refresh
/// again), and a write that comes later first reads the installation again and uses the token another
/// write (or writer) already renewed.
actor TokenRefresher {
    let installations: Installations
    private var running: [String: Task<TokenRefresh, any Error>] = [:]

    init(installations: Installations) {
        self.installations = installations
    }

    func renew(_ installationId: String, refused: Connection, with connector: any Connector) async throws -> TokenRefresh {
        if let renewal = running[installationId] { return try await renewal.value }
        let renewal = Task { try await self.renewOnce(installationId, refused: refused, with: connector) }
        running[installationId] = renewal
        defer { running[installationId] = nil }
        return try await renewal.value
    }

    private func renewOnce(_ installationId: String, refused: Connection, with connector: any Connector) async throws
        -> TokenRefresh
    {
        guard let current = try await installations.load(installationId) else {
            return .refused(WriteError(message: "installation \(installationId) no longer exists", code: "RECONNECT_REQUIRED"))
        }
        if current.accessToken != refused.accessToken {
            installations.cache.set(current, for: installationId)
            return .refreshed(accessToken: current.accessToken, refreshToken: nil, instanceURL: nil)
        }
        let outcome = await connector.refresh(current)
        if case .refreshed(let token, let refreshToken, let instanceURL) = outcome {
            var renewed = current
            renewed.accessToken = token
            if let refreshToken { renewed.refreshToken = refreshToken }
            if let instanceURL { renewed.baseURL = instanceURL }
            try await installations.store(renewed, for: installationId)
        }
        return outcome
    }
}

import Schema
import Foundation
import Postgres
import ProviderAccess
import Secrets
import Shared
import Testing

/// A control database from before connections existed, upgraded in place.
@Suite("Control database upgrade")
struct UpgradeTests {
    @Test("installations made before connections keep their credentials, which the api's first start seals")
    func legacyCredentials() async throws {
        guard let postgres = ProcessInfo.processInfo.environment["WRITEBACK_TEST_POSTGRES"] else {
            throw HarnessError("run the tests with scripts/test, which starts PostgreSQL and sets WRITEBACK_TEST_POSTGRES")
        }
        let name = "upgrade_\(UInt32.random(in: 0...UInt32.max))"
        try PostgresConnection.connect("\(postgres) dbname=postgres").exec("CREATE DATABASE \(name)")
        let database = PostgresPool(url: "\(postgres) dbname=\(name)", size: 2, name: "upgrade")
        defer { database.shutdown() }
        let before = Array(ControlSchema.migrations.prefix { $0.name != "003_integrations_as_code" })
        try await database.migrate(before)
        let installation = try await database.query(
            """
            WITH p AS (INSERT INTO projects (name) VALUES ('old') RETURNING id),
                 n AS (INSERT INTO integrations (project_id, name, provider, objects)
                       SELECT id, 'write-to-hubspot', 'hubspot', '["contact"]' FROM p RETURNING id, project_id)
            INSERT INTO installations (project_id, integration_id, group_ref, base_url, credentials)
            SELECT project_id, id, 'g1', 'http://provider.example',
                   '{"accessToken": "old-access", "refreshToken": "old-refresh", "clientId": "c", "clientSecret": "s"}'
            FROM n RETURNING id::text AS id
            """).first!.string("id")

        try await database.migrate(ControlSchema.migrations)
        let box = SecretBox(current: try SecretBox.Key(base64: Data(repeating: 7, count: 32).base64EncodedString()))
        let store = InstallationStore(database: database, box: box, cacheLifetime: .zero)
        #expect(try await store.sealStoredSecrets() == 1)
        let raw = try await database.query("SELECT row_to_json(c)::text AS row FROM connections c").first?["row"] ?? ""
        #expect(!raw.contains("old-access") && !raw.contains("old-refresh") && !raw.contains("\"s\""), "\(raw)")
        let context = try #require(try await store.load(installation))
        #expect(context.provider == .hubspot && context.connection.baseURL == "http://provider.example")
        #expect(context.connection.accessToken == "old-access" && context.connection.refreshToken == "old-refresh")
        #expect(context.connection.clientId == "c" && context.connection.clientSecret == "s")
        #expect(try await store.sealStoredSecrets() == 0, "sealed values were sealed again")
    }
}

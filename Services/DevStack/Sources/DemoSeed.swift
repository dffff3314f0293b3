import Schema
import Postgres
import Shared

/// What a local stack needs before its api can be used: both databases migrated, and one project with
/// an API key (the api has no call that makes projects). Everything else (integrations, provider apps,
/// connections, installations) is made through the api by scripts/demo-setup. Safe to run again.
public struct DemoSeed: Sendable {
    public var project = "demo"
    public var apiKey = "dev-api-key"

    public init() {}

    public func apply(control: PostgresPool, destination: PostgresPool) async throws {
        try await control.migrate(ControlSchema.migrations)
        try await destination.migrate(DestinationSchema.migrations)
        let seed = self
        try await control.transaction { connection in
            let projectId = try connection.query(
                "INSERT INTO projects (name) VALUES ($1) ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id::text AS id",
                [seed.project]
            ).first!.string("id")
            try connection.query(
                """
                INSERT INTO api_keys (key_hash, project_id, label) VALUES (encode(sha256(convert_to($1, 'UTF8')), 'hex'), $2::uuid, 'demo')
                ON CONFLICT (key_hash) DO UPDATE SET project_id = EXCLUDED.project_id
                """, [seed.apiKey, projectId])
        }
    }
}

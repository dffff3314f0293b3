import Postgres
import Shared

/// Control data for a local stack: one project with an API key, a Salesforce and a HubSpot
/// integration, and one groupRef installed on both, pointing at the sandbox. Safe to run again.
public struct DemoSeed: Sendable {
    public var project = "demo"
    public var apiKey = "dev-api-key"
    public var groupRef = "demo-group-id"
    public var sandboxURL = "http://127.0.0.1:8090"
    public var salesforceToken = "sandbox-salesforce-token"
    public var hubspotToken = "sandbox-hubspot-token"
    /// The OAuth client and refresh tokens the sandbox accepts, so that expired tokens are renewed.
    public var clientId = "sandbox-client-id"
    public var clientSecret = "sandbox-client-secret"
    public var salesforceRefreshToken = "sandbox-salesforce-refresh-token"
    public var hubspotRefreshToken = "sandbox-hubspot-refresh-token"

    public init() {}

    static let integrations: [(name: String, provider: Provider, objects: [String])] = [
        ("write-to-salesforce", .salesforce, ["account", "contact", "lead", "opportunity", "touchpoints__c"]),
        ("write-to-hubspot", .hubspot, ["contact", "company", "account", "deal"]),
    ]

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
            for integration in Self.integrations {
                let integrationId = try connection.query(
                    """
                    INSERT INTO integrations (project_id, name, provider, objects) VALUES ($1::uuid, $2, $3, $4::jsonb)
                    ON CONFLICT (project_id, name) DO UPDATE SET provider = EXCLUDED.provider, objects = EXCLUDED.objects
                    RETURNING id::text AS id
                    """, [projectId, integration.name, integration.provider.rawValue, try JSONCoding.encodeString(integration.objects)]
                ).first!.string("id")
                let salesforce = integration.provider == .salesforce
                let credentials = [
                    "accessToken": salesforce ? seed.salesforceToken : seed.hubspotToken,
                    "refreshToken": salesforce ? seed.salesforceRefreshToken : seed.hubspotRefreshToken,
                    "clientId": seed.clientId, "clientSecret": seed.clientSecret,
                ]
                try connection.query(
                    """
                    INSERT INTO installations (project_id, integration_id, group_ref, base_url, credentials)
                    VALUES ($1::uuid, $2::uuid, $3, $4, $5::jsonb)
                    ON CONFLICT (integration_id, group_ref) DO UPDATE SET base_url = EXCLUDED.base_url,
                        credentials = EXCLUDED.credentials
                    """, [projectId, integrationId, seed.groupRef, seed.sandboxURL,
                          try JSONCoding.encodeString(credentials)])
            }
        }
    }
}

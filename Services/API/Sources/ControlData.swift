import Postgres
import Shared

/// Reads projects, keys, integrations and installations from the control database, each kept for
/// `API_CONTROL_CACHE_SECONDS`.
struct ControlData: Sendable {
    let database: PostgresPool
    private let projects: ExpiringCache<String, Project>
    private let integrations: ExpiringCache<[String], Integration>
    private let installations: ExpiringCache<[String], String>
    private let customers: ExpiringCache<[String], [CustomerInstallation]>

    init(database: PostgresPool, cacheLifetime: Duration) {
        self.database = database
        projects = ExpiringCache(lifetime: cacheLifetime)
        integrations = ExpiringCache(lifetime: cacheLifetime)
        installations = ExpiringCache(lifetime: cacheLifetime)
        customers = ExpiringCache(lifetime: cacheLifetime)
    }

    /// An installation of a customer (groupRef) on a provider, by integration.
    struct CustomerInstallation: Sendable {
        var installationId: String
        var integrationId: String
    }

    /// A customer's installations of a provider's integrations, by integration name.
    func customerInstallations(project: Project, provider: Provider, groupRef: String) async throws -> [CustomerInstallation] {
        try await customers.value(for: [project.id, provider.rawValue, groupRef]) {
            let rows = try await database.query(
                """
                SELECT i.id::text AS id, n.id::text AS integration_id FROM installations i
                JOIN integrations n ON n.id = i.integration_id
                WHERE i.project_id = $1::uuid AND i.group_ref = $2 AND n.provider = $3 ORDER BY n.name
                """, [project.id, groupRef, provider.rawValue])
            let found = try rows.rows.map {
                CustomerInstallation(installationId: try $0.string("id"), integrationId: try $0.string("integration_id"))
            }
            return found.isEmpty ? nil : found
        } ?? []
    }

    struct Project: Sendable {
        var id: String
        var name: String
    }

    struct Integration: Sendable {
        var id: String
        var name: String
        var provider: Provider
        var objects: [String]
        /// The integration as its latest manifest declares it.
        var spec: IntegrationSpec?
    }

    /// The project that owns the key, checked against the path's project id or name. 401 for an unknown
    /// key, 404 for a project the key does not belong to.
    func authenticate(key: String?, project idOrName: String) async throws -> Project {
        let project = try await project(forKey: key)
        guard project.id == idOrName.lowercased() || project.name == idOrName else {
            throw Problem.notFound("project '\(idOrName)' was not found", name: "projectIdOrName")
        }
        return project
    }

    /// The project that owns the key; 401 for a missing or unknown key.
    func project(forKey key: String?) async throws -> Project {
        guard let key, !key.isEmpty else { throw Problem.unauthorized("the X-Api-Key header is missing") }
        let found = try await projects.value(for: key) {
            let row = try await database.query(
                """
                SELECT p.id::text AS id, p.name FROM api_keys k JOIN projects p ON p.id = k.project_id
                WHERE k.key_hash = encode(sha256(convert_to($1, 'UTF8')), 'hex')
                """, [key]
            ).first
            return try row.map { Project(id: try $0.string("id"), name: try $0.string("name")) }
        }
        guard let project = found else { throw Problem.unauthorized("the API key is not valid") }
        return project
    }

    /// Forgets what is cached of a project's integrations and installations after a change to them.
    func forget(project: Project) {
        integrations.removeAll()
        installations.removeAll()
        customers.removeAll()
    }

    func integration(_ idOrName: String, project: Project) async throws -> Integration {
        let found = try await integrations.value(for: [project.id, idOrName]) {
            let row = try await database.query(
                """
                SELECT id::text AS id, name, provider, objects::text AS objects, content::text AS content FROM integrations
                WHERE project_id = $1::uuid AND (id::text = lower($2) OR name = $2)
                """, [project.id, idOrName]
            ).first
            guard let row, let provider = Provider(rawValue: try row.string("provider")) else { return nil }
            let objects = (try? JSONCoding.decode([String].self, from: try row.string("objects"))) ?? []
            return Integration(
                id: try row.string("id"), name: try row.string("name"), provider: provider, objects: objects,
                spec: row["content"].flatMap { try? JSONCoding.decode(IntegrationSpec.self, from: $0) })
        }
        guard let found else {
            throw Problem.notFound("integration '\(idOrName)' was not found in project \(project.name)", name: "integrationId")
        }
        return found
    }

    func installationId(integration: Integration, groupRef: String) async throws -> String {
        let found = try await installations.value(for: [integration.id, groupRef]) {
            try await database.query(
                "SELECT id::text AS id FROM installations WHERE integration_id = $1::uuid AND group_ref = $2",
                [integration.id, groupRef]
            ).first?.string("id")
        }
        guard let found else {
            throw Problem.notFound(
                "groupRef '\(groupRef)' has no installation of integration \(integration.name)", name: "groupRef", in: "body")
        }
        return found
    }
}

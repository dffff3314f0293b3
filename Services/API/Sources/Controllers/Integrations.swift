import Foundation
import Hummingbird
import Logging
import ProviderAccess
import Manifest
import Postgres
import Shared
import Schema

/// Integrations as code: `PUT /v1/projects/{p}/integrations:batch` with an `amp.yaml` deploys every
/// integration it declares (a new revision each); `GET …/integrations[/{idOrName}]` reads them back.
struct IntegrationsController: Controller {
    let configuration: APIConfiguration
    let control: ControlData
    let database: PostgresPool
    let installations: InstallationStore
    let providers: ProviderCalls
    let logger: Logger

    func addRoutes(to projects: RouterGroup<APIContext>) {
        projects.put("integrations:batch") { try await self.deploy($0, $1) }
        projects.get("integrations") { try await self.listIntegrations($0, $1) }
        projects.get("integrations/:integration") { try await self.getIntegration($0, $1) }
        projects.get("integrations/:integration/objects/:object/metadata") { try await self.objectMetadata($0, $1) }
    }
}

extension IntegrationsController {
    func deploy(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let body = try await jsonObject(request)
        guard let source = body["sourceYaml"]?.stringValue else {
            if body["sourceZipUrl"] != nil {
                throw Problem.badRequest("sourceZipUrl is not served; send the manifest's text in sourceYaml", name: "sourceZipUrl")
            }
            throw Problem.badRequest("sourceYaml is required: the text of an amp.yaml", name: "sourceYaml")
        }
        let manifest: Manifest
        switch Manifest.parse(source) {
        case .success(let parsed): manifest = parsed
        case .failure(let errors):
            throw Problem.unprocessable(
                "the manifest has \(errors.issues.count) problem\(errors.issues.count == 1 ? "" : "s"); nothing was deployed",
                issues: errors.issues.map {
                    Problem.Issue(in: "body", name: $0.path.isEmpty ? "sourceYaml" : $0.path, detail: $0.message, line: $0.line,
                                  column: $0.column)
                })
        }
        for (index, integration) in manifest.integrations.enumerated() {
            try refuseNUL(try JSONCoding.decode(JSONValue.self, from: JSONCoding.encode(integration)), name: "integrations[\(index)]")
        }
        let projectId = project.id
        let deployed = try await database.transaction { connection -> [String] in
            var ids: [String] = []
            var conflicts: [Problem.Issue] = []
            for (index, integration) in manifest.integrations.enumerated() {
                let existing = try connection.query(
                    """
                    SELECT n.provider, EXISTS (SELECT 1 FROM installations i WHERE i.integration_id = n.id) AS installed
                    FROM integrations n WHERE n.project_id = $1::uuid AND n.name = $2
                    """, [projectId, integration.name]).first
                if let existing, existing["provider"] != integration.provider, existing.bool("installed") == true {
                    conflicts.append(Problem.Issue(
                        in: "body", name: "integrations[\(index)].provider",
                        detail: "integration \(integration.name) is installed on \(existing["provider"] ?? "") and cannot move to "
                            + "\(integration.provider); give the new one another name"))
                    continue
                }
                let content = try JSONCoding.encodeString(integration)
                let objects = try JSONCoding.encodeString(integration.writeObjects.map(\.objectName))
                let id = try connection.query(
                    """
                    INSERT INTO integrations (project_id, name, provider, display_name, objects, content)
                    VALUES ($1::uuid, $2, $3, $4, $5::jsonb, $6::jsonb)
                    ON CONFLICT (project_id, name) DO UPDATE SET provider = EXCLUDED.provider,
                        display_name = EXCLUDED.display_name, objects = EXCLUDED.objects, content = EXCLUDED.content,
                        updated_at = now()
                    RETURNING id::text AS id
                    """, [projectId, integration.name, integration.provider, integration.displayName ?? integration.name, objects,
                          content]
                ).first!.string("id")
                let revision = try connection.query(
                    """
                    INSERT INTO revisions (project_id, integration_id, spec_version, content, source_yaml)
                    VALUES ($1::uuid, $2::uuid, $3, $4::jsonb, $5) RETURNING id::text AS id
                    """, [projectId, id, manifest.specVersion, content, source]
                ).first!.string("id")
                try connection.query("UPDATE integrations SET latest_revision_id = $2::uuid WHERE id = $1::uuid", [id, revision])
                ids.append(id)
            }
            if !conflicts.isEmpty { throw Problem.unprocessable("the manifest cannot be deployed; nothing was deployed", issues: conflicts) }
            return ids
        }
        control.forget(project: project)
        let rows = try await database.query(
            "SELECT \(Self.integrationColumns) FROM integrations n LEFT JOIN revisions r ON r.id = n.latest_revision_id "
                + "WHERE n.id = ANY($1::uuid[]) ORDER BY n.name",
            [PostgresArray.literal(deployed)])
        logger.info("manifest deployed", metadata: ["project": "\(project.name)", "integrations": "\(deployed.count)"])
        return jsonResponse(200, try JSONCoding.encode(JSONValue.array(try rows.rows.map(integrationJSON))))
    }

    func listIntegrations(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let rows = try await database.query(
            "SELECT \(Self.integrationColumns) FROM integrations n LEFT JOIN revisions r ON r.id = n.latest_revision_id "
                + "WHERE n.project_id = $1::uuid ORDER BY n.name", [project.id])
        return jsonResponse(200, try JSONCoding.encode(JSONValue.array(try rows.rows.map(integrationJSON))))
    }

    func getIntegration(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let integration = try await control.integration(context.path("integration"), project: project)
        let row = try await database.query(
            "SELECT \(Self.integrationColumns) FROM integrations n LEFT JOIN revisions r ON r.id = n.latest_revision_id "
                + "WHERE n.id = $1::uuid", [integration.id]).first
        guard let row else { throw Problem.notFound("integration \(integration.name) was not found", name: "integrationIdOrName") }
        return jsonResponse(200, try JSONCoding.encode(try integrationJSON(row)))
    }

    static let integrationColumns = """
        n.id::text AS id, n.project_id::text AS project_id, n.name, n.provider, n.content::text AS content,
        \(timestamp("n.created_at")) AS create_time, \(timestamp("n.updated_at")) AS update_time,
        r.id::text AS revision_id, r.spec_version, r.content::text AS revision_content,
        \(timestamp("r.created_at")) AS revision_time
        """

    /// An integration in the Ampersand shape, with its latest revision.
    func integrationJSON(_ row: PostgresRow) throws -> JSONValue {
        var body: [String: JSONValue] = [
            "id": .string(try row.string("id")), "projectId": .string(try row.string("project_id")),
            "name": .string(try row.string("name")), "provider": .string(try row.string("provider")),
            "createTime": .string(try row.string("create_time")), "updateTime": .string(try row.string("update_time")),
        ]
        if let revision = row["revision_id"] {
            body["latestRevision"] = [
                "id": .string(revision), "specVersion": .string(row["spec_version"] ?? ""),
                "createTime": .string(row["revision_time"] ?? ""),
                "content": try JSONCoding.decode(JSONValue.self, from: row["revision_content"] ?? "{}"),
            ]
        }
        return .object(body)
    }
}

import Foundation
import Hummingbird
import Logging
import Pipeline
import Postgres
import ProviderAccess
import Shared
import Schema

/// Installations: an integration installed for a customer (groupRef) on one of its connections, with
/// the customer's field mappings and field settings.
struct InstallationsController: Controller {
    let configuration: APIConfiguration
    let control: ControlData
    let database: PostgresPool
    let installations: InstallationStore
    let notifications: NotificationPublisher
    let logger: Logger

    func addRoutes(to projects: RouterGroup<APIContext>) {
        let installations = projects.group("integrations/:integration/installations")
        installations.post { try await self.createInstallation($0, $1) }
        installations.get { try await self.listInstallations($0, $1) }
        installations.get(":installation") { try await self.getInstallation($0, $1) }
        installations.patch(":installation") { try await self.updateInstallation($0, $1) }
        installations.delete(":installation") { try await self.deleteInstallation($0, $1) }
    }
}

extension InstallationsController {
    func createInstallation(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let integration = try await control.integration(context.path("integration"), project: project)
        let body = try await jsonObject(request)
        let groupRef = try requiredString(body, "groupRef")
        let config = try installationConfig(body["config"]?["content"] ?? .object([:]), integration: integration)
        let createdBy = body["config"]?["createdBy"]?.stringValue ?? "api:create-installation"
        let connectionId: String
        if let given = body["connectionId"]?.stringValue {
            guard let id = normalizedUUID(given), let row = try await database.query(
                "SELECT provider, group_ref FROM connections WHERE id = $1::uuid AND project_id = $2::uuid", [id, project.id]).first
            else { throw Problem.notFound("connection \(given) was not found", name: "connectionId", in: "body") }
            guard row["provider"] == integration.provider.rawValue, row["group_ref"] == groupRef else {
                throw Problem.unprocessable("connection \(given) is not a \(integration.provider.rawValue) connection of group \(groupRef)",
                                            issues: [.init(in: "body", name: "connectionId", detail: "belongs to another provider or group")])
            }
            connectionId = id
        } else {
            guard let id = try await database.query(
                """
                SELECT id::text AS id FROM connections WHERE project_id = $1::uuid AND provider = $2 AND group_ref = $3
                ORDER BY created_at DESC LIMIT 1
                """, [project.id, integration.provider.rawValue, groupRef]).first?["id"]
            else {
                throw Problem.unprocessable(
                    "group \(groupRef) has no \(integration.provider.rawValue) connection; create one with connections:generate or /v1/oauth-connect",
                    issues: [.init(in: "body", name: "groupRef", detail: "no \(integration.provider.rawValue) connection")])
            }
            connectionId = id
        }
        let id = UUID().uuidString.lowercased()
        let inserted = try await database.query(
            """
            INSERT INTO installations (id, project_id, integration_id, group_ref, connection_id, config, created_by)
            VALUES ($1::uuid, $2::uuid, $3::uuid, $4, $5::uuid, $6::jsonb, $7)
            ON CONFLICT (integration_id, group_ref) DO NOTHING
            """, [id, project.id, integration.id, groupRef, connectionId, try JSONCoding.encodeString(config), createdBy])
        guard inserted.affected == 1 else {
            throw Problem(title: "Conflict", status: 409, detail: "group \(groupRef) already has an installation of \(integration.name); "
                + "update it with PATCH", issues: [.init(in: "body", name: "groupRef", detail: "already installed")])
        }
        control.forget(project: project)
        logger.info("integration installed", metadata: ["installation": "\(id)", "integration": "\(integration.name)", "groupRef": "\(groupRef)"])
        let installation = try await installationJSON(id, project: project.id)
        await tell(.installationCreated, installation, project: project)
        return jsonResponse(201, try JSONCoding.encode(installation))
    }

    func listInstallations(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let integration = try await control.integration(context.path("integration"), project: project)
        let groupRef = request.uri.queryParameters["groupRef"].map(String.init)
        let ids = try await database.query(
            """
            SELECT id::text AS id FROM installations WHERE integration_id = $1::uuid AND ($2::text IS NULL OR group_ref = $2)
            ORDER BY created_at
            """, [integration.id, groupRef])
        var answers: [JSONValue] = []
        for row in ids.rows { answers.append(try await installationJSON(try row.string("id"), project: project.id)) }
        return jsonResponse(200, try JSONCoding.encode(JSONValue.array(answers)))
    }

    func getInstallation(_ request: Request, _ context: APIContext) async throws -> Response {
        let (project, _, id) = try await installationPath(context)
        return jsonResponse(200, try JSONCoding.encode(try await installationJSON(id, project: project.id)))
    }

    /// `PATCH …/installations/{id}` with `{installation: {config: {content}, connectionId}}`: replaces the
    /// config's content (the next write uses it, within the writer's cache time).
    func updateInstallation(_ request: Request, _ context: APIContext) async throws -> Response {
        let (project, integration, id) = try await installationPath(context)
        let body = try await jsonObject(request)
        let change = body["installation"] ?? .object(body)
        guard let content = change["config"]?["content"] else {
            throw Problem.badRequest("installation.config.content is required: the whole new config content",
                                     name: "installation.config.content")
        }
        let config = try installationConfig(content, integration: integration)
        let updated = try await database.query(
            "UPDATE installations SET config = $3::jsonb, updated_at = now() WHERE id = $1::uuid AND project_id = $2::uuid",
            [id, project.id, try JSONCoding.encodeString(config)])
        guard updated.affected == 1 else { throw Problem.notFound("installation \(id) was not found", name: "installationId") }
        installations.cache.removeAll()
        let installation = try await installationJSON(id, project: project.id)
        await tell(.installationUpdated, installation, project: project)
        return jsonResponse(200, try JSONCoding.encode(installation))
    }

    func deleteInstallation(_ request: Request, _ context: APIContext) async throws -> Response {
        let (project, _, id) = try await installationPath(context)
        let installation = try await installationJSON(id, project: project.id)
        let deleted = try await database.query(
            "DELETE FROM installations WHERE id = $1::uuid AND project_id = $2::uuid", [id, project.id])
        guard deleted.affected == 1 else { throw Problem.notFound("installation \(id) was not found", name: "installationId") }
        control.forget(project: project)
        installations.cache.removeAll()
        await tell(.installationDeleted, installation, project: project)
        return Response(status: .noContent)
    }

    /// `installation.created`, `.updated` or `.deleted`, with the installation as the api shows it.
    func tell(_ type: NotificationEventType, _ installation: JSONValue, project: ControlData.Project) async {
        await notifications.tell(NotificationEvent(type: type, projectId: project.id, data: ["installation": installation]))
    }

    func installationJSON(_ id: String, project: String) async throws -> JSONValue {
        let row = try await database.query(
            """
            SELECT i.id::text AS id, i.project_id::text AS project_id, i.integration_id::text AS integration_id, i.group_ref,
                   i.connection_id::text AS connection_id, i.config::text AS config, i.created_by,
                   \(timestamp("i.created_at")) AS create_time, \(timestamp("i.updated_at")) AS update_time,
                   n.latest_revision_id::text AS revision_id, n.provider, c.status AS connection_status, c.group_name,
                   (SELECT status FROM operations o WHERE o.installation_id = i.id ORDER BY create_time DESC LIMIT 1) AS last_status
            FROM installations i JOIN integrations n ON n.id = i.integration_id JOIN connections c ON c.id = i.connection_id
            WHERE i.id = $1::uuid AND i.project_id = $2::uuid
            """, [id, project]).first
        guard let row else { throw Problem.notFound("installation \(id) was not found", name: "installationId") }
        let created = JSONValue.string(try row.string("create_time"))
        var body: [String: JSONValue] = [
            "id": .string(id), "projectId": .string(project), "integrationId": .string(try row.string("integration_id")),
            "group": ["groupRef": .string(try row.string("group_ref")), "groupName": .string(try row.string("group_name")),
                      "projectId": .string(project), "createTime": created],
            "healthStatus": .string(row["connection_status"] == "bad_credentials" ? "unhealthy" : "healthy"),
            "connection": try await connectionJSON(try row.string("connection_id"), project: project),
            "createTime": created, "updateTime": .string(try row.string("update_time")),
            "createdBy": .string(try row.string("created_by")),
            "config": [
                "id": .string(id), "revisionId": .string(row["revision_id"] ?? ""), "createTime": created,
                "createdBy": .string(try row.string("created_by")),
                "content": Self.answeredContent(try JSONCoding.decode(JSONValue.self, from: try row.string("config")),
                                                provider: try row.string("provider")),
            ],
        ]
        if let last = row["last_status"] { body["lastOperationStatus"] = .string(last) }
        return .object(body)
    }

    /// A config's content as the Ampersand shape has it: the provider named, every object named (by its
    /// key, where the config did not name it), and a read object's selections present, if empty.
    static func answeredContent(_ content: JSONValue, provider: String) -> JSONValue {
        guard var answer = content.objectValue else { return content }
        if answer["provider"]?.stringValue == nil { answer["provider"] = .string(provider) }
        for (section, selections) in [("read", ["selectedFields", "selectedFieldMappings"]), ("write", [])] {
            guard var part = answer[section]?.objectValue else { continue }
            var objects = part["objects"]?.objectValue ?? [:]
            for (key, value) in objects {
                guard var object = value.objectValue else { continue }
                if object["objectName"]?.stringValue == nil { object["objectName"] = .string(key) }
                for name in selections where object[name]?.objectValue == nil { object[name] = .object([:]) }
                objects[key] = .object(object)
            }
            part["objects"] = .object(objects)
            answer[section] = .object(part)
        }
        return .object(answer)
    }

    /// Checks a config's content against the integration: every object it configures must be declared by
    /// the manifest, mappings must name the read object's `mapToName`s, defaults need
    /// `valueDefaults.allowAnyFields`, and `writeOnCreate`/`writeOnUpdate` are `always` or `never`.
    func installationConfig(_ content: JSONValue, integration: ControlData.Integration) throws -> InstallationConfig {
        let base = "config.content"
        guard content.objectValue != nil else { throw Problem.badRequest("\(base) must be an object", name: base) }
        let config: InstallationConfig
        do {
            config = try JSONCoding.decode(InstallationConfig.self, from: JSONCoding.encode(content))
        } catch {
            throw Problem.badRequest("\(base) does not have the config shape: \(error)", name: base)
        }
        var issues: [Problem.Issue] = []
        func note(_ name: String, _ detail: String) { issues.append(.init(in: "body", name: "\(base).\(name)", detail: detail)) }
        if let provider = config.provider, provider != integration.provider.rawValue {
            note("provider", "the integration's provider is \(integration.provider.rawValue), not \(provider)")
        }
        let spec = integration.spec
        for (key, object) in config.read?.objects ?? [:] {
            guard let declared = spec?.readObject(object.objectName ?? key) else {
                note("read.objects.\(key)", "integration \(integration.name) does not read \(key)")
                continue
            }
            let names = Set(((declared.requiredFields ?? []) + (declared.optionalFields ?? [])).compactMap(\.mapToName))
            for (mapTo, field) in object.selectedFieldMappings ?? [:] {
                if !names.contains(mapTo) {
                    note("read.objects.\(key).selectedFieldMappings.\(mapTo)",
                         "\(mapTo) is not a mapToName of read object \(declared.objectName) (declared: \(names.sorted().joined(separator: ", ")))")
                }
                if field.isEmpty { note("read.objects.\(key).selectedFieldMappings.\(mapTo)", "the mapped field must be named") }
            }
        }
        for (key, object) in config.write?.objects ?? [:] {
            guard let declared = spec?.writeObject(object.objectName ?? key) else {
                note("write.objects.\(key)", "integration \(integration.name) does not write \(key)")
                continue
            }
            for (field, setting) in object.selectedFieldSettings ?? [:] {
                let path = "write.objects.\(key).selectedFieldSettings.\(field)"
                if setting.default != nil && declared.valueDefaults?.allowAnyFields != true {
                    note("\(path).default", "write object \(declared.objectName) does not allow default values: "
                        + "its manifest needs valueDefaults.allowAnyFields: true")
                }
                if setting.default != nil && setting.default?.json == nil {
                    note("\(path).default", "a default needs stringValue, integerValue, booleanValue or value")
                }
                for (name, rule) in [("writeOnCreate", setting.writeOnCreate), ("writeOnUpdate", setting.writeOnUpdate)] {
                    if let rule, rule != "always" && rule != "never" { note("\(path).\(name)", "\(name) must be always or never") }
                }
            }
        }
        guard issues.isEmpty else { throw Problem.unprocessable("the installation config does not fit the integration", issues: issues) }
        return config
    }
}

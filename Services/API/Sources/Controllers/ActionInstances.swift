import Connectors
import Actions
import Foundation
import Postgres
import ProviderAccess
import HTTPTypes
import Hummingbird
import Shared
import Schema

/// A customer's action instance as stored: its customization and when it was made, set up, archived.
struct ActionInstanceRow: Sendable {
    var id: String
    var customization: ActionCustomization
    var createdAt: String
    var updatedAt: String
    var setUpAt: String?
    var archivedAt: String?
}

/// Per-connection action instances (`/connections/{integrationKey}/actions/{actionKey}`): run, get
/// (made on first access), list, customize (PATCH), set up again, reset, archive; authenticated with a
/// customer token that names the customer, so a customer reaches only its own connections. And the
/// keys that sign those tokens (`/v1/projects/{p}/customer-token-keys`).
struct ActionInstancesController: Controller {
    let configuration: APIConfiguration
    let control: ControlData
    let database: PostgresPool
    let runner: ActionRunner

    func addRoutes(to connections: RouterGroup<APIContext>) {
        let instance = ":connection/actions/:action"
        connections.get(":connection/actions") { try await self.listInstances($0, $1) }
        connections.get(RouterPath(instance)) { try await self.instanceAnswer($0, $1) { _, row in row } }
        connections.patch(RouterPath(instance)) { try await self.customizeInstance($0, $1) }
        connections.delete(RouterPath(instance)) { request, context in
            try await self.instanceAnswer(request, context) { _, row in try await self.updateInstance(row.id, "archived_at = now()", []) }
        }
        connections.post(RouterPath("\(instance)/reset")) { request, context in
            try await self.instanceAnswer(request, context) { _, row in
                try await self.updateInstance(row.id, "customization = '{}'::jsonb", [])
            }
        }
        connections.post(RouterPath("\(instance)/setup")) { request, context in
            try await self.instanceAnswer(request, context, refresh: true) { _, row in
                try await self.updateInstance(row.id, "set_up_at = now()", [])
            }
        }
        connections.post(RouterPath("\(instance)/run")) { try await self.runInstance($0, $1) }
    }
}

extension ActionInstancesController {
    /// The customer's connection a path names: an integration's name, the app (`hubspot`,
    /// `salesforce`: the first such integration by name) or a connection id. Only the token's own
    /// customer's installations are looked at.
    private func customerConnection(_ request: Request, _ context: APIContext) async throws
        -> (Customer, (id: String, integration: ControlData.Integration))
    {
        guard let customer = context.customer else { throw ActionFailure(status: 401, message: "the request names no customer") }
        let selector = context.path("connection")
        for provider in Provider.allCases {
            let installations = try await control.customerInstallations(project: customer.project, provider: provider, groupRef: customer.groupRef)
            for installation in installations {
                let integration = try await control.integration(installation.integrationId, project: customer.project)
                if integration.name == selector || provider.rawValue == selector.lowercased() {
                    return (customer, (installation.installationId, integration))
                }
                if normalizedUUID(selector) != nil,
                   try await runner.providers.installations.context(installation.installationId)?.connectionId == normalizedUUID(selector) {
                    return (customer, (installation.installationId, integration))
                }
            }
        }
        throw ActionFailure(status: 404, message: "connection '\(selector)' was not found for customer \(customer.groupRef)")
    }

    /// What an instance request works on: the customer, the target and the action.
    struct InstanceScope: Sendable {
        var customer: Customer
        var target: ActionTarget
        var action: ActionDefinition
    }

    private func instanceScope(_ request: Request, _ context: APIContext) async throws -> InstanceScope {
        let (customer, chosen) = try await customerConnection(request, context)
        let provider = chosen.integration.provider
        let key = context.path("action")
        guard let action = ActionCatalog.action(key, provider: provider) else {
            throw ActionFailure(status: 404, message: "action '\(key)' is not in the \(provider.rawValue) catalog; list the connection's actions")
        }
        let target = try await runner.actionTarget(action, project: customer.project, provider: provider, groupRef: customer.groupRef,
                                            candidates: [chosen])
        return InstanceScope(customer: customer, target: target, action: action)
    }

    /// The live instance of the action for the customer's integration, made on first access.
    private func liveInstance(_ scope: InstanceScope) async throws -> ActionInstanceRow {
        guard let row = try await liveInstances(scope.customer, integrationId: scope.target.integration.id, keys: [scope.action.key])
            .first?.value
        else { throw ActionFailure(status: 503, message: "the action instance could not be made; try again") }
        return row
    }

    /// The live instances of actions (by key) for the customer's integration, those missing made, in one
    /// statement (a second when another request made one at the same moment).
    private func liveInstances(_ customer: Customer, integrationId: String, keys: [String]) async throws -> [String: ActionInstanceRow] {
        let columns = """
            id::text AS id, action_key, customization::text AS customization, \(timestamp("created_at")) AS created_at,
            \(timestamp("updated_at")) AS updated_at, \(timestamp("set_up_at")) AS set_up_at, \(timestamp("archived_at")) AS archived_at
            """
        let parameters = [customer.project.id, integrationId, customer.groupRef, PostgresArray.literal(keys)]
        var found: [String: ActionInstanceRow] = [:]
        for _ in 0..<2 {
            let rows = try await database.query(
                """
                WITH made AS (
                    INSERT INTO action_instances (project_id, integration_id, group_ref, action_key)
                    SELECT $1::uuid, $2::uuid, $3, key FROM unnest($4::text[]) AS key
                    WHERE NOT EXISTS (SELECT 1 FROM action_instances a WHERE a.integration_id = $2::uuid AND a.group_ref = $3
                                      AND a.action_key = key AND a.archived_at IS NULL)
                    ON CONFLICT (integration_id, group_ref, action_key) WHERE archived_at IS NULL DO NOTHING
                    RETURNING \(columns))
                SELECT \(columns) FROM action_instances
                WHERE project_id = $1::uuid AND integration_id = $2::uuid AND group_ref = $3 AND action_key = ANY($4::text[])
                    AND archived_at IS NULL
                UNION ALL SELECT * FROM made
                """, parameters)
            for row in rows.rows { found[try row.string("action_key")] = try Self.instanceRow(row) }
            if found.count == keys.count { return found }
        }
        throw ActionFailure(status: 503, message: "the action instances could not be made; try again")
    }

    private static func instanceRow(_ row: PostgresRow) throws -> ActionInstanceRow {
        ActionInstanceRow(
            id: try row.string("id"),
            customization: (try? JSONCoding.decode(ActionCustomization.self, from: try row.string("customization"))) ?? ActionCustomization(),
            createdAt: try row.string("created_at"), updatedAt: try row.string("updated_at"), setUpAt: row["set_up_at"],
            archivedAt: row["archived_at"])
    }

    /// Changes an instance (`assignments` is SQL of constant assignments, `$2…` its parameters) and gives
    /// back the row as it then is.
    private func updateInstance(_ id: String, _ assignments: String, _ parameters: [String]) async throws -> ActionInstanceRow {
        guard let row = try await database.query(
            """
            UPDATE action_instances SET \(assignments), updated_at = now() WHERE id = $1::uuid
            RETURNING id::text AS id, customization::text AS customization, \(timestamp("created_at")) AS created_at,
                \(timestamp("updated_at")) AS updated_at, \(timestamp("set_up_at")) AS set_up_at, \(timestamp("archived_at")) AS archived_at
            """, [id] + parameters
        ).first else { throw ActionFailure(status: 404, message: "the action instance is gone") }
        return try Self.instanceRow(row)
    }

    /// An instance in the action-instance shape.
    private func instanceJSON(_ scope: InstanceScope, _ row: ActionInstanceRow, refresh: Bool = false) async throws -> JSONValue {
        let action = scope.action
        let base = try await runner.actionInputSchema(action, scope.target, refresh: refresh)
        var config: [String: JSONValue] = [:]
        if let object = action.providerObject { config["dataSource"] = ["collectionKey": .string(object)] }
        if action.kind == .create || action.kind == .update { config["fieldMapping"] = .object(row.customization.fieldMapping) }
        config["inputDefaults"] = .object(row.customization.inputDefaults)
        var body: [String: JSONValue] = [
            "id": .string(row.id), "key": .string(action.key), "name": .string(row.customization.name ?? action.name),
            "description": .string(row.customization.description ?? action.description), "type": .string(action.kind.instanceType),
            "integrationId": .string(scope.target.integration.id), "integrationKey": .string(scope.target.integration.name),
            "connectionId": .string(scope.target.installation.connectionId), "userId": .string(scope.customer.groupRef),
            "isCustomized": .bool(!row.customization.isEmpty), "state": .string(row.archivedAt == nil ? "READY" : "ARCHIVED"),
            "config": .object(config), "inputSchema": row.customization.inputSchema(base: base),
            "outputSchema": ActionSchema.output(action), "createdAt": .string(row.createdAt), "updatedAt": .string(row.updatedAt),
        ]
        if let setUpAt = row.setUpAt {
            body["dependencies"] = ["fieldsReadAt": .string(setUpAt), "fields": .number(Double(base["properties"]?.objectValue?.count ?? 0))]
        }
        if let archivedAt = row.archivedAt { body["archivedAt"] = .string(archivedAt) }
        return .object(body)
    }

    /// Answers the instance after `change` (given the live row, giving the row to show).
    private func instanceAnswer(
        _ request: Request, _ context: APIContext, refresh: Bool = false,
        _ change: (InstanceScope, ActionInstanceRow) async throws -> ActionInstanceRow
    ) async throws -> Response {
        let scope = try await instanceScope(request, context)
        let row = try await change(scope, try await liveInstance(scope))
        return jsonResponse(200, try JSONCoding.encode(try await instanceJSON(scope, row, refresh: refresh)))
    }

    func listInstances(_ request: Request, _ context: APIContext) async throws -> Response {
        let (customer, chosen) = try await customerConnection(request, context)
        var scopes: [InstanceScope] = []
        for action in ActionCatalog.actions(for: chosen.integration.provider) {
            // Only the actions the connection's integration can run: its write objects, proxy for raw requests.
            let target: ActionTarget
            do {
                target = try await runner.actionTarget(action, project: customer.project, provider: chosen.integration.provider,
                                                groupRef: customer.groupRef, candidates: [chosen])
            } catch is ActionFailure {
                continue
            }
            scopes.append(InstanceScope(customer: customer, target: target, action: action))
        }
        let rows = try await liveInstances(customer, integrationId: chosen.integration.id, keys: scopes.map(\.action.key))
        var items: [JSONValue] = []
        for scope in scopes {
            guard let row = rows[scope.action.key] else { continue }
            items.append(try await instanceJSON(scope, row))
        }
        return jsonResponse(200, try JSONCoding.encode(["items": JSONValue.array(items)]))
    }

    func customizeInstance(_ request: Request, _ context: APIContext) async throws -> Response {
        let scope = try await instanceScope(request, context)
        let patch = try await jsonObject(request)
        let row = try await liveInstance(scope)
        let base = try await runner.actionInputSchema(scope.action, scope.target)
        let (merged, issues) = row.customization.merged(patch, action: scope.action, base: base)
        guard issues.isEmpty else {
            throw ActionFailure(status: 400, message: "the customization does not fit \(scope.action.key): "
                + issues.map(\.description).joined(separator: "; "), issues: issues)
        }
        let changed = try await updateInstance(row.id, "customization = $2::jsonb", [try JSONCoding.encodeString(merged)])
        return jsonResponse(200, try JSONCoding.encode(try await instanceJSON(scope, changed)))
    }

    func runInstance(_ request: Request, _ context: APIContext) async throws -> Response {
        let scope = try await instanceScope(request, context)
        let given = try await optionalJSONObject(request)
        let row = try await liveInstance(scope)
        let schema = row.customization.inputSchema(base: try await runner.actionInputSchema(scope.action, scope.target))
        let checked = SchemaCheck().check(.object(row.customization.withDefaults(given)), against: schema)
        guard checked.issues.isEmpty, let input = checked.value.objectValue else { throw ActionFailure.invalid(scope.action, checked.issues) }
        let outcome = try await runner.runAction(scope.action, input: input, record: row.customization.record(from: input), scope.target)
        var headers = HTTPFields()
        let output: JSONValue
        switch outcome {
        case .read(let answer):
            output = recordsOutput(answer, provider: scope.target.provider, single: input["id"] != nil)
        case .http(_, let status, let responseHeaders, let body):
            output = ["status": .number(Double(status)), "headers": .object(responseHeaders), "data": body]
        case .written(let recordId, _, let operationId):
            headers[APIHeaders.operation] = operationId
            output = ["id": .string(recordId), "operationId": .string(operationId)]
        case .pending(let operationId):
            headers[APIHeaders.operation] = operationId
            let pending: JSONValue = ["type": "pending", "message": .string("the write goes on as operation \(operationId)"),
                                      "data": ["operationId": .string(operationId)]]
            return jsonResponse(202, try JSONCoding.encode(pending), headers: headers)
        }
        return jsonResponse(200, try JSONCoding.encode(["output": output]), headers: headers)
    }

    /// A read's answer as records `{id, fields, createdTime, updatedTime}`: `{record}` for one by id,
    /// else `{records, cursor?}`.
    func recordsOutput(_ answer: JSONValue, provider: Provider, single: Bool) -> JSONValue {
        let connector = runner.providers.connectors.connector(for: provider)
        func record(_ summary: RecordSummary) -> JSONValue {
            var result: [String: JSONValue] = ["id": .string(summary.id), "fields": .object(summary.fields)]
            if let created = summary.createdTime { result["createdTime"] = created }
            if let updated = summary.updatedTime { result["updatedTime"] = updated }
            return .object(result)
        }
        if single { return ["record": record(connector.record(answer))] }
        let (records, cursor) = connector.records(in: answer)
        var output: [String: JSONValue] = ["records": .array(records.map(record))]
        if let cursor { output["cursor"] = .string(cursor) }
        return .object(output)
    }
}

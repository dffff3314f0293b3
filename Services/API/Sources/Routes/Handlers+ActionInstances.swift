import Connectors
import Actions
import Crypto
import Foundation
import Postgres
import ProviderAccess
import HTTPTypes
import Hummingbird
import Shared

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
extension Handlers {
    func addActionInstanceRoutes(to router: Router<BasicRequestContext>) {
        let instance = "connections/:connection/actions/:action"
        router.get("connections/:connection/actions") { request, context in
            await self.instances { try await self.listInstances(request, context) }
        }
        router.get(RouterPath(instance)) { request, context in
            await self.instances { try await self.instanceAnswer(request, context) { _, row in row } }
        }
        router.patch(RouterPath(instance)) { request, context in
            await self.instances { try await self.customizeInstance(request, context) }
        }
        router.delete(RouterPath(instance)) { request, context in
            await self.instances { try await self.instanceAnswer(request, context) { scope, row in
                try await self.updateInstance(row.id, "archived_at = now()", [])
            } }
        }
        router.post(RouterPath("\(instance)/reset")) { request, context in
            await self.instances { try await self.instanceAnswer(request, context) { _, row in
                try await self.updateInstance(row.id, "customization = '{}'::jsonb", [])
            } }
        }
        router.post(RouterPath("\(instance)/setup")) { request, context in
            await self.instances { try await self.instanceAnswer(request, context, refresh: true) { _, row in
                try await self.updateInstance(row.id, "set_up_at = now()", [])
            } }
        }
        router.post(RouterPath("\(instance)/run")) { request, context in
            await self.instances { try await self.runInstance(request, context) }
        }
        let projects = router.group("v1/projects/:project/customer-token-keys")
        projects.post { request, context in await self.answer { try await self.createTokenKey(request, context) } }
        projects.get { request, context in await self.answer { try await self.listTokenKeys(request, context) } }
        projects.delete(":key") { request, context in await self.answer { try await self.revokeTokenKey(request, context) } }
    }

    /// Runs an instance handler: failures answer `{type, message, data: {errors: [{path, message}]}}`.
    func instances(_ body: () async throws -> Response) async -> Response {
        await actionHandler(body) { failure in
            let types = [400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict", 422: "connection_error", 429: "rate_limited",
                         502: "connection_error"]
            var data: [String: JSONValue] = [:]
            if !failure.issues.isEmpty {
                data["errors"] = .array(failure.issues.map { ["path": .string($0.path), "message": .string($0.message)] })
            }
            if let body = failure.providerBody { data["response"] = body }
            if let operationId = failure.operationId { data["operationId"] = .string(operationId) }
            var answer: [String: JSONValue] = ["type": .string(types[failure.status] ?? "internal_error"), "message": .string(failure.message)]
            if !data.isEmpty { answer["data"] = .object(data) }
            return jsonResponse(failure.status, (try? JSONCoding.encode(JSONValue.object(answer))) ?? [])
        }
    }

    /// The customer's connection a path names: an integration's name, the app (`hubspot`,
    /// `salesforce`: the first such integration by name) or a connection id. Only the token's own
    /// customer's installations are looked at.
    private func customerConnection(_ request: Request, _ context: BasicRequestContext) async throws
        -> (Customer, (id: String, integration: ControlData.Integration))
    {
        let customer = try await customerTokens.customer(authorization: request.headers[.authorization])
        let selector = context.parameters.get("connection") ?? ""
        for provider in Provider.allCases {
            let installations = try await control.customerInstallations(project: customer.project, provider: provider, groupRef: customer.groupRef)
            for installation in installations {
                let integration = try await control.integration(installation.integrationId, project: customer.project)
                if integration.name == selector || provider.rawValue == selector.lowercased() {
                    return (customer, (installation.installationId, integration))
                }
                if normalizedUUID(selector) != nil,
                   try await self.installations.context(installation.installationId)?.connectionId == normalizedUUID(selector) {
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

    private func instanceScope(_ request: Request, _ context: BasicRequestContext) async throws -> InstanceScope {
        let (customer, chosen) = try await customerConnection(request, context)
        let provider = chosen.integration.provider
        let key = context.parameters.get("action") ?? ""
        guard let action = ActionCatalog.action(key, provider: provider) else {
            throw ActionFailure(status: 404, message: "action '\(key)' is not in the \(provider.rawValue) catalog; list the connection's actions")
        }
        let target = try await actionTarget(action, project: customer.project, provider: provider, groupRef: customer.groupRef,
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
        // Catalog keys are letters and dashes only, so they make a safe array literal.
        let parameters = [customer.project.id, integrationId, customer.groupRef, "{" + keys.joined(separator: ",") + "}"]
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
        let base = try await actionInputSchema(action, scope.target, refresh: refresh)
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
        _ request: Request, _ context: BasicRequestContext, refresh: Bool = false,
        _ change: (InstanceScope, ActionInstanceRow) async throws -> ActionInstanceRow
    ) async throws -> Response {
        let scope = try await instanceScope(request, context)
        let row = try await change(scope, try await liveInstance(scope))
        return jsonResponse(200, try JSONCoding.encode(try await instanceJSON(scope, row, refresh: refresh)))
    }

    func listInstances(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let (customer, chosen) = try await customerConnection(request, context)
        var scopes: [InstanceScope] = []
        for action in ActionCatalog.actions(for: chosen.integration.provider) {
            // Only the actions the connection's integration can run: its write objects, proxy for raw requests.
            let target: ActionTarget
            do {
                target = try await actionTarget(action, project: customer.project, provider: chosen.integration.provider,
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

    func customizeInstance(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let scope = try await instanceScope(request, context)
        let patch = try await jsonObject(request)
        let row = try await liveInstance(scope)
        let base = try await actionInputSchema(scope.action, scope.target)
        let (merged, issues) = row.customization.merged(patch, action: scope.action, base: base)
        guard issues.isEmpty else {
            throw ActionFailure(status: 400, message: "the customization does not fit \(scope.action.key): "
                + issues.map(\.description).joined(separator: "; "), issues: issues)
        }
        let changed = try await updateInstance(row.id, "customization = $2::jsonb", [try JSONCoding.encodeString(merged)])
        return jsonResponse(200, try JSONCoding.encode(try await instanceJSON(scope, changed)))
    }

    func runInstance(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let scope = try await instanceScope(request, context)
        let given = try await optionalJSONObject(request)
        let row = try await liveInstance(scope)
        let schema = row.customization.inputSchema(base: try await actionInputSchema(scope.action, scope.target))
        let checked = SchemaCheck().check(.object(row.customization.withDefaults(given)), against: schema)
        guard checked.issues.isEmpty, let input = checked.value.objectValue else { throw ActionFailure.invalid(scope.action, checked.issues) }
        let outcome = try await runAction(scope.action, input: input, record: row.customization.record(from: input), scope.target)
        var headers = HTTPFields()
        let output: JSONValue
        switch outcome {
        case .read(let answer):
            output = recordsOutput(answer, provider: scope.target.provider, single: input["id"] != nil)
        case .http(_, let status, let responseHeaders, let body):
            output = ["status": .number(Double(status)), "headers": .object(responseHeaders), "data": body]
        case .written(let recordId, _, let operationId):
            headers[Self.operationHeader] = operationId
            output = ["id": .string(recordId), "operationId": .string(operationId)]
        case .pending(let operationId):
            headers[Self.operationHeader] = operationId
            let pending: JSONValue = ["type": "pending", "message": .string("the write goes on as operation \(operationId)"),
                                      "data": ["operationId": .string(operationId)]]
            return jsonResponse(202, try JSONCoding.encode(pending), headers: headers)
        }
        return jsonResponse(200, try JSONCoding.encode(["output": output]), headers: headers)
    }

    /// A read's answer as records `{id, fields, createdTime, updatedTime}`: `{record}` for one by id,
    /// else `{records, cursor?}`.
    func recordsOutput(_ answer: JSONValue, provider: Provider, single: Bool) -> JSONValue {
        let connector = connectors.connector(for: provider)
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

    // MARK: Customer-token keys

    func createTokenKey(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let project = try await project(request, context)
        let body = try await optionalJSONObject(request)
        let label = body["label"]?.stringValue
        let key = "wbk_" + Self.randomHex(12)
        let secret = Self.randomHex(32)
        let sealed = try configuration.secrets.seal(Array(secret.utf8), context: InstallationStore.customerTokenKeyContext(key))
        let row = try await database.query(
            "INSERT INTO customer_token_keys (key, project_id, secret, label) VALUES ($1, $2::uuid, $3, $4) RETURNING \(timestamp("created_at")) AS created_at",
            [key, project.id, sealed, label]
        ).first
        var answer: [String: JSONValue] = ["key": .string(key), "secret": .string(secret), "createdAt": .string(row?["created_at"] ?? "")]
        if let label { answer["label"] = .string(label) }
        return jsonResponse(201, try JSONCoding.encode(JSONValue.object(answer)))
    }

    func listTokenKeys(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let project = try await project(request, context)
        let rows = try await database.query(
            """
            SELECT key, label, \(timestamp("created_at")) AS created_at, \(timestamp("revoked_at")) AS revoked_at
            FROM customer_token_keys WHERE project_id = $1::uuid ORDER BY created_at
            """, [project.id])
        let keys: [JSONValue] = try rows.rows.map { row in
            var entry: [String: JSONValue] = ["key": .string(try row.string("key")), "createdAt": .string(try row.string("created_at"))]
            if let label = row["label"] { entry["label"] = .string(label) }
            if let revoked = row["revoked_at"] { entry["revokedAt"] = .string(revoked) }
            return .object(entry)
        }
        return jsonResponse(200, try JSONCoding.encode(["keys": JSONValue.array(keys)]))
    }

    func revokeTokenKey(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let project = try await project(request, context)
        let key = context.parameters.get("key") ?? ""
        guard try await database.query(
            "UPDATE customer_token_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key = $1 AND project_id = $2::uuid RETURNING key",
            [key, project.id]
        ).first != nil else { throw Problem.notFound("customer-token key '\(key)' was not found", name: "key") }
        customerTokens.keys.remove(key)
        return Response(status: .noContent)
    }

    static func randomHex(_ count: Int) -> String {
        SymmetricKey(size: .init(bitCount: count * 8)).withUnsafeBytes { bytes in bytes.map { String(format: "%02x", $0) }.joined() }
    }
}

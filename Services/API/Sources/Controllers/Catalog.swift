import Actions
import Connectors
import Foundation
import HTTPTypes
import Hummingbird
import Postgres
import ProviderAccess
import Shared

/// The action catalog (`/api/v2/integration-schema/{app}/actions`): list an app's actions, read one's
/// parameters, execute it for a linked account (`x-api-key` and `linked_account_id`).
struct CatalogController: Controller {
    let configuration: APIConfiguration
    let control: ControlData
    let database: PostgresPool
    let runner: ActionRunner

    func addRoutes(to actions: RouterGroup<APIContext>) {
        actions.get { try await self.listActions($0, $1) }
        actions.get(":action") { try await self.actionParameters($0, $1) }
        actions.post(":action/execute") { try await self.executeAction($0, $1) }
    }
}

extension CatalogController {
    /// The project, app and linked account of a catalog request, with the account's installations.
    private func linkedAccount(_ context: APIContext) async throws
        -> (ControlData.Project, Provider, String, [(id: String, integration: ControlData.Integration)])
    {
        let (customer, provider) = try context.authenticatedCustomer
        let (project, groupRef) = (customer.project, customer.groupRef)
        let installations = try await control.customerInstallations(project: project, provider: provider, groupRef: groupRef)
        guard !installations.isEmpty else {
            throw ActionFailure(status: 404, message: "linked account \(groupRef) has no installation of \(provider.rawValue)")
        }
        var candidates: [(id: String, integration: ControlData.Integration)] = []
        for installation in installations {
            candidates.append((installation.installationId, try await control.integration(installation.integrationId, project: project)))
        }
        return (project, provider, groupRef, candidates)
    }

    private func catalogAction(_ context: APIContext, _ provider: Provider) throws -> ActionDefinition {
        let id = context.path("action")
        guard let action = ActionCatalog.action(id, provider: provider) else {
            throw ActionFailure(status: 404, message: "Action \(id) not found for \(provider.rawValue); list the app's actions for their ids")
        }
        return action
    }

    func listActions(_ request: Request, _ context: APIContext) async throws -> Response {
        let (_, provider, _, _) = try await linkedAccount(context)
        let list: [JSONValue] = ActionCatalog.actions(for: provider).map {
            ["name": .string($0.name), "action_id": .string($0.id), "description": .string($0.description), "tag": "v2"]
        }
        return jsonResponse(200, try JSONCoding.encode(JSONValue.array(list)))
    }

    /// The action's parameters: `[{name, label, required, type, description, options?, schema}]`, or with
    /// `?format=json-schema` the whole input as one JSON Schema.
    func actionParameters(_ request: Request, _ context: APIContext) async throws -> Response {
        let (project, provider, groupRef, candidates) = try await linkedAccount(context)
        let action = try catalogAction(context, provider)
        let target = try await runner.actionTarget(action, project: project, provider: provider, groupRef: groupRef, candidates: candidates)
        let schema = try await runner.actionInputSchema(action, target, refresh: request.uri.queryParameters["refresh"] == "true")
        if request.uri.queryParameters["format"] == "json-schema" { return jsonResponse(200, try JSONCoding.encode(schema)) }
        let required = Set((schema["required"]?.arrayValue ?? []).compactMap(\.stringValue))
        let parameters: [JSONValue] = (schema["properties"]?.objectValue ?? [:]).sorted { lhs, rhs in
            required.contains(lhs.key) == required.contains(rhs.key) ? lhs.key < rhs.key : required.contains(lhs.key)
        }.map { name, property in
            var entry: [String: JSONValue] = [
                "name": .string(name), "label": property["title"] ?? .string(name), "required": .bool(required.contains(name)),
                "type": .string(Self.parameterType(property)), "description": property["description"] ?? .string(name), "schema": property,
            ]
            if let options = property["enum"]?.arrayValue ?? property["items"]?["enum"]?.arrayValue {
                entry["options"] = .array(options.map { ["name": $0, "value": $0] })
            }
            return .object(entry)
        }
        return jsonResponse(200, try JSONCoding.encode(JSONValue.array(parameters)))
    }

    /// A parameter's type in the catalog's terms.
    static func parameterType(_ schema: JSONValue) -> String {
        if schema["enum"] != nil { return "select" }
        switch (schema["type"]?.stringValue, schema["format"]?.stringValue) {
        case ("string", "date"?): return "date"
        case ("string", "date-time"?): return "datetime"
        case ("string", _): return "text"
        case ("integer", _), ("number", _): return "number"
        case ("boolean", _): return "boolean"
        default: return "json"
        }
    }

    func executeAction(_ request: Request, _ context: APIContext) async throws -> Response {
        let (project, provider, groupRef, candidates) = try await linkedAccount(context)
        let action = try catalogAction(context, provider)
        let body = try await optionalJSONObject(request)
        let target = try await runner.actionTarget(action, project: project, provider: provider, groupRef: groupRef, candidates: candidates)
        let schema = try await runner.actionInputSchema(action, target)
        let checked = SchemaCheck(coerceStrings: true).check(.object(body), against: schema)
        guard checked.issues.isEmpty, let input = checked.value.objectValue else { throw ActionFailure.invalid(action, checked.issues) }
        let outcome = try await runner.runAction(action, input: input, record: ActionCustomization().record(from: input), target)
        var headers = HTTPFields()
        var answer: [String: JSONValue] = ["node_status": "Success"]
        switch outcome {
        case .read(let data):
            answer["data"] = data
        case .http(let url, let status, let responseHeaders, let body):
            answer["data"] = ["url": .string(url), "status": .number(Double(status)), "headers": .object(responseHeaders), "body": body]
        case .pending(let operationId):
            headers[APIHeaders.operation] = operationId
            let pending: JSONValue = [
                "node_status": "Pending", "operation_id": .string(operationId),
                "message": .string("the write did not finish within \(configuration.syncTimeout) s; it goes on as operation \(operationId)"),
            ]
            return jsonResponse(202, try JSONCoding.encode(pending), headers: headers)
        case .written(let recordId, let data, let operationId):
            headers[APIHeaders.operation] = operationId
            answer["operation_id"] = .string(operationId)
            answer["data"] = runner.providers.connectors.connector(for: provider).nativeAnswer(ActionRunner.writeType(action), recordId: recordId, data: data)
        }
        return jsonResponse(200, try JSONCoding.encode(JSONValue.object(answer)), headers: headers)
    }
}

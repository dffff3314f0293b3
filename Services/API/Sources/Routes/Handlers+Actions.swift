import Actions
import Connectors
import Foundation
import HTTPClient
import HTTPTypes
import Hummingbird
import ProviderAccess
import Shared

/// Where an action runs: a customer's installation of an app, and the object name its integration
/// declares for the action's object (nil when the integration does not write it).
struct ActionTarget: Sendable {
    var project: ControlData.Project
    var provider: Provider
    var groupRef: String
    var integration: ControlData.Integration
    var installation: InstallationContext
    var objectName: String?
}

/// How a run ended.
enum ActionOutcome: Sendable {
    /// A read: the provider's answer in its own shape.
    case read(JSONValue)
    /// A write that the provider applied, as its operation.
    case written(recordId: String, data: [String: JSONValue], operationId: String)
    /// A write still going on after the synchronous wait; it ends as its operation.
    case pending(operationId: String)
    /// A raw HTTP request's answer.
    case http(url: String, status: Int, headers: [String: JSONValue], body: JSONValue)
}

/// An action that could not run: the status to answer, why, and the provider's own answer when it
/// refused.
struct ActionFailure: Error, Sendable {
    var status: Int
    var message: String
    var issues: [SchemaIssue] = []
    var providerBody: JSONValue?
    var operationId: String?

    init(status: Int, message: String, issues: [SchemaIssue] = [], providerBody: JSONValue? = nil, operationId: String? = nil) {
        self.status = status
        self.message = message
        self.issues = issues
        self.providerBody = providerBody
        self.operationId = operationId
    }

    /// A refused input, naming each parameter.
    static func invalid(_ action: ActionDefinition, _ issues: [SchemaIssue]) -> ActionFailure {
        let first = issues.first.map { $0.path.isEmpty ? $0.message : "parameter '\($0.path)' \($0.message)" } ?? ""
        let more = issues.count > 1 ? " (and \(issues.count - 1) more)" : ""
        return ActionFailure(status: 400, message: "the input of \(action.id) is not valid: \(first)\(more); nothing was sent",
                             issues: issues)
    }
}

/// Runs catalog actions (`get_contact`, `create_contact`, …) for a customer's installation: reads call
/// the provider from here and change nothing; writes go through write-requests to the writer like every
/// other write, so each has an operation, a destination row and a change event.
extension Handlers {
    /// The installation of the customer an action runs on, from the customer's installations of the app:
    /// the first whose integration writes the action's object (for a read, else the first), or for the
    /// raw HTTP request the first whose integration enables proxy.
    func actionTarget(
        _ action: ActionDefinition, project: ControlData.Project, provider: Provider, groupRef: String,
        candidates: [(id: String, integration: ControlData.Integration)]
    ) async throws -> ActionTarget {
        func declared(_ integration: ControlData.Integration) -> String? {
            guard let object = action.providerObject else { return nil }
            return integration.objects.first { provider.profile.objectName(for: $0).lowercased() == object.lowercased() }
        }
        let chosen: (id: String, integration: ControlData.Integration)?
        switch action.kind {
        case .httpRequest:
            chosen = candidates.first { $0.integration.spec?.proxy?.enabled == true }
            guard chosen != nil else {
                throw ActionFailure(status: 403, message: "no \(provider.rawValue) integration of \(groupRef) enables proxy; "
                    + "declare proxy: {enabled: true} in its manifest to make raw requests")
            }
        case .create, .update, .delete:
            chosen = candidates.first { declared($0.integration) != nil }
            guard chosen != nil else {
                throw ActionFailure(status: 404, message: "\(groupRef) has no \(provider.rawValue) installation that writes "
                    + "\(action.providerObject ?? ""); declare it in the integration's write objects")
            }
        case .get, .search:
            chosen = candidates.first { declared($0.integration) != nil } ?? candidates.first
        }
        guard let chosen, let installation = try await installations.context(chosen.id) else {
            throw ActionFailure(status: 404, message: "\(groupRef) has no installation of \(provider.rawValue)")
        }
        return ActionTarget(project: project, provider: provider, groupRef: groupRef, integration: chosen.integration,
                            installation: installation, objectName: declared(chosen.integration))
    }

    /// The action's input schema from the object's fields in the customer's account (`refresh`: read
    /// them again from the provider).
    func actionInputSchema(_ action: ActionDefinition, _ target: ActionTarget, refresh: Bool = false) async throws -> JSONValue {
        guard let object = action.providerObject else { return ActionSchema.input(action, provider: target.provider, fields: [:]) }
        let fields = try await objectFields(object, installation: target.installation, provider: target.provider, refresh: refresh)
        return ActionSchema.input(action, provider: target.provider, fields: fields.objectValue ?? [:])
    }

    /// Runs an action whose input was checked against its schema; `record` is what a write sends.
    func runAction(_ action: ActionDefinition, input: [String: JSONValue], record: [String: JSONValue], _ target: ActionTarget)
        async throws -> ActionOutcome
    {
        switch action.kind {
        case .get, .search:
            return .read(try await readAction(action, input, target))
        case .httpRequest:
            let method = input["method"]?.stringValue ?? "GET"
            let (url, response) = try await rawProviderCall(input, method: method, path: input["path"]?.stringValue ?? "",
                                                            installation: target.installation)
            var headers: [String: JSONValue] = [:]
            for (name, value) in response.headers where name != "set-cookie" { headers[name] = .string(value) }
            let body = (try? JSONCoding.decode(JSONValue.self, from: response.body)) ?? .string(response.text)
            return .http(url: url, status: response.status, headers: headers, body: body)
        case .create, .update, .delete:
            return try await writeAction(action, input: input, record: record, target)
        }
    }

    private func writeAction(_ action: ActionDefinition, input: [String: JSONValue], record: [String: JSONValue],
                             _ target: ActionTarget) async throws -> ActionOutcome
    {
        guard let objectName = target.objectName else {
            throw ActionFailure(status: 404, message: "integration \(target.integration.name) does not write \(action.providerObject ?? "")")
        }
        let type = Self.writeType(action)
        if type != .delete, record.isEmpty {
            throw ActionFailure(status: 400, message: "\(action.id) needs at least one field to write", issues: [.init(path: "", message: "no field to write")])
        }
        let operationId = UUID().uuidString.lowercased()
        let message = WriteRequestMessage(
            operationId: operationId, projectId: target.project.id, integrationId: target.integration.id,
            installationId: target.installation.installationId, groupRef: target.groupRef, provider: target.provider,
            objectName: objectName, type: type, mode: .synchronous, record: type == .delete ? [:] : record,
            recordId: input["id"]?.stringValue, associations: nil, replyTo: configuration.instanceId, acceptedAt: Timestamp.now())
        guard let completion = try await publishAndWait(message) else { return .pending(operationId: operationId) }
        guard completion.success else {
            let error = completion.error ?? WriteError(message: "the write failed")
            let body = error.raw.flatMap { try? JSONCoding.decode(JSONValue.self, from: Array($0.utf8)) } ?? error.raw.map { .string($0) }
            throw ActionFailure(status: completion.providerStatus == 404 ? 404 : 422,
                                message: "\(target.provider.rawValue) refused the write: \(error.message)", providerBody: body,
                                operationId: operationId)
        }
        return .written(recordId: completion.recordId ?? input["id"]?.stringValue ?? "", data: completion.data ?? record,
                        operationId: operationId)
    }

    /// The write an action of kind create, update or delete makes.
    static func writeType(_ action: ActionDefinition) -> WriteType {
        action.kind == .create ? .create : action.kind == .update ? .update : .delete
    }

    // MARK: Reads

    private func readAction(_ action: ActionDefinition, _ input: [String: JSONValue], _ target: ActionTarget) async throws -> JSONValue {
        let object = action.providerObject ?? ""
        let limit = Int(input["limit"]?.scalarText ?? "") ?? 10
        let wanted = input["properties"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let after = input["after"]?.stringValue
        let read: RecordRead
        if action.kind == .search {
            let equals = (input["filters"]?.objectValue ?? [:]).sorted { $0.key < $1.key }.map { (field: $0.key, value: $0.value) }
            read = .search(object: object, equals: equals, fields: wanted, limit: limit, after: after)
        } else if let id = input["id"]?.stringValue {
            read = .get(object: object, id: id, fields: wanted)
        } else {
            read = .list(object: object, fields: wanted, limit: limit, after: after)
        }
        let name = target.provider.rawValue
        switch try await providerRead(read, object: object, installation: target.installation) {
        case .answered(let answer):
            return answer
        case .refused(_, let body, true):
            throw ActionFailure(status: 429, message: "\(name)'s rate limit for this account was reached; try the read again later",
                                providerBody: body)
        case .refused(let status, let body, false):
            throw ActionFailure(status: status == 404 ? 404 : status >= 500 ? 502 : 422,
                                message: "\(name) answered the read with HTTP \(status)", providerBody: body)
        case .unauthorized(let body):
            throw ActionFailure(status: 422, message: "\(name) answered the read with HTTP 401", providerBody: body)
        case .unreachable(let reason):
            throw Problem(title: "Bad Gateway", status: 502, detail: "the provider could not be reached: \(reason)")
        }
    }
}

// MARK: The catalog API: /api/v2/integration-schema/{app}/actions

extension Handlers {
    static let linkedAccountHeader = HTTPField.Name("linked_account_id")!

    func addActionRoutes(to router: Router<BasicRequestContext>) {
        let actions = "api/v2/integration-schema/:app/actions"
        router.get(RouterPath(actions)) { request, context in await self.catalog { try await self.listActions(request, context) } }
        router.get(RouterPath("\(actions)/:action")) { request, context in
            await self.catalog { try await self.actionParameters(request, context) }
        }
        router.post(RouterPath("\(actions)/:action/execute")) { request, context in
            await self.catalog { try await self.executeAction(request, context) }
        }
        addActionInstanceRoutes(to: router)
    }

    /// Runs an action handler; a failure is answered by `render`. Problems, refused tokens and
    /// anything unexpected (a 503 that reveals nothing internal) become action failures.
    func actionHandler(_ body: () async throws -> Response, render: (ActionFailure) -> Response) async -> Response {
        do {
            return try await body()
        } catch let error as ActionFailure {
            return render(error)
        } catch let error as CustomerTokenError {
            return render(ActionFailure(status: 401, message: error.message))
        } catch let problem as Problem {
            return render(ActionFailure(status: problem.status, message: problem.detail,
                                        issues: (problem.issues ?? []).map { .init(path: $0.name, message: $0.detail) }))
        } catch {
            logger.error("action request failed", metadata: ["error": "\(error)"])
            return render(ActionFailure(status: 503, message: "the request could not be completed now; try again"))
        }
    }

    /// Runs a catalog handler: failures answer `{node_status: "Failed", message, errors?, data?}`.
    func catalog(_ body: () async throws -> Response) async -> Response {
        await actionHandler(body) { failure in
            var answer: [String: JSONValue] = ["node_status": "Failed", "message": .string(failure.message)]
            if !failure.issues.isEmpty {
                answer["errors"] = .array(failure.issues.map { ["parameter": .string($0.path), "message": .string($0.message)] })
            }
            if let body = failure.providerBody { answer["data"] = body }
            if let operationId = failure.operationId { answer["operation_id"] = .string(operationId) }
            return jsonResponse(failure.status, (try? JSONCoding.encode(JSONValue.object(answer))) ?? [])
        }
    }

    /// The project, app and linked account of a catalog request, with the account's installations.
    private func linkedAccount(_ request: Request, _ context: BasicRequestContext) async throws
        -> (ControlData.Project, Provider, String, [(id: String, integration: ControlData.Integration)])
    {
        let project = try await control.project(forKey: apiKey(request))
        let slug = context.parameters.get("app") ?? ""
        guard let provider = Provider(rawValue: slug.lowercased()) else {
            throw ActionFailure(status: 404, message: "app '\(slug)' is not served; use one of: "
                + Provider.allCases.map(\.rawValue).joined(separator: ", "))
        }
        guard let groupRef = request.headers[Self.linkedAccountHeader], !groupRef.isEmpty else {
            throw ActionFailure(status: 400, message: "the linked_account_id header is required: the customer's groupRef",
                                issues: [.init(path: "linked_account_id", message: "is required")])
        }
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

    private func catalogAction(_ context: BasicRequestContext, _ provider: Provider) throws -> ActionDefinition {
        let id = context.parameters.get("action") ?? ""
        guard let action = ActionCatalog.action(id, provider: provider) else {
            throw ActionFailure(status: 404, message: "Action \(id) not found for \(provider.rawValue); list the app's actions for their ids")
        }
        return action
    }

    func listActions(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let (_, provider, _, _) = try await linkedAccount(request, context)
        let list: [JSONValue] = ActionCatalog.actions(for: provider).map {
            ["name": .string($0.name), "action_id": .string($0.id), "description": .string($0.description), "tag": "v2"]
        }
        return jsonResponse(200, try JSONCoding.encode(JSONValue.array(list)))
    }

    /// The action's parameters: `[{name, label, required, type, description, options?, schema}]`, or with
    /// `?format=json-schema` the whole input as one JSON Schema.
    func actionParameters(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let (project, provider, groupRef, candidates) = try await linkedAccount(request, context)
        let action = try catalogAction(context, provider)
        let target = try await actionTarget(action, project: project, provider: provider, groupRef: groupRef, candidates: candidates)
        let schema = try await actionInputSchema(action, target, refresh: request.uri.queryParameters["refresh"] == "true")
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

    func executeAction(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let (project, provider, groupRef, candidates) = try await linkedAccount(request, context)
        let action = try catalogAction(context, provider)
        let body = try await optionalJSONObject(request)
        let target = try await actionTarget(action, project: project, provider: provider, groupRef: groupRef, candidates: candidates)
        let schema = try await actionInputSchema(action, target)
        let checked = SchemaCheck(coerceStrings: true).check(.object(body), against: schema)
        guard checked.issues.isEmpty, let input = checked.value.objectValue else { throw ActionFailure.invalid(action, checked.issues) }
        let outcome = try await runAction(action, input: input, record: ActionCustomization().record(from: input), target)
        var headers = HTTPFields()
        var answer: [String: JSONValue] = ["node_status": "Success"]
        switch outcome {
        case .read(let data):
            answer["data"] = data
        case .http(let url, let status, let responseHeaders, let body):
            answer["data"] = ["url": .string(url), "status": .number(Double(status)), "headers": .object(responseHeaders), "body": body]
        case .pending(let operationId):
            headers[Self.operationHeader] = operationId
            let pending: JSONValue = [
                "node_status": "Pending", "operation_id": .string(operationId),
                "message": .string("the write did not finish within \(configuration.syncTimeout) s; it goes on as operation \(operationId)"),
            ]
            return jsonResponse(202, try JSONCoding.encode(pending), headers: headers)
        case .written(let recordId, let data, let operationId):
            headers[Self.operationHeader] = operationId
            answer["operation_id"] = .string(operationId)
            answer["data"] = connectors.connector(for: provider).nativeAnswer(Self.writeType(action), recordId: recordId, data: data)
        }
        return jsonResponse(200, try JSONCoding.encode(JSONValue.object(answer)), headers: headers)
    }
}

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
struct ActionRunner: Sendable {
    let configuration: APIConfiguration
    let submitter: WriteSubmitter
    let providers: ProviderCalls
}

extension ActionRunner {
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
        guard let chosen, let installation = try await providers.installations.context(chosen.id) else {
            throw ActionFailure(status: 404, message: "\(groupRef) has no installation of \(provider.rawValue)")
        }
        return ActionTarget(project: project, provider: provider, groupRef: groupRef, integration: chosen.integration,
                            installation: installation, objectName: declared(chosen.integration))
    }

    /// The action's input schema from the object's fields in the customer's account (`refresh`: read
    /// them again from the provider).
    func actionInputSchema(_ action: ActionDefinition, _ target: ActionTarget, refresh: Bool = false) async throws -> JSONValue {
        guard let object = action.providerObject else { return ActionSchema.input(action, provider: target.provider, fields: [:]) }
        let fields = try await providers.objectFields(object, installation: target.installation, provider: target.provider, refresh: refresh)
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
            let (url, response) = try await providers.rawProviderCall(input, method: method, path: input["path"]?.stringValue ?? "",
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
        let operationId = OperationIdentity.newOperationId()
        let message = WriteRequestMessage(
            operationId: operationId, projectId: target.project.id, integrationId: target.integration.id,
            installationId: target.installation.installationId, groupRef: target.groupRef, provider: target.provider,
            objectName: objectName, type: type, mode: .synchronous, record: type == .delete ? [:] : record,
            recordId: input["id"]?.stringValue, associations: nil, replyTo: configuration.instanceId, acceptedAt: Timestamp.now())
        guard let completion = try await submitter.publishAndWait(message) else { return .pending(operationId: operationId) }
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
        switch try await providers.providerRead(read, object: object, installation: target.installation) {
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

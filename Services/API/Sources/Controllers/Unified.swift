import Foundation
import HTTPClient
import HTTPTypes
import Connectors
import Hummingbird
import Kafka
import Postgres
import ProviderAccess
import Shared

/// The unified CRM API (`/crm/v2/…`, the common schema for every CRM) and the pass-through API
/// (`/actions/v2/passthrough`), in the Supaglue shapes: `x-api-key`, `x-customer-id` (the groupRef) and
/// `x-provider-name` headers, errors as `{errors: [{id, title, detail, status, code, meta}]}`.
struct UnifiedController: Controller {
    let configuration: APIConfiguration
    let control: ControlData
    let database: PostgresPool
    let submitter: WriteSubmitter
    let providers: ProviderCalls

    func addRoutes(to customers: RouterGroup<APIContext>) {
        customers.post("crm/v2/:object") { try await self.unifiedWrite($0, $1, .create) }
        customers.post("crm/v2/:object/_upsert") { try await self.unifiedWrite($0, $1, .upsert) }
        customers.patch("crm/v2/:object/:id") { try await self.unifiedWrite($0, $1, .update) }
        customers.post("actions/v2/passthrough") { try await self.passthrough($0, $1) }
    }
}

extension UnifiedController {
    /// The customer's installations on a provider, integration by integration (by name), with the object
    /// name the integration declares for `providerObject` when given.
    func customerInstallations(_ project: ControlData.Project, _ provider: Provider, _ groupRef: String) async throws
        -> [(id: String, integration: ControlData.Integration)]
    {
        let installations = try await control.customerInstallations(project: project, provider: provider, groupRef: groupRef)
        guard !installations.isEmpty else {
            throw Problem.notFound("customer \(groupRef) has no installation of a \(provider.rawValue) integration",
                                   name: "x-customer-id", in: "header")
        }
        var found: [(String, ControlData.Integration)] = []
        for installation in installations {
            found.append((installation.installationId, try await control.integration(installation.integrationId, project: project)))
        }
        return found
    }

    func unifiedWrite(_ request: Request, _ context: APIContext, _ type: WriteType) async throws -> Response {
        let (customer, provider) = try context.authenticatedCustomer
        let (project, groupRef) = (customer.project, customer.groupRef)
        let objectText = context.path("object")
        guard let object = UnifiedObject(rawValue: objectText) else {
            throw Problem.notFound("\(objectText) is not written by the unified CRM API (contacts, accounts, leads, opportunities)",
                                   name: "object")
        }
        guard let mapping = provider.profile.unified[object] else {
            throw Problem(title: "Not Implemented", status: 501, detail: "\(object.rawValue) are not served for \(provider.rawValue)")
        }
        let providerObject = mapping.object
        let body = try await jsonObject(request)
        guard let recordValue = body["record"] ?? body["model"] else { throw Problem.badRequest("record is required", name: "record") }
        guard let record = recordValue.objectValue else { throw Problem.badRequest("record must be an object", name: "record") }
        let problems = object.problems(in: record)
        if !problems.isEmpty {
            throw Problem(title: "Bad Request", status: 400, detail: "the record does not fit the common schema of \(object.rawValue)",
                          issues: problems.map { .init(in: "body", name: $0.name, detail: $0.detail) })
        }
        var recordId: String?
        var upsertOn: UpsertOn?
        switch type {
        case .update:
            recordId = context.parameters.get("id")
            if record.isEmpty { throw Problem.badRequest("an update needs at least one field", name: "record") }
        case .upsert:
            let keys = mapping.upsertKeys
            guard !keys.isEmpty else {
                throw Problem(title: "Not Implemented", status: 501, detail: "upserting \(object.rawValue) is not served for \(provider.rawValue)")
            }
            guard let match = body["upsert_on"]?.objectValue else { throw Problem.badRequest("upsert_on is required", name: "upsert_on") }
            guard let key = match["key"]?.stringValue, keys.contains(key) else {
                throw Problem.badRequest("upsert_on.key must be one of: \(keys.joined(separator: ", ")) for \(provider.rawValue)",
                                         name: "upsert_on.key")
            }
            let values = match["values"]?.arrayValue?.compactMap(\.stringValue).filter { !$0.isEmpty } ?? []
            guard !values.isEmpty, values.count == match["values"]?.arrayValue?.count else {
                throw Problem.badRequest("upsert_on.values must be a non-empty list of non-empty strings", name: "upsert_on.values")
            }
            upsertOn = UpsertOn(key: key, values: values)
        default:
            break
        }
        let candidates = try await customerInstallations(project, provider, groupRef)
        guard let (installationId, integration, objectName) = candidates.lazy.compactMap({ candidate in
            candidate.integration.objects.first { provider.profile.objectName(for: $0).lowercased() == providerObject.lowercased() }
                .map { (candidate.id, candidate.integration, $0) }
        }).first else {
            throw Problem.notFound("customer \(groupRef) has no \(provider.rawValue) installation that writes \(providerObject); "
                + "declare it in the integration's write objects", name: "object")
        }
        let warnings = object.providerFields(record, mapping: mapping).warnings
        let message = WriteRequestMessage(
            operationId: OperationIdentity.newOperationId(), projectId: project.id, integrationId: integration.id,
            installationId: installationId, groupRef: groupRef, provider: provider, objectName: objectName, type: type, mode: .synchronous,
            record: record, recordId: recordId, associations: nil, replyTo: configuration.instanceId, acceptedAt: Timestamp.now(),
            unifiedObject: object, upsertOn: upsertOn)
        let claim = submitter.idempotencyClaim(
            request, project: project.id, route: "unified:\(provider.rawValue)/\(groupRef)/\(object.rawValue)/\(type.rawValue)/\(recordId ?? "")",
            body: body)
        let (operationId, completion): (String, Completion?)
        switch try await submitter.submit(message, claim: claim, wait: true) {
        case .replayed(let first, let status, let body):
            var headers = HTTPFields()
            headers[APIHeaders.operation] = first
            return jsonResponse(status, body, headers: headers)
        case .accepted(let first, let completed):
            (operationId, completion) = (first, completed)
        }
        let response = unifiedAnswer(operationId: operationId, completion: completion, type: type, warnings: warnings)
        await submitter.remember(claim, status: response.status, body: response.body)
        var headers = HTTPFields()
        headers[APIHeaders.operation] = operationId
        return jsonResponse(response.status, response.body, headers: headers)
    }

    /// A unified write's answer: 201/200 with the record's id, 202 while it runs, or its error.
    private func unifiedAnswer(operationId: String, completion: Completion?, type: WriteType, warnings: [String])
        -> (status: Int, body: [UInt8])
    {
        let warningList = JSONValue.array(warnings.map { ["title": "Field not written", "detail": .string($0), "problem_type": "FIELD_NOT_WRITTEN"] })
        guard let completion else {
            let pending: JSONValue = ["warnings": [[
                "title": "Accepted", "problem_type": "PENDING",
                "detail": .string("the write is queued as operation \(operationId) and did not finish within \(configuration.syncTimeout) s; "
                    + "read GET /v1/projects/{project}/operations/\(operationId)"),
            ]]]
            return (202, (try? JSONCoding.encode(pending)) ?? [])
        }
        if completion.success {
            let answer: JSONValue = ["record": ["id": .string(completion.recordId ?? "")], "warnings": warningList]
            return (type == .update ? 200 : 201, (try? JSONCoding.encode(answer)) ?? [])
        }
        let error = completion.error ?? WriteError(message: "the write failed")
        let status = error.code == "MULTIPLE_RECORDS_MATCH" ? 409 : 499
        var cause: [String: JSONValue] = [:]
        if let providerStatus = completion.providerStatus { cause["code"] = .number(Double(providerStatus)) }
        if let raw = error.raw { cause["body"] = (try? JSONCoding.decode(JSONValue.self, from: Array(raw.utf8))) ?? .string(raw) }
        let failure = ErrorShape.unifiedError(
            status: status, code: status == 409 ? "CONFLICT" : "REMOTE_PROVIDER_ERROR",
            title: status == 409 ? "More than one record matches" : "The provider refused the write", detail: error.message,
            origin: status == 409 ? ErrorShape.selfOrigin : "remote-provider", cause: cause.isEmpty ? nil : .object(cause))
        return (status, (try? JSONCoding.encode(["errors": JSONValue.array([failure])])) ?? [])
    }

    // MARK: Pass-through

    func passthrough(_ request: Request, _ context: APIContext) async throws -> Response {
        let (customer, provider) = try context.authenticatedCustomer
        let (project, groupRef) = (customer.project, customer.groupRef)
        let body = try await jsonObject(request)
        guard let path = body["path"]?.stringValue, !path.isEmpty else { throw Problem.badRequest("path is required", name: "path") }
        guard let method = body["method"]?.stringValue, ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(method) else {
            throw Problem.badRequest("method must be one of GET, POST, PUT, PATCH, DELETE", name: "method")
        }
        let candidates = try await customerInstallations(project, provider, groupRef)
        guard let installationId = candidates.first(where: { $0.integration.spec?.proxy?.enabled == true })?.id else {
            throw Problem(title: "Forbidden", status: 403, detail: "no \(provider.rawValue) integration of customer \(groupRef) "
                + "enables proxy; declare proxy: {enabled: true} in its manifest")
        }
        guard let installation = try await providers.installations.context(installationId) else {
            throw Problem.notFound("the installation was removed", name: "x-customer-id", in: "header")
        }
        let (url, response) = try await providers.rawProviderCall(body, method: method, path: path, installation: installation)
        var answerHeaders: [String: JSONValue] = [:]
        for (name, value) in response.headers where name != "set-cookie" { answerHeaders[name] = .string(value) }
        let answerBody = (try? JSONCoding.decode(JSONValue.self, from: response.body)) ?? .string(response.text)
        let answer: JSONValue = ["url": .string(url), "status": .number(Double(response.status)), "headers": .object(answerHeaders),
                                 "body": answerBody]
        return jsonResponse(200, try JSONCoding.encode(answer))
    }
}

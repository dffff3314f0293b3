import Foundation
import HTTPClient
import HTTPTypes
import Connectors
import Hummingbird
import Kafka
import ProviderAccess
import Shared

/// The unified CRM API (`/crm/v2/…`, the common schema for every CRM) and the pass-through API
/// (`/actions/v2/passthrough`), in the Supaglue shapes: `x-api-key`, `x-customer-id` (the groupRef) and
/// `x-provider-name` headers, errors as `{errors: [{id, title, detail, status, code, meta}]}`.
extension Handlers {
    static let customerHeader = HTTPField.Name("x-customer-id")!
    static let providerHeader = HTTPField.Name("x-provider-name")!
    static let operationHeader = HTTPField.Name("x-operation-id")!

    func addUnifiedRoutes(to router: Router<BasicRequestContext>) {
        let crm = router.group("crm/v2")
        crm.post(":object") { request, context in await self.unified { try await self.unifiedWrite(request, context, .create) } }
        crm.post(":object/_upsert") { request, context in
            await self.unified { try await self.unifiedWrite(request, context, .upsert) }
        }
        crm.patch(":object/:id") { request, context in await self.unified { try await self.unifiedWrite(request, context, .update) } }
        router.post("actions/v2/passthrough") { request, context in await self.unified { try await self.passthrough(request, context) } }
    }

    /// Runs a unified handler, answering a problem in the unified error shape.
    func unified(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let problem as Problem {
            let code = Self.unifiedCodes[problem.status] ?? "ERROR"
            var errors: [JSONValue] = (problem.issues ?? []).map { issue in
                unifiedError(status: problem.status, code: code, title: "\(issue.name): \(issue.detail)", detail: issue.detail,
                             origin: Self.selfOrigin, source: "\(issue.in):\(issue.name)")
            }
            if errors.isEmpty {
                errors = [unifiedError(status: problem.status, code: code, title: problem.title, detail: problem.detail, origin: Self.selfOrigin)]
            }
            return jsonResponse(problem.status, (try? JSONCoding.encode(["errors": JSONValue.array(errors)])) ?? [])
        } catch {
            logger.error("request failed", metadata: ["error": "\(error)"])
            let failure = unifiedError(status: 503, code: "SERVICE_UNAVAILABLE", title: "Service Unavailable",
                                       detail: "the request could not be completed now; try again", origin: Self.selfOrigin)
            return jsonResponse(503, (try? JSONCoding.encode(["errors": [failure]])) ?? [])
        }
    }

    /// `meta.origin` of an error raised by this API itself: the shape allows `remote-provider` or this
    /// value, which the compatible API's clients expect.
    static let selfOrigin = "supaglue"

    static let unifiedCodes = [400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT",
                               413: "BAD_REQUEST", 422: "UNPROCESSABLE_ENTITY", 499: "REMOTE_PROVIDER_ERROR", 501: "NOT_IMPLEMENTED",
                               503: "SERVICE_UNAVAILABLE"]

    func unifiedError(
        status: Int, code: String, title: String, detail: String, origin: String, source: String? = nil, cause: JSONValue? = nil
    ) -> JSONValue {
        var meta: [String: JSONValue] = ["origin": .string(origin)]
        if let cause { meta["cause"] = cause }
        if let source { meta["source"] = .string(source) }
        return [
            "id": .string(UUID().uuidString.lowercased()), "title": .string(title), "detail": .string(detail),
            "status": .string(String(status)), "code": .string(code), "problem_type": .string(code), "meta": .object(meta),
        ]
    }

    /// The project, provider and customer of a unified request, from its headers.
    func customer(_ request: Request) async throws -> (ControlData.Project, Provider, String) {
        let project = try await control.project(forKey: apiKey(request))
        guard let providerName = request.headers[Self.providerHeader], !providerName.isEmpty else {
            throw Problem.badRequest("the x-provider-name header is required (salesforce or hubspot)", in: "header", name: "x-provider-name")
        }
        guard let provider = Provider(rawValue: providerName.lowercased()) else {
            throw Problem.badRequest("provider '\(providerName)' is not supported; use one of: "
                + Provider.allCases.map(\.rawValue).joined(separator: ", "), in: "header", name: "x-provider-name")
        }
        guard let customer = request.headers[Self.customerHeader], !customer.isEmpty else {
            throw Problem.badRequest("the x-customer-id header is required: the customer's groupRef", in: "header", name: "x-customer-id")
        }
        return (project, provider, customer)
    }

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

    func unifiedWrite(_ request: Request, _ context: BasicRequestContext, _ type: WriteType) async throws -> Response {
        let (project, provider, groupRef) = try await customer(request)
        let objectText = context.parameters.get("object") ?? ""
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
            operationId: UUID().uuidString.lowercased(), projectId: project.id, integrationId: integration.id,
            installationId: installationId, groupRef: groupRef, provider: provider, objectName: objectName, type: type, mode: .synchronous,
            record: record, recordId: recordId, associations: nil, replyTo: configuration.instanceId, acceptedAt: Timestamp.now(),
            unifiedObject: object, upsertOn: upsertOn)
        let claim = idempotencyClaim(
            request, project: project.id, route: "unified:\(provider.rawValue)/\(groupRef)/\(object.rawValue)/\(type.rawValue)/\(recordId ?? "")",
            body: body)
        let (operationId, completion): (String, Completion?)
        switch try await submit(message, claim: claim, wait: true) {
        case .replayed(let first, let status, let body):
            var headers = HTTPFields()
            headers[Self.operationHeader] = first
            return jsonResponse(status, body, headers: headers)
        case .accepted(let first, let completed):
            (operationId, completion) = (first, completed)
        }
        let response = unifiedAnswer(operationId: operationId, completion: completion, type: type, warnings: warnings)
        await remember(claim, status: response.status, body: response.body)
        var headers = HTTPFields()
        headers[Self.operationHeader] = operationId
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
        let failure = unifiedError(
            status: status, code: status == 409 ? "CONFLICT" : "REMOTE_PROVIDER_ERROR",
            title: status == 409 ? "More than one record matches" : "The provider refused the write", detail: error.message,
            origin: status == 409 ? Self.selfOrigin : "remote-provider", cause: cause.isEmpty ? nil : .object(cause))
        return (status, (try? JSONCoding.encode(["errors": JSONValue.array([failure])])) ?? [])
    }

    /// Publishes a synchronous write and waits for its completion: nil when it takes longer than
    /// `API_SYNC_TIMEOUT_SECONDS` (the write goes on as its operation).
    func publishAndWait(_ message: WriteRequestMessage) async throws -> Completion? {
        guard case .accepted(_, let completion) = try await submit(message, claim: nil, wait: true) else { return nil }
        return completion
    }

    // MARK: Pass-through

    func passthrough(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let (project, provider, groupRef) = try await customer(request)
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
        guard let installation = try await installations.context(installationId) else {
            throw Problem.notFound("the installation was removed", name: "x-customer-id", in: "header")
        }
        let (url, response) = try await rawProviderCall(body, method: method, path: path, installation: installation)
        var answerHeaders: [String: JSONValue] = [:]
        for (name, value) in response.headers where name != "set-cookie" { answerHeaders[name] = .string(value) }
        let answerBody = (try? JSONCoding.decode(JSONValue.self, from: response.body)) ?? .string(response.text)
        let answer: JSONValue = ["url": .string(url), "status": .number(Double(response.status)), "headers": .object(answerHeaders),
                                 "body": answerBody]
        return jsonResponse(200, try JSONCoding.encode(answer))
    }

    /// A raw call at the installation's provider host with its stored credentials: `path` under the
    /// host, `query`, `headers` (one line each; Authorization and hop-by-hop headers are dropped) and
    /// `body` (JSON, or a string sent as it is) from `body`.
    func rawProviderCall(_ body: [String: JSONValue], method: String, path: String, installation: InstallationContext) async throws
        -> (url: String, response: ProviderResponse)
    {
        var query: [(String, String)] = []
        for (name, value) in body["query"]?.objectValue ?? [:] {
            guard let text = value.scalarText else { throw Problem.badRequest("query.\(name) must be a string", name: "query.\(name)") }
            query.append((name, text))
        }
        let url = try passthroughURL(base: installation.connection.baseURL, path: path, query: query.sorted { $0.0 < $1.0 })
        var headers: [(String, String)] = []
        let dropped: Set<String> = ["authorization", "host", "content-length", "connection", "transfer-encoding", "cookie"]
        for (name, value) in body["headers"]?.objectValue ?? [:] where !dropped.contains(name.lowercased()) {
            guard let text = value.scalarText, name.range(of: #"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"#, options: .regularExpression) != nil,
                  !text.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" })
            else {
                throw Problem.badRequest("headers.\(name) must be a header name with a string value on one line", name: "headers.\(name)")
            }
            headers.append((name, text))
        }
        var payload: [UInt8]?
        switch body["body"] {
        case .string(let text)?: payload = Array(text.utf8)
        case nil, .null?: payload = nil
        case let value?:
            payload = try JSONCoding.encode(value)
            if !headers.contains(where: { $0.0.lowercased() == "content-type" }) { headers.append(("Content-Type", "application/json")) }
        }
        let response = try await providerSend(RawRequest(method: method, url: url, headers: headers, body: payload),
                                              installation: installation)
        return (url, response)
    }

    /// The provider URL of a pass-through path: only under the connection's own host. A path that is not
    /// absolute, climbs out with `..`, or would name another host is refused.
    func passthroughURL(base: String, path: String, query: [(String, String)]) throws -> String {
        let decoded = path.removingPercentEncoding ?? path
        let segments = decoded.split(separator: "/", omittingEmptySubsequences: false)
        guard path.hasPrefix("/"), !path.hasPrefix("//"), !decoded.contains("\\"), !segments.contains(".."),
              !segments.contains("."), !decoded.contains("://"),
              decoded.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7f })
        else {
            throw Problem.badRequest("path must be an absolute path at the provider's host (like /v1/records), "
                + "without '..', '//', '\\\\' or a scheme", name: "path")
        }
        var url = base + path
        if !query.isEmpty { url += (path.contains("?") ? "&" : "?") + formEncoded(query) }
        guard let target = URLComponents(string: url), let origin = URLComponents(string: base),
              target.scheme == origin.scheme, target.host == origin.host, target.port == origin.port, target.user == nil
        else { throw Problem.badRequest("path leads away from the provider's host", name: "path") }
        return url
    }
}

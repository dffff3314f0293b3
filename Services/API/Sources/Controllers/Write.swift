import Foundation
import Hummingbird
import Logging
import Metrics
import Postgres
import Shared

/// Writes through the Write API: `POST …/integrations/{integrationId}/objects/{objectName}` (one record,
/// a batch, or a bulk write with `mode: bulk`) and `PUT …/objects/{objectName}:async` (bulk).
struct WritesController: Controller {
    let configuration: APIConfiguration
    let control: ControlData
    let database: PostgresPool
    let submitter: WriteSubmitter
    let providers: ProviderCalls
    let logger: Logger

    func addRoutes(to projects: RouterGroup<APIContext>) {
        projects.post("integrations/:integration/objects/:object") { try await self.write($0, $1) }
        projects.put("integrations/:integration/objects/:object") { try await self.bulkWrite($0, $1) }
    }
}

extension WritesController {
    /// The path's object, percent-decoded (a client may send `contact%3Aasync`); it is only ever matched
    /// against the integration's objects.
    func objectPath(_ context: APIContext) -> String {
        let text = context.path("object")
        return text.removingPercentEncoding ?? text
    }

    func write(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let integration = try await control.integration(context.path("integration"), project: project)
        let objectParameter = objectPath(context)
        guard let objectName = integration.objects.first(where: { $0.lowercased() == objectParameter.lowercased() }) else {
            throw Problem.notFound(
                "object '\(objectParameter)' is not written by integration \(integration.name)", name: "objectName")
        }
        let bytes = try await bodyBytes(request, limit: max(configuration.maxBodyBytes, Self.maxBulkBodyBytes))
        // The body is decoded once; a body that is not a JSON object is answered by `jsonBodyObject`'s 400.
        let object = try? jsonBodyObject(bytes)
        if let object, object["mode"] == "bulk" {
            return try await bulkWrite(object, objectParameter: objectParameter, defaultType: nil, request, context)
        }
        guard bytes.count <= configuration.maxBodyBytes else {
            throw Problem(title: "Content Too Large", status: 413,
                          detail: "the request body is larger than \(configuration.maxBodyBytes) bytes")
        }
        let body = try object ?? jsonBodyObject(bytes)
        let input = try WriteInput.parse(body)
        let installationId = try await control.installationId(integration: integration, groupRef: input.groupRef)
        let message = WriteRequestMessage(
            operationId: OperationIdentity.newOperationId(), projectId: project.id, integrationId: integration.id,
            installationId: installationId, groupRef: input.groupRef, provider: integration.provider, objectName: objectName,
            type: input.type, mode: input.mode, record: input.record, recordId: input.recordId, associations: input.associations,
            replyTo: input.mode == .synchronous ? configuration.instanceId : nil, acceptedAt: Timestamp.now(),
            retryDeadlineHours: input.retryDeadlineHours, batch: input.batch, allOrNone: input.batch == nil ? nil : input.allOrNone,
            autoBatchDelaySeconds: input.autoBatchDelaySeconds)
        let claim = submitter.idempotencyClaim(request, project: project.id, route: "write:\(integration.id)/\(objectName)", body: body)
        switch try await submitter.submit(message, claim: claim, wait: input.mode == .synchronous) {
        case .replayed(_, let status, let body):
            return jsonResponse(status, body)
        case .accepted(let operationId, let completion):
            let (status, body) = completion?.answer(operationId: operationId)
                ?? (input.mode == .synchronous ? 202 : 200, (try? JSONCoding.encode(["operationId": operationId])) ?? [])
            await submitter.remember(claim, status: status, body: body)
            return jsonResponse(status, body)
        }
    }
}

import Foundation
import Hummingbird
import Metrics
import Shared

/// `POST /v1/projects/{projectIdOrName}/integrations/{integrationId}/objects/{objectName}`.
extension Handlers {
    func write(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let project = try await control.authenticate(key: apiKey(request), project: context.parameters.get("project") ?? "")
        let integration = try await control.integration(context.parameters.get("integration") ?? "", project: project)
        let objectParameter = context.parameters.get("object") ?? ""
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
            operationId: UUID().uuidString.lowercased(), projectId: project.id, integrationId: integration.id,
            installationId: installationId, groupRef: input.groupRef, provider: integration.provider, objectName: objectName,
            type: input.type, mode: input.mode, record: input.record, recordId: input.recordId, associations: input.associations,
            replyTo: input.mode == .synchronous ? configuration.instanceId : nil, acceptedAt: Timestamp.now(),
            retryDeadlineHours: input.retryDeadlineHours, batch: input.batch, allOrNone: input.batch == nil ? nil : input.allOrNone,
            autoBatchDelaySeconds: input.autoBatchDelaySeconds)
        let claim = idempotencyClaim(request, project: project.id, route: "write:\(integration.id)/\(objectName)", body: body)
        switch try await submit(message, claim: claim, wait: input.mode == .synchronous) {
        case .replayed(_, let status, let body):
            return jsonResponse(status, body)
        case .accepted(let operationId, let completion):
            let (status, body) = completion?.answer(operationId: operationId)
                ?? (input.mode == .synchronous ? 202 : 200, (try? JSONCoding.encode(["operationId": operationId])) ?? [])
            await remember(claim, status: status, body: body)
            return jsonResponse(status, body)
        }
    }
}

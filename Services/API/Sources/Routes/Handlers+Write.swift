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
        let input = try WriteInput.parse(object ?? jsonBodyObject(bytes))
        let installationId = try await control.installationId(integration: integration, groupRef: input.groupRef)

        let operationId = UUID().uuidString.lowercased()
        let idempotencyKey = request.headers[Self.idempotencyKeyHeader].flatMap { $0.isEmpty ? nil : $0 }
        if let idempotencyKey {
            let fingerprint = "\(integration.id)/\(objectName)\n" + ((try? JSONCoding.encodeString(JSONCoding.decode(JSONValue.self, from: bytes))) ?? "")
            switch try await Idempotency(database: database).claim(
                project: project.id, key: idempotencyKey, fingerprint: fingerprint, operationId: operationId)
            {
            case .claimed:
                break
            case .conflict:
                throw Problem.conflict("Idempotency-Key '\(idempotencyKey)' was used with a different request body")
            case .answered(let status, let body):
                return jsonResponse(status, Array(body.utf8))
            case .pending(let firstOperation):
                return try await replay(firstOperation, mode: input.mode)
            }
        }

        let message = WriteRequestMessage(
            operationId: operationId, projectId: project.id, integrationId: integration.id, installationId: installationId,
            groupRef: input.groupRef, provider: integration.provider, objectName: objectName, type: input.type,
            mode: input.mode, record: input.record, recordId: input.recordId, associations: input.associations,
            replyTo: input.mode == .synchronous ? configuration.instanceId : nil, acceptedAt: Timestamp.now(),
            retryDeadlineHours: input.retryDeadlineHours, batch: input.batch, allOrNone: input.batch == nil ? nil : input.allOrNone,
            autoBatchDelaySeconds: input.autoBatchDelaySeconds)
        if input.mode == .synchronous { completions.register(operationId) }
        do {
            try await producer.send(topic: Topics.writeRequests, key: message.routingKey, value: try JSONCoding.encode(message))
        } catch {
            completions.forget(operationId)
            if let idempotencyKey { try? await Idempotency(database: database).release(project: project.id, key: idempotencyKey) }
            logger.error("could not publish a write request", metadata: ["error": "\(error)"])
            throw Problem.unavailable("the write could not be queued; nothing was written; try again")
        }
        Counter(label: "writeback_writes_accepted_total", dimensions: [
            ("provider", integration.provider.rawValue), ("type", input.type.rawValue), ("mode", input.mode.rawValue),
        ]).increment()
        let started = ContinuousClock.now
        let (status, body) = await answer(for: operationId, mode: input.mode)
        if input.mode == .synchronous {
            Metrics.Timer(label: "writeback_sync_write_duration_seconds", dimensions: [("status", String(status))])
                .record(duration: ContinuousClock.now - started)
        }
        if let idempotencyKey, status != 202 {
            try? await Idempotency(database: database).store(project: project.id, key: idempotencyKey, status: status, body: body)
        }
        return jsonResponse(status, body)
    }

    /// The answer to a published write: at once for an asynchronous one, on completion for a
    /// synchronous one (202 with the operation id if that takes longer than the timeout).
    private func answer(for operationId: String, mode: WriteMode) async -> (Int, [UInt8]) {
        let accepted = (try? JSONCoding.encode(["operationId": operationId])) ?? []
        guard mode == .synchronous else { return (200, accepted) }
        let completion = await completions.wait(
            for: operationId, timeout: .milliseconds(Int(configuration.syncTimeout * 1000)),
            fallback: { await finishedOperation(operationId) })
        guard let completion else { return (202, accepted) }
        return completion.answer(operationId: operationId)
    }

    /// A repeated request whose first answer is not stored yet: answers like the first will.
    private func replay(_ operationId: String, mode: WriteMode) async throws -> Response {
        if mode == .synchronous, let finished = await finishedOperation(operationId) {
            let (status, body) = finished.answer(operationId: operationId)
            return jsonResponse(status, body)
        }
        if mode == .synchronous { completions.register(operationId) }
        let (status, body) = await answer(for: operationId, mode: mode)
        return jsonResponse(status, body)
    }

    /// The completion of an operation from the operations table, if it has a final status.
    func finishedOperation(_ operationId: String) async -> Completion? {
        guard let row = try? await database.query(
            """
            SELECT status, record_id, result_data::text AS data, errors::text AS errors, provider_status, results::text AS results
            FROM operations
            WHERE id = $1::uuid AND status IN ('success', 'failure')
            """, [operationId]
        ).first else { return nil }
        let errors = row["errors"].flatMap { try? JSONCoding.decode([WriteError].self, from: $0) }
        return Completion(
            success: row["status"] == "success", recordId: row["record_id"],
            data: row["data"].flatMap { try? JSONCoding.decode([String: JSONValue].self, from: $0) },
            error: errors?.first, providerStatus: row.int("provider_status"),
            results: row["results"].flatMap { try? JSONCoding.decode([BatchItemResult].self, from: $0) })
    }
}

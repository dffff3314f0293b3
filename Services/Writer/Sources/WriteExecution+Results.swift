import Connectors
import Foundation
import HTTPClient
import Kafka
import Logging
import Metrics
import Pipeline
import ProviderAccess
import Shared

/// A write's result from what its provider calls came to, in the provider's terms, and published.
extension WriteExecution {
    /// The result of a write from what calling the provider came to.
    func answer(_ request: WriteRequestMessage, _ call: ProviderCall) -> WriteResultMessage {
        var outcome = call.outcome
        let calls = call.calls
        let possiblyDuplicated = call.possiblyDuplicated
        let items = call.items
        if case .unauthorized(let error, let status) = outcome {
            outcome = .rejected(reconnect(error.message, error), status: status)
        }
        let now = Timestamp.now()
        let version = Timestamp.microsNow()
        var answered: WriteResultMessage
        switch outcome {
        case .applied(let recordId, let data, let status):
            answered = WriteResultMessage(
                request: request, success: true, recordId: request.batch == nil ? recordId : nil,
                data: request.batch == nil ? data : nil, error: nil, providerStatus: status,
                possiblyDuplicated: possiblyDuplicated, attempts: calls, completedAt: now, version: version)
        case .rejected(let error, let status), .unauthorized(let error, let status):
            answered = WriteResultMessage(
                request: request, success: false, recordId: request.recordId, data: nil, error: error,
                providerStatus: status == 0 ? nil : status, possiblyDuplicated: possiblyDuplicated, attempts: calls,
                completedAt: now, version: version)
        case .retryable(let error, let status, _):
            answered = pastDeadline(request, error, status: status, calls: calls, possiblyDuplicated: possiblyDuplicated,
                                    completedAt: now, version: version)
        case .rateLimited(let error, let status, _):
            answered = pastDeadline(request, error, status: status, calls: calls, possiblyDuplicated: possiblyDuplicated,
                                    completedAt: now, version: version)
        }
        if let batch = request.batch { batchResults(&answered, batch, items: answered.success ? items : nil) }
        return answered
    }

    /// One record of a write in the provider's terms: the provider's object, and the record's fields
    /// mapped for the installation. Mappings and field settings are read on each write, so a changed one
    /// applies at once.
    func providerWrite(
        _ record: [String: JSONValue], recordId: String?, associations: JSONValue?, of request: WriteRequestMessage,
        _ context: InstallationContext
    ) -> ConnectorWrite {
        ConnectorWrite(
            type: request.type, object: request.provider.profile.objectName(for: request.objectName), recordId: recordId,
            fields: FieldMapping.providerFields(
                record, type: request.type, object: request.objectName, integration: context.integration, config: context.config),
            associations: associations)
    }

    /// A single-record write in the provider's terms; a unified record is mapped from the common schema,
    /// with what an upsert matches on.
    func prepare(_ request: WriteRequestMessage, _ context: InstallationContext) -> ConnectorWrite {
        let profile = request.provider.profile
        guard let unified = request.unifiedObject else {
            return providerWrite(request.record, recordId: request.recordId, associations: request.associations, of: request, context)
        }
        // The api accepts a unified write only for an object the provider holds.
        let mapping = profile.unified[unified]
            ?? UnifiedMapping(providerName: profile.displayName, object: request.objectName, fields: [:])
        let custom = FieldMapping.readMappings(object: request.objectName, integration: context.integration, config: context.config)
        var fields = unified.providerFields(request.record, mapping: mapping, customMappings: custom).fields
        fields = FieldMapping.applySettings(fields, type: request.type, object: request.objectName, config: context.config)
        let upsertOn = request.upsertOn.flatMap { match in
            mapping.upsertField(match.key).map { ConnectorUpsert(field: $0, values: match.values) }
        }
        return ConnectorWrite(
            type: request.type, object: mapping.object, recordId: request.recordId,
            fields: fields, associations: request.associations, upsertOn: upsertOn)
    }

    /// A batch's result per record: what the provider answered for each, or, where it refused or never
    /// answered the whole batch, the batch's error for every record. The batch succeeded when every
    /// record did.
    func batchResults(_ result: inout WriteResultMessage, _ batch: [BatchRecord], items: [ConnectorOutcome]?) {
        let whole = result.error ?? WriteError(message: "the provider did not answer for each record")
        result.results = batch.indices.map { index in
            switch items?[index] {
            case .applied(let recordId, let data, _)?:
                return BatchItemResult(success: true, recordId: recordId, data: data, error: nil)
            case .rejected(let error, _)?:
                return BatchItemResult(success: false, recordId: batch[index].recordId, data: nil, error: error)
            default:
                return BatchItemResult(success: false, recordId: batch[index].recordId, data: nil, error: whole)
            }
        }
        let failed = result.results?.enumerated().filter { !$0.element.success } ?? []
        if let first = failed.first, result.success {
            result.success = false
            result.error = WriteError(
                message: "\(failed.count) of \(batch.count) records failed; batch[\(first.offset)]: \(first.element.error?.message ?? "")",
                code: first.element.error?.code)
        }
    }

    /// The failed, dead-lettered result of a write still failing for a passing reason at its deadline.
    func pastDeadline(
        _ request: WriteRequestMessage, _ last: WriteError, status: Int?, calls: Int, possiblyDuplicated: Bool,
        completedAt: String, version: Int64
    ) -> WriteResultMessage {
        var error = last
        error.deadLettered = true
        error.message = "retry deadline passed after \(calls) provider calls: \(last.message)"
        return WriteResultMessage(
            request: request, success: false, recordId: request.recordId, data: nil, error: error, providerStatus: status,
            possiblyDuplicated: possiblyDuplicated, attempts: calls, completedAt: completedAt, version: version)
    }

    /// When a write stops being retried: its acceptance plus its `retryPolicy.deadlineHours`, or the
    /// configured retry deadline.
    func retryDeadline(of request: WriteRequestMessage) -> ContinuousClock.Instant {
        let accepted = Timestamp.parse(request.acceptedAt) ?? Date()
        let remaining = accepted.timeIntervalSinceNow + (request.retryDeadlineHours.map { Double($0) * 3600 } ?? configuration.retryDeadline)
        return .now + .milliseconds(Int(remaining * 1000))
    }

    /// The wait before the next call: doubling from the configured backoff up to its ceiling, half of it
    /// random, so that writes that failed together do not come back together.
    func backoff(afterCall call: Int) -> Double {
        Backoff(initial: configuration.retryBackoff, ceiling: configuration.maxRetryBackoff, jittered: true).delay(after: call)
    }

    /// The error of a write whose connection needs the customer to connect again.
    func reconnect(_ reason: String, _ cause: WriteError) -> WriteError {
        WriteError(message: "reconnect required: \(reason)", code: "RECONNECT_REQUIRED", raw: cause.raw)
    }

    /// The change events (or dead letter) and the result, sent together, in order, with the completion of
    /// a synchronous write for its api instance; returns once the broker has them all.
    func publish(_ result: Recorded, of request: WriteRequestMessage) async throws {
        try await producer.send(try messages(result, of: request))
    }

    /// The results of several writes (and their change events), published together in their order.
    func publish(_ answered: [(recorded: Recorded, request: WriteRequestMessage)]) async throws {
        try await producer.send(try answered.flatMap { try messages($0.recorded, of: $0.request) })
    }

    /// What publishing a result sends: its change events (or dead letter), the result, and the
    /// completion of a synchronous write for its api instance.
    func messages(_ recorded: Recorded, of request: WriteRequestMessage) throws -> [KafkaOutgoing] {
        let result = recorded.result
        let key = RoutingKey.make(
            projectId: result.projectId, integrationId: result.integrationId, groupRef: result.groupRef,
            objectName: result.objectName, recordKey: result.recordId ?? "new:\(result.operationId)")
        let replyTo = request.replyTo.map { [KafkaHeader(Topics.replyToHeader, $0)] } ?? []
        var messages: [KafkaOutgoing] = []
        if result.changedRecords.count == 1, let change = result.changedRecords.first {
            let event = ChangeEvent(result: result, recordId: change.recordId, fields: change.fields, index: change.index)
            messages.append(KafkaOutgoing(topic: Topics.recordChanges, key: event.routingKey, value: try JSONCoding.encode(event),
                                          headers: replyTo))
        } else if !result.changedRecords.isEmpty {
            // A batch's events share what they say of the write: it is written once.
            let events = ChangeEvent.Writer(result: result)
            for change in result.changedRecords {
                messages.append(KafkaOutgoing(
                    topic: Topics.recordChanges, key: events.routingKey(recordId: change.recordId),
                    value: events.bytes(recordId: change.recordId, fields: change.fields, index: change.index), headers: replyTo))
            }
        }
        if let error = result.error, error.deadLettered {
            let letter = DeadLetter(request: request, error: error, attempts: result.attempts, failedAt: result.completedAt)
            messages.append(KafkaOutgoing(topic: Topics.writeDeadLetters, key: key, value: try JSONCoding.encode(letter)))
        }
        let resultBytes = recorded.bytes
        messages.append(KafkaOutgoing(topic: Topics.writeResults, key: key, value: resultBytes))
        if let instance = request.replyTo {
            messages.append(KafkaOutgoing(topic: Topics.writeCompletions, key: instance, value: resultBytes, headers: replyTo))
        }
        return messages
    }
}

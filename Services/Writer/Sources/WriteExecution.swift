import Connectors
import Foundation
import Kafka
import Logging
import Metrics
import Pipeline
import ProviderAccess
import Shared

/// One write request, from its delivery to its published result.
struct WriteExecution: Sendable {
    let configuration: WriterConfiguration
    let logger: Logger
    let attempts: WriteAttempts
    let installations: InstallationStore
    let tokens: TokenRefresher
    let pacers: ConnectionPacers
    let connectors: Connectors
    let producer: KafkaProducer
    let letters: DeadLetters
    /// Groups auto-batched writes into provider batch calls.
    var autoBatcher: AutoBatcher?
    /// Where the CSVs of bulk writes sent as `recordsCSV` are held.
    var bulkUploads: BulkUploads?

    func process(_ message: KafkaMessage) async throws {
        let request: WriteRequestMessage
        do {
            request = try JSONCoding.decode(WriteRequestMessage.self, from: message.value)
        } catch {
            try await letters.unreadable(message, reason: error)
            return
        }
        var logger = self.logger
        logger[metadataKey: "operation"] = "\(request.operationId)"
        do {
            let start = try await untilSucceeded("recording the attempt", logger: logger) {
                try await attempts.begin(request.operationId)
            }
            let result: WriteResultMessage
            switch start {
            case .completed(let stored):
                Counter(label: "writeback_redeliveries_total", dimensions: [("state", "answered")]).increment()
                logger.debug("redelivered request already answered; publishing its result again")
                result = stored
            case .fresh:
                result = try await write(request, interrupted: false, logger: logger)
            case .interrupted(let previous):
                Counter(label: "writeback_redeliveries_total", dimensions: [("state", "interrupted")]).increment()
                logger.warning("request was in flight when a writer stopped; sending it again",
                               metadata: ["deliveries": "\(previous + 1)"])
                result = try await write(request, interrupted: true, logger: logger)
            }
            try await untilSucceeded("publishing the result", logger: logger) { try await publish(result, of: request) }
        } catch {
            // Only shutdown ends the retries above; the offset stays uncommitted and the request comes back.
            logger.info("write left for redelivery", metadata: ["error": "\(error)"])
            throw error
        }
    }

    /// Calls the provider, paced by the connection's limits, retrying passing failures until the write's
    /// retry deadline, and records the result before returning it.
    private func write(_ request: WriteRequestMessage, interrupted: Bool, logger: Logger) async throws -> WriteResultMessage {
        let found = try await untilSucceeded("reading the installation", logger: logger) {
            try await installations.context(request.installationId)
        }
        let result: WriteResultMessage
        if let context = found, let bulk = request.bulk {
            result = try await BulkExecution(execution: self, request: request, bulk: bulk, context: context, logger: logger).write()
        } else {
            result = answer(request, try await providerCall(request, context: found, interrupted: interrupted, logger: logger))
        }
        logger.info("write answered", metadata: [
            "success": "\(result.success)", "status": "\(result.providerStatus.map(String.init) ?? "-")",
            "type": "\(request.type.rawValue)", "provider": "\(request.provider.rawValue)",
        ])
        try await untilSucceeded("recording the result", logger: logger) { try await attempts.complete(result) }
        if request.bulk != nil, let bulkUploads { try? await bulkUploads.remove(request.operationId) }
        return result
    }

    /// What calling the provider for a single or batch write came to (nothing is called when the
    /// installation is gone).
    private func providerCall(_ request: WriteRequestMessage, context found: InstallationContext?, interrupted: Bool,
                              logger: Logger) async throws -> ProviderCall
    {
        guard let context = found else {
            return ProviderCall(
                outcome: .rejected(WriteError(message: "installation \(request.installationId) no longer exists", deadLettered: true),
                                   status: 0),
                calls: 0, possiblyDuplicated: interrupted)
        }
        let write = prepare(request, context)
        let batch = request.batch.map { records in
            records.map { providerWrite($0.record, recordId: $0.recordId, associations: $0.associations, of: request, context) }
        }
        let connector = connectors.connector(for: request.provider)
        let allOrNone = request.allOrNone ?? false
        if let delay = request.autoBatchDelaySeconds, let autoBatcher, batch == nil, request.unifiedObject == nil,
           request.type == .create || request.type == .update
        {
            let limit = configuration.autoBatchMaxDelay > 0 ? min(delay, configuration.autoBatchMaxDelay) : delay
            return try await autoBatcher.add(request, interrupted: interrupted, maxDelay: .milliseconds(Int(limit * 1000)))
        }
        return try await callProvider(
            context, provider: request.provider, idempotent: request.type.isIdempotent,
            deadline: retryDeadline(of: request), interrupted: interrupted, logger: logger
        ) { connection in
            if let batch { return await connector.writeBatch(batch, allOrNone: allOrNone, connection: connection) }
            return await connector.write(write, connection: connection)
        }
    }

    /// Sends a group of auto-batched writes as one batch call; answers each write's share of the outcome.
    func sendAutoBatch(_ entries: [AutoBatcher.Entry]) async throws -> [ProviderCall] {
        let first = entries[0].request
        var logger = self.logger
        logger[metadataKey: "autoBatch"] = "\(entries.count)"
        let found = try await untilSucceeded("reading the installation", logger: logger) {
            try await installations.context(first.installationId)
        }
        guard let context = found else {
            let missing = ProviderCall(
                outcome: .rejected(WriteError(message: "installation \(first.installationId) no longer exists", deadLettered: true),
                                   status: 0),
                calls: 0, possiblyDuplicated: false)
            return entries.map { _ in missing }
        }
        let writes = entries.map { entry in
            providerWrite(entry.request.record, recordId: entry.request.recordId, associations: entry.request.associations,
                          of: entry.request, context)
        }
        let connector = connectors.connector(for: first.provider)
        let deadline = entries.map { retryDeadline(of: $0.request) }.min() ?? .now
        let call = try await callProvider(
            context, provider: first.provider, idempotent: first.type.isIdempotent, deadline: deadline, interrupted: false,
            logger: logger
        ) { connection in
            await connector.writeBatch(writes, allOrNone: false, connection: connection)
        }
        Counter(label: "writeback_auto_batch_calls_total", dimensions: [("provider", first.provider.rawValue)]).increment()
        logger.debug("auto-batched writes sent", metadata: ["calls": "\(call.calls)"])
        return entries.indices.map { index in
            var share = call
            share.items = nil
            share.possiblyDuplicated = call.possiblyDuplicated || entries[index].interrupted
            if case .applied = call.outcome, let items = call.items, index < items.count { share.outcome = items[index] }
            return share
        }
    }

    /// What calling the provider for a write (or a batch of writes) came to.
    struct ProviderCall: Sendable {
        var outcome: ConnectorOutcome
        /// Each record's outcome, when the provider answered a batch.
        var items: [ConnectorOutcome]?
        var calls: Int
        var possiblyDuplicated: Bool
    }

    /// Sends `send` to the installation's provider, paced by the connection's limits: renews a refused
    /// token once, waits out rate limits, and retries passing failures until `deadline`.
    func callProvider(
        _ context: InstallationContext, provider: Provider, idempotent: Bool, deadline: ContinuousClock.Instant,
        interrupted: Bool, logger: Logger, send: (Connection) async -> ConnectorResponse
    ) async throws -> ProviderCall {
        var possiblyDuplicated = interrupted
        var calls = 0
        var outcome: ConnectorOutcome
        var items: [ConnectorOutcome]?
        var connection = context.connection
        var renewed = false
        let connector = connectors.connector(for: provider)
        let pacer = pacers.pacer(for: context.installationId)
        outcome = .retryable(
            WriteError(message: "no provider call could start before the retry deadline: the connection is held at its rate limit",
                       code: "RATE_LIMITED"),
            status: nil, notSent: true)
        while true {
            // Calls start only before the deadline; a write read after its deadline still gets one.
            let latest = calls == 0 ? max(deadline, .now + .seconds(1)) : deadline
            guard try await pacer.acquire(before: latest) else { break }
            calls += 1
            let started = ContinuousClock.now
            let response = await send(connection)
            items = response.items
            await pacer.finished(response)
            outcome = response.outcome
            let providerName = provider.rawValue
            Metrics.Timer(label: "writeback_provider_call_duration_seconds", dimensions: [("provider", providerName)])
                .record(duration: ContinuousClock.now - started)
            Counter(label: "writeback_provider_calls_total", dimensions: [("provider", providerName), ("outcome", outcome.name)])
                .increment()
            if case .unauthorized(let error, let status) = outcome {
                // The token expired or was revoked; nothing was applied. Renew it once and send again.
                guard !renewed else {
                    outcome = .rejected(reconnect("the provider refused the renewed token: \(error.message)", error), status: status)
                    break
                }
                renewed = true
                let refused = connection
                let refresh = try await untilSucceeded("renewing the token", logger: logger) {
                    try await tokens.renew(context, refused: refused, with: connector)
                }
                switch refresh {
                case .refreshed:
                    connection = try await installations.context(context.installationId)?.connection ?? connection
                    logger.info("access token renewed; sending the write again")
                    continue
                case .refused(let refusal):
                    outcome = .rejected(reconnect(refusal.message, refusal), status: status)
                case .unavailable(let failure):
                    outcome = .retryable(failure, status: nil, notSent: true)
                    renewed = false
                }
            }
            switch outcome {
            case .rateLimited(let error, _, let daily):
                // Not applied; the pacer holds this connection's calls until its limit has room.
                logger.notice("provider refused the call for the connection's rate limit; waiting for room",
                              metadata: ["error": "\(error.message)", "daily": "\(daily)"])
                continue
            case .retryable(let error, _, let notSent):
                if !notSent && !idempotent { possiblyDuplicated = true }
                let wait = backoff(afterCall: calls)
                guard ContinuousClock.now + .seconds(wait) < deadline else { break }
                logger.notice("provider call failed for a passing reason; trying again",
                              metadata: ["error": "\(error.message)", "call": "\(calls)"])
                try await Task.sleep(for: .seconds(wait))
                continue
            default:
                break
            }
            break
        }
        return ProviderCall(outcome: outcome, items: items, calls: calls, possiblyDuplicated: possiblyDuplicated)
    }

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
    private func providerWrite(
        _ record: [String: JSONValue], recordId: String?, associations: JSONValue?, of request: WriteRequestMessage,
        _ context: InstallationContext
    ) -> ConnectorWrite {
        ConnectorWrite(
            type: request.type, object: request.provider.providerObject(for: request.objectName), recordId: recordId,
            fields: FieldMapping.providerFields(
                record, type: request.type, object: request.objectName, integration: context.integration, config: context.config),
            associations: associations)
    }

    /// A single-record write in the provider's terms; a unified record is mapped from the common schema,
    /// with what an upsert matches on.
    private func prepare(_ request: WriteRequestMessage, _ context: InstallationContext) -> ConnectorWrite {
        guard let unified = request.unifiedObject else {
            return providerWrite(request.record, recordId: request.recordId, associations: request.associations, of: request, context)
        }
        let custom = FieldMapping.readMappings(object: request.objectName, integration: context.integration, config: context.config)
        var fields = unified.providerFields(request.record, provider: request.provider, customMappings: custom).fields
        fields = FieldMapping.applySettings(fields, type: request.type, object: request.objectName, config: context.config)
        let upsertOn = request.upsertOn.flatMap { match in
            unified.upsertField(match.key, request.provider).map { ConnectorUpsert(field: $0, values: match.values) }
        }
        return ConnectorWrite(
            type: request.type, object: unified.providerObject(request.provider) ?? request.objectName, recordId: request.recordId,
            fields: fields, associations: request.associations, upsertOn: upsertOn)
    }

    /// A batch's result per record: what the provider answered for each, or, where it refused or never
    /// answered the whole batch, the batch's error for every record. The batch succeeded when every
    /// record did.
    private func batchResults(_ result: inout WriteResultMessage, _ batch: [BatchRecord], items: [ConnectorOutcome]?) {
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
    private func pastDeadline(
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
    private func backoff(afterCall call: Int) -> Double {
        let ceiling = min(configuration.maxRetryBackoff, configuration.retryBackoff * pow(2, Double(call - 1)))
        return ceiling / 2 + Double.random(in: 0...(ceiling / 2))
    }

    /// The error of a write whose connection needs the customer to connect again.
    private func reconnect(_ reason: String, _ cause: WriteError) -> WriteError {
        WriteError(message: "reconnect required: \(reason)", code: "RECONNECT_REQUIRED", raw: cause.raw)
    }

    /// The change event (or dead letter) and the result, sent together; returns once the broker has them.
    private func publish(_ result: WriteResultMessage, of request: WriteRequestMessage) async throws {
        let key = RoutingKey.make(
            projectId: result.projectId, integrationId: result.integrationId, groupRef: result.groupRef,
            objectName: result.objectName, recordKey: result.recordId ?? "new:\(result.operationId)")
        let resultBytes = try JSONCoding.encode(result)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for change in result.changedRecords {
                let event = ChangeEvent(result: result, recordId: change.recordId, fields: change.fields, index: change.index)
                let eventBytes = try JSONCoding.encode(event)
                group.addTask { try await producer.send(topic: Topics.recordChanges, key: event.routingKey, value: eventBytes) }
            }
            if let error = result.error, error.deadLettered {
                let letter = DeadLetter(request: request, error: error, attempts: result.attempts, failedAt: result.completedAt)
                let letterBytes = try JSONCoding.encode(letter)
                group.addTask { try await producer.send(topic: Topics.writeDeadLetters, key: key, value: letterBytes) }
            }
            group.addTask { try await producer.send(topic: Topics.writeResults, key: key, value: resultBytes) }
            try await group.waitForAll()
        }
    }
}

import Kafka
import Shared
import Synchronization

/// The synchronous requests this instance holds, woken by `write-completions` (the results and
/// destination updates of synchronous writes): a failed provider answer completes a write at once; a
/// successful one once the destination database holds it. Any number of requests may wait on one
/// operation (a request repeated with its idempotency key waits on the first one's operation); each gets
/// the completion.
final class Completions: Sendable {
    /// This api instance: completions of writes other instances hold are passed over unread.
    let instanceId: String

    init(instanceId: String) {
        self.instanceId = instanceId
    }

    private struct Waiter {
        var continuations: [Int: CheckedContinuation<Completion?, Never>] = [:]
        var result: WriteResultMessage?
        /// The records the destination holds so far.
        var cached: Set<String> = []
        /// Requests registered and not yet answered or gone.
        var registered = 0

        /// A failed write completes at once; a successful one when the destination holds every record
        /// it changed.
        var completion: Completion? {
            guard let result else { return nil }
            guard result.success else { return Completion(result) }
            return Set(result.changedRecords.map(\.recordId)).isSubset(of: cached) ? Completion(result) : nil
        }
        /// The completion, once known, for requests that start waiting after it came.
        var finished: Completion?
    }

    private let waiters = Mutex<(byOperation: [String: Waiter], nextId: Int)>(([:], 0))

    /// Starts listening for an operation; call before publishing it so no completion is missed. Each
    /// call is followed by `wait` or `forget`.
    func register(_ operationId: String) {
        waiters.withLock { $0.byOperation[operationId, default: Waiter()].registered += 1 }
    }

    /// Waits for the operation to complete, at most `timeout`. Every second `fallback` may find the
    /// completion elsewhere (the operations table), in case this instance missed a message. Nil on
    /// timeout.
    func wait(
        for operationId: String, timeout: Duration, fallback: @escaping @Sendable () async -> Completion?
    ) async -> Completion? {
        await withTaskGroup(of: Void.self) { group in
            let completion = await withCheckedContinuation { (continuation: CheckedContinuation<Completion?, Never>) in
                let done: Completion? = waiters.withLock { state in
                    if let finished = state.byOperation[operationId]?.finished {
                        Self.leave(operationId, &state.byOperation)
                        return finished
                    }
                    let id = state.nextId
                    state.nextId += 1
                    state.byOperation[operationId, default: Waiter()].continuations[id] = continuation
                    group.addTask {
                        let deadline = ContinuousClock.now + timeout
                        while ContinuousClock.now < deadline {
                            do {
                                try await Task.sleep(for: .seconds(1))
                            } catch {
                                // Cancelled: the request is gone, or another answered it; this wait ends.
                                self.timedOut(operationId, waiter: id)
                                return
                            }
                            if let found = await fallback() {
                                self.finish(operationId, found)
                                return
                            }
                        }
                        self.timedOut(operationId, waiter: id)
                    }
                    return nil
                }
                if let done { continuation.resume(returning: done) }
            }
            group.cancelAll()
            return completion
        }
    }

    /// One request of the operation stopped waiting; the operation is forgotten with its last one.
    private static func leave(_ operationId: String, _ byOperation: inout [String: Waiter]) {
        guard var waiter = byOperation[operationId] else { return }
        waiter.registered -= 1
        byOperation[operationId] = waiter.registered > 0 ? waiter : nil
    }

    private func timedOut(_ operationId: String, waiter id: Int) {
        let continuation = waiters.withLock { state -> CheckedContinuation<Completion?, Never>? in
            guard let continuation = state.byOperation[operationId]?.continuations.removeValue(forKey: id) else { return nil }
            Self.leave(operationId, &state.byOperation)
            return continuation
        }
        continuation?.resume(returning: nil)
    }

    /// Forgets an operation nobody waits for any more.
    func forget(_ operationId: String) {
        waiters.withLock { Self.leave(operationId, &$0.byOperation) }
    }

    /// Applies a message of `write-completions`: a write's result (the `write-results` shape) or one of
    /// its destination updates (the `cache-updates` shape). Those of other instances are passed over by
    /// their header; of the rest only the operation id is read unless a request waits on it.
    func deliver(_ message: KafkaMessage) {
        if let replyTo = message.header(Topics.replyToHeader), replyTo != instanceId { return }
        guard let reference = try? JSONCoding.decode(OperationReference.self, from: message.value),
            let operationId = reference.operationId ?? reference.change?.operationId,
            waiters.withLock({ $0.byOperation[operationId] != nil })
        else { return }
        if reference.change == nil && reference.records == nil {
            guard let result = try? JSONCoding.decode(WriteResultMessage.self, from: message.value) else { return }
            update(result.operationId) { waiter in
                waiter.result = result
                return waiter.completion
            }
        } else {
            guard let update = try? JSONCoding.decode(CacheUpdateMessage.self, from: message.value) else { return }
            self.update(update.operationId) { waiter in
                waiter.cached.formUnion(update.records.map(\.recordId))
                return waiter.completion
            }
        }
    }

    /// The operation id of a result or a destination update (with `records`; in `change` in the earlier
    /// shape of one record).
    private struct OperationReference: Decodable {
        struct Change: Decodable { var operationId: String }
        struct Held: Decodable {}
        var operationId: String?
        var change: Change?
        var records: [Held]?
    }

    private func update(_ operationId: String, _ change: (inout Waiter) -> Completion?) {
        let ready: Completion? = waiters.withLock { state in
            guard var waiter = state.byOperation[operationId] else { return nil }
            let completion = change(&waiter)
            state.byOperation[operationId] = waiter
            return completion
        }
        if let ready { finish(operationId, ready) }
    }

    /// Answers every request waiting on the operation, and keeps the completion for those registered
    /// that have not started waiting yet.
    private func finish(_ operationId: String, _ completion: Completion) {
        let continuations = waiters.withLock { state -> [CheckedContinuation<Completion?, Never>] in
            guard var waiter = state.byOperation[operationId] else { return [] }
            let waiting = Array(waiter.continuations.values)
            waiter.continuations = [:]
            waiter.registered -= waiting.count
            waiter.finished = completion
            state.byOperation[operationId] = waiter.registered > 0 ? waiter : nil
            return waiting
        }
        for continuation in continuations { continuation.resume(returning: completion) }
    }
}

import Kafka
import Shared
import Synchronization

/// The synchronous requests this instance holds, woken by the completion topics: a failed provider
/// answer completes a write at once; a successful one once the destination database holds it.
final class Completions: Sendable {
    private struct Waiter {
        var continuation: CheckedContinuation<Completion?, Never>?
        var result: WriteResultMessage?
        /// The records the destination holds so far.
        var cached: Set<String> = []

        /// A failed write completes at once; a successful one when the destination holds every record
        /// it changed.
        var completion: Completion? {
            guard let result else { return nil }
            guard result.success else { return Completion(result) }
            return Set(result.changedRecords.map(\.recordId)).isSubset(of: cached) ? Completion(result) : nil
        }
        var finished: Completion??
    }

    private let waiters = Mutex<[String: Waiter]>([:])

    /// Starts listening for an operation; call before publishing it so no completion is missed.
    func register(_ operationId: String) {
        waiters.withLock { $0[operationId] = $0[operationId] ?? Waiter() }
    }

    /// Waits for the operation to complete, at most `timeout`. Every second `fallback` may find the
    /// completion elsewhere (the operations table), in case this instance missed a message. Nil on
    /// timeout.
    func wait(
        for operationId: String, timeout: Duration, fallback: @escaping @Sendable () async -> Completion?
    ) async -> Completion? {
        await withTaskGroup(of: Void.self) { group in
            let completion = await withCheckedContinuation { (continuation: CheckedContinuation<Completion?, Never>) in
                let done: Completion?? = waiters.withLock { waiters in
                    if let finished = waiters[operationId]?.finished {
                        waiters[operationId] = nil
                        return .some(finished)
                    }
                    waiters[operationId, default: Waiter()].continuation = continuation
                    return .none
                }
                if let done {
                    continuation.resume(returning: done)
                    return
                }
                group.addTask {
                    let deadline = ContinuousClock.now + timeout
                    while ContinuousClock.now < deadline {
                        do { try await Task.sleep(for: .seconds(1)) } catch { return }
                        if let found = await fallback() {
                            self.finish(operationId, found)
                            return
                        }
                    }
                    self.finish(operationId, nil)
                }
            }
            group.cancelAll()
            return completion
        }
    }

    /// Forgets an operation nobody waits for any more.
    func forget(_ operationId: String) {
        waiters.withLock { $0[operationId] = nil }
    }

    /// Applies a message from `write-results` or `cache-updates`. Most are for operations other
    /// instances wait for (or nobody): only the operation id is read of those.
    func deliver(_ message: KafkaMessage) {
        guard let reference = try? JSONCoding.decode(OperationReference.self, from: message.value),
            let operationId = reference.operationId ?? reference.change?.operationId,
            waiters.withLock({ $0[operationId] != nil })
        else { return }
        switch message.topic {
        case Topics.writeResults:
            guard let result = try? JSONCoding.decode(WriteResultMessage.self, from: message.value) else { return }
            update(result.operationId) { waiter in
                waiter.result = result
                return waiter.completion
            }
        case Topics.cacheUpdates:
            guard let update = try? JSONCoding.decode(CacheUpdateMessage.self, from: message.value) else { return }
            self.update(update.operationId) { waiter in
                waiter.cached.insert(update.change.recordId)
                return waiter.completion
            }
        default:
            return
        }
    }

    /// The operation id of a `write-results` (top level) or `cache-updates` (in `change`) message.
    private struct OperationReference: Decodable {
        struct Change: Decodable { var operationId: String }
        var operationId: String?
        var change: Change?
    }

    private func update(_ operationId: String, _ change: (inout Waiter) -> Completion?) {
        let ready: Completion? = waiters.withLock { waiters in
            guard var waiter = waiters[operationId] else { return nil }
            let completion = change(&waiter)
            waiters[operationId] = waiter
            return completion
        }
        if let ready { finish(operationId, ready) }
    }

    private func finish(_ operationId: String, _ completion: Completion?) {
        let continuation: CheckedContinuation<Completion?, Never>? = waiters.withLock { waiters in
            guard var waiter = waiters[operationId] else { return nil }
            if let continuation = waiter.continuation {
                waiters[operationId] = nil
                return continuation
            }
            if completion != nil { waiter.finished = .some(completion) }
            waiters[operationId] = waiter
            return nil
        }
        continuation?.resume(returning: completion)
    }
}

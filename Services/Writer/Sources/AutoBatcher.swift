import Foundation
import Shared

/// Groups asynchronous single-record writes that ask for it (`autoBatchPolicy`) into provider batch
/// calls, per installation, object and write type: a group is sent when `capacity` writes are in it, or
/// when the earliest of its writes has waited its longest delay. Each write keeps its own operation: it
/// is answered with its own record's outcome.
actor AutoBatcher {
    struct Key: Hashable, Sendable {
        var installationId: String
        var objectName: String
        var type: WriteType
    }

    struct Entry: Sendable {
        let id: UUID
        let request: WriteRequestMessage
        let interrupted: Bool
        let continuation: CheckedContinuation<WriteExecution.ProviderCall, any Error>
    }

    private struct Group {
        var entries: [Entry] = []
        var sendAt: ContinuousClock.Instant
        var generation: Int
        var timer: Task<Void, Never>?
    }

    let capacity: Int
    /// Sends a group's writes as one batch; answers each write's share, in order.
    private let send: @Sendable ([Entry]) async throws -> [WriteExecution.ProviderCall]
    private var groups: [Key: Group] = [:]
    private var generations = 0

    init(capacity: Int = 100, send: @escaping @Sendable ([Entry]) async throws -> [WriteExecution.ProviderCall]) {
        self.capacity = capacity
        self.send = send
    }

    /// Adds a write to its group and waits for the group's batch call. A cancelled wait (shutdown)
    /// takes the write out of its group and throws, so it is redelivered.
    func add(_ request: WriteRequestMessage, interrupted: Bool, maxDelay: Duration) async throws -> WriteExecution.ProviderCall {
        let id = UUID()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                enqueue(Entry(id: id, request: request, interrupted: interrupted, continuation: continuation), maxDelay: maxDelay)
            }
        } onCancel: {
            Task { await self.withdraw(id) }
        }
    }

    private func enqueue(_ entry: Entry, maxDelay: Duration) {
        let key = Key(installationId: entry.request.installationId, objectName: entry.request.objectName, type: entry.request.type)
        let sendAt = ContinuousClock.now + maxDelay
        var group = groups[key] ?? {
            generations += 1
            return Group(sendAt: sendAt, generation: generations)
        }()
        group.entries.append(entry)
        if group.entries.count >= capacity {
            group.timer?.cancel()
            groups[key] = nil
            let entries = group.entries
            Task { await self.run(entries) }
            return
        }
        if group.timer == nil || sendAt < group.sendAt {
            group.timer?.cancel()
            group.sendAt = min(group.sendAt, sendAt)
            let (deadline, generation) = (group.sendAt, group.generation)
            group.timer = Task {
                try? await Task.sleep(until: deadline, clock: .continuous)
                guard !Task.isCancelled else { return }
                self.due(key, generation: generation)
            }
        }
        groups[key] = group
    }

    private func due(_ key: Key, generation: Int) {
        guard let group = groups[key], group.generation == generation else { return }
        groups[key] = nil
        let entries = group.entries
        Task { await self.run(entries) }
    }

    private func withdraw(_ id: UUID) {
        for (key, group) in groups {
            guard let index = group.entries.firstIndex(where: { $0.id == id }) else { continue }
            var group = group
            let entry = group.entries.remove(at: index)
            entry.continuation.resume(throwing: CancellationError())
            if group.entries.isEmpty {
                group.timer?.cancel()
                groups[key] = nil
            } else {
                groups[key] = group
            }
            return
        }
    }

    private nonisolated func run(_ entries: [Entry]) async {
        do {
            let calls = try await send(entries)
            for (entry, call) in zip(entries, calls) { entry.continuation.resume(returning: call) }
        } catch {
            for entry in entries { entry.continuation.resume(throwing: error) }
        }
    }
}

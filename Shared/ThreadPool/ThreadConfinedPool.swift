import Foundation

/// A fixed set of threads, each owning one resource that is not thread-safe (a libpq connection, a
/// libcurl easy handle). Jobs run on whichever thread is free, synchronously, with that thread's
/// resource, and resume the awaiting task when they finish: blocking C calls never run on the
/// cooperative pool or an event loop.
///
/// Jobs may name a share (a provider connection): then no share takes the whole pool. A free thread
/// takes the next job of the share that runs the fewest jobs now (the oldest first among equals), so a
/// share with nothing running starts at once however many jobs others have queued; and a share that
/// already runs a job starts another only while more than a quarter of the threads are free, which
/// keeps room for the shares that run none. Jobs without a share run in arrival order.
///
/// `@unchecked Sendable`: the job queues and the stopping flag are only touched under `condition`, and
/// each resource is created, used and released by its own thread alone.
public final class ThreadConfinedPool<Resource>: @unchecked Sendable {
    private typealias Job = (inout Resource?) -> Void

    private struct Queue {
        var jobs: [(sequence: UInt64, job: Job)] = []
        var head = 0
        var running = 0

        var isEmpty: Bool { head == jobs.count }

        mutating func pop() -> Job {
            let job = jobs[head].job
            head += 1
            if head > 64 && head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            return job
        }
    }

    private let condition = NSCondition()
    private var queues: [String?: Queue] = [:]
    private var sequence: UInt64 = 0
    private var running = 0
    private var stopping = false
    private let size: Int
    /// Threads kept for shares that run nothing.
    private let reserve: Int
    private let makeResource: @Sendable () throws -> Resource
    private let isBroken: @Sendable (any Error) -> Bool
    private let isUsable: @Sendable (Resource) -> Bool

    /// - Parameters:
    ///   - size: the number of threads, and so of resources.
    ///   - makeResource: creates a thread's resource when it first needs one, or after one broke.
    ///   - isBroken: tells whether an error a job threw means the resource is unusable and must be replaced.
    ///   - isUsable: checked before each job: a resource that fails it is replaced first, so that a job
    ///     does not fail for what broke while the resource sat idle.
    public init(
        name: String, size: Int, makeResource: @escaping @Sendable () throws -> Resource,
        isBroken: @escaping @Sendable (any Error) -> Bool, isUsable: @escaping @Sendable (Resource) -> Bool = { _ in true }
    ) {
        self.size = max(1, size)
        reserve = max(1, size) / 4
        self.makeResource = makeResource
        self.isBroken = isBroken
        self.isUsable = isUsable
        for index in 0..<self.size {
            let thread = Thread { [self] in self.work() }
            thread.name = "\(name)-\(index)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Runs `job` with a resource on one of the pool's threads, as part of `share` (nil: none).
    public func run<T: Sendable>(share: String? = nil, _ job: @escaping @Sendable (Resource) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let makeResource = self.makeResource
            let isBroken = self.isBroken
            let isUsable = self.isUsable
            enqueue(share: share) { resource in
                do {
                    let current: Resource
                    if let held = resource, !isUsable(held) { resource = nil }
                    if let resource {
                        current = resource
                    } else {
                        current = try makeResource()
                        resource = current
                    }
                    continuation.resume(returning: try job(current))
                } catch {
                    if isBroken(error) { resource = nil }
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Stops the threads once the queued jobs have run; their resources are released.
    public func shutdown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func enqueue(share: String?, _ job: @escaping Job) {
        condition.lock()
        sequence += 1
        queues[share, default: Queue()].jobs.append((sequence, job))
        condition.signal()
        condition.unlock()
    }

    /// The share whose job runs next, under the lock: nil when no queued job may start now.
    private func nextShare() -> String?? {
        var best: (share: String?, running: Int, sequence: UInt64)?
        let free = size - running
        for (share, queue) in queues where !queue.isEmpty {
            guard share == nil || queue.running == 0 || free > reserve || stopping else { continue }
            let sequence = queue.jobs[queue.head].sequence
            if let current = best, (current.running, current.sequence) <= (queue.running, sequence) { continue }
            best = (share, queue.running, sequence)
        }
        guard let best else { return nil }
        return Optional<String?>.some(best.share)
    }

    private func work() {
        var resource: Resource?
        while true {
            condition.lock()
            var chosen = nextShare()
            while chosen == nil && !stopping {
                condition.wait()
                chosen = nextShare()
            }
            guard let share = chosen else {
                // Stopping, and nothing is queued.
                condition.unlock()
                return
            }
            let job = queues[share]!.pop()
            queues[share]!.running += 1
            running += 1
            condition.unlock()
            job(&resource)
            condition.lock()
            running -= 1
            queues[share]!.running -= 1
            if queues[share]!.isEmpty && queues[share]!.running == 0 { queues[share] = nil }
            // No other thread is woken: the one job an ending can make startable (a thread more is
            // free) is taken by this thread, which looks again at once. Waking every idle thread after
            // every job cost more than the jobs of a busy pool.
            condition.unlock()
        }
    }
}

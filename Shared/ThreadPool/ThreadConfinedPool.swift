import Foundation

/// A fixed set of threads, each owning one resource that is not thread-safe (a libpq connection).
/// Jobs run on whichever thread is free, synchronously, with that thread's
/// resource, and resume the awaiting task when they finish: blocking C calls never run on the
/// cooperative pool or an event loop.
///
/// Jobs may name a share: then no share takes the whole pool (see `ShareQueues`, which the HTTP client's
/// transfers use too).
///
/// `@unchecked Sendable`: the job queues and the stopping flag are only touched under `condition`, and
/// each resource is created, used and released by its own thread alone.
public final class ThreadConfinedPool<Resource>: @unchecked Sendable {
    private typealias Job = (inout Resource?) -> Void

    private let condition = NSCondition()
    private var queues: ShareQueues<Job>
    private var stopping = false
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
        queues = ShareQueues(size: size)
        self.makeResource = makeResource
        self.isBroken = isBroken
        self.isUsable = isUsable
        for index in 0..<queues.size {
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
        queues.append(job, share: share)
        condition.signal()
        condition.unlock()
    }

    private func work() {
        var resource: Resource?
        while true {
            condition.lock()
            var chosen = queues.next(draining: stopping)
            while chosen == nil && !stopping {
                condition.wait()
                chosen = queues.next(draining: stopping)
            }
            guard let (share, job) = chosen else {
                // Stopping, and nothing is queued.
                condition.unlock()
                return
            }
            condition.unlock()
            job(&resource)
            condition.lock()
            queues.ended(share: share)
            // No other thread is woken: the one job an ending can make startable (a thread more is
            // free) is taken by this thread, which looks again at once. Waking every idle thread after
            // every job cost more than the jobs of a busy pool.
            condition.unlock()
        }
    }
}

import Foundation

/// A fixed set of threads, each owning one resource that is not thread-safe (a libpq connection, a
/// libcurl easy handle). Jobs run on whichever thread is free, synchronously, with that thread's
/// resource, and resume the awaiting task when they finish: blocking C calls never run on the
/// cooperative pool or an event loop.
///
/// `@unchecked Sendable`: the job queue and the stopping flag are only touched under `condition`, and
/// each resource is created, used and released by its own thread alone.
public final class ThreadConfinedPool<Resource>: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [(inout Resource?) -> Void] = []
    private var stopping = false
    private let makeResource: @Sendable () throws -> Resource
    private let isBroken: @Sendable (any Error) -> Bool

    /// - Parameters:
    ///   - size: the number of threads, and so of resources.
    ///   - makeResource: creates a thread's resource when it first needs one, or after one broke.
    ///   - isBroken: tells whether an error a job threw means the resource is unusable and must be replaced.
    public init(
        name: String, size: Int, makeResource: @escaping @Sendable () throws -> Resource,
        isBroken: @escaping @Sendable (any Error) -> Bool
    ) {
        self.makeResource = makeResource
        self.isBroken = isBroken
        for index in 0..<max(1, size) {
            let thread = Thread { [self] in self.work() }
            thread.name = "\(name)-\(index)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Runs `job` with a resource on one of the pool's threads.
    public func run<T: Sendable>(_ job: @escaping @Sendable (Resource) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let makeResource = self.makeResource
            let isBroken = self.isBroken
            enqueue { resource in
                do {
                    let current: Resource
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

    private func enqueue(_ job: @escaping (inout Resource?) -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func work() {
        var resource: Resource?
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty && stopping {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job(&resource)
        }
    }
}

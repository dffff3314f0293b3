/// The waiting jobs of a fixed number of slots (threads of a pool, transfers of an HTTP client), queued
/// per share (a provider connection), and which of them may start next. Not thread-safe: its owner
/// guards it.
///
/// No share takes every slot. A free slot goes to the next job of the share that runs the fewest jobs
/// now (the oldest first among equals), so a share with nothing running starts at once however many jobs
/// others have queued; and a share that already runs a job starts another only while more than a
/// quarter of the slots are free, which keeps room for the shares that run none. Jobs without a share
/// run in arrival order.
public struct ShareQueues<Job> {
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

    private var queues: [String?: Queue] = [:]
    private var sequence: UInt64 = 0
    /// Jobs started and not yet ended.
    public private(set) var running = 0
    /// Jobs queued and not yet started.
    public private(set) var waiting = 0
    public let size: Int
    /// Slots kept for shares that run nothing.
    private let reserve: Int

    public init(size: Int) {
        self.size = max(1, size)
        reserve = self.size / 4
    }

    public mutating func append(_ job: Job, share: String?) {
        sequence += 1
        queues[share, default: Queue()].jobs.append((sequence, job))
        waiting += 1
    }

    /// Takes the job that starts next, counted as running until `ended(share:)`; nil when none may start
    /// now. `draining`: the reserve is not kept (nothing new will come).
    public mutating func next(draining: Bool = false) -> (share: String?, job: Job)? {
        guard waiting > 0, running < size else { return nil }
        var best: (share: String?, running: Int, sequence: UInt64)?
        let free = size - running
        for (share, queue) in queues where !queue.isEmpty {
            guard share == nil || queue.running == 0 || free > reserve || draining else { continue }
            let sequence = queue.jobs[queue.head].sequence
            if let current = best, (current.running, current.sequence) <= (queue.running, sequence) { continue }
            best = (share, queue.running, sequence)
        }
        guard let share = best.map({ $0.share }) else { return nil }
        let job = queues[share]!.pop()
        queues[share]!.running += 1
        running += 1
        waiting -= 1
        return (share, job)
    }

    /// A job `next` gave out has ended.
    public mutating func ended(share: String?) {
        running -= 1
        queues[share]!.running -= 1
        if queues[share]!.isEmpty && queues[share]!.running == 0 { queues[share] = nil }
    }
}

import Testing
import ThreadPool

/// Which waiting job a free slot (a pool thread, an HTTP transfer) takes.
@Suite("Share queues")
struct ShareQueuesTests {
    @Test("a share with nothing running goes before the jobs a busy share queued, and no share takes every slot")
    func fairness() {
        var queues = ShareQueues<String>(size: 8)
        for number in 0..<40 { queues.append("busy-\(number)", share: "busy") }
        var started: [String] = []
        while let (_, job) = queues.next() { started.append(job) }
        #expect(started.count == 6, "the busy share took \(started.count) of 8 slots")
        queues.append("quiet", share: "quiet")
        #expect(queues.next()?.job == "quiet")
        #expect(queues.next() == nil, "a busy share took a slot kept for others")
        queues.ended(share: "busy")
        #expect(queues.next() == nil, "one slot free of eight is kept for a share running nothing")
        queues.ended(share: "busy")
        #expect(queues.next()?.job == "busy-6")
    }

    @Test("a share running fewer jobs goes first, and jobs without a share are not held back by the reserve")
    func order() {
        var queues = ShareQueues<String>(size: 4)
        queues.append("a1", share: "a")
        queues.append("b1", share: "b")
        queues.append("a2", share: "a")
        queues.append("n1", share: nil)
        queues.append("n2", share: nil)
        #expect(queues.next()?.job == "a1")
        // b runs nothing, a runs one: b goes first though a's second job came earlier.
        #expect(queues.next()?.job == "b1")
        #expect(queues.next()?.job == "n1")
        // Jobs without a share are not held back by the reserve.
        #expect(queues.next()?.job == "n2")
        #expect(queues.next() == nil, "every slot is taken")
        #expect(queues.running == 4 && queues.waiting == 1)
        queues.ended(share: nil)
        #expect(queues.next() == nil, "a share already running took the one slot kept for others")
        queues.ended(share: "b")
        #expect(queues.next()?.job == "a2")
    }

    @Test("while draining, the reserve is given out")
    func draining() {
        var queues = ShareQueues<Int>(size: 4)
        for number in 0..<4 { queues.append(number, share: "only") }
        var started = 0
        while queues.next() != nil { started += 1 }
        #expect(started == 3)
        #expect(queues.next(draining: true)?.job == 3)
    }
}

import Testing

@testable import Writer

/// Which chunks of a bulk write must end before the next one goes to the provider.
@Suite("Bulk chunk window")
struct ChunkWindowTests {
    @Test("one chunk at a time: every chunk ends before the next starts, whatever its keys")
    func one() {
        var window = ChunkWindow<String>(limit: 1)
        #expect(!window.needsKeys)
        #expect(window.mustEnd(before: []) == 0)
        window.add("a", keys: [])
        #expect(window.mustEnd(before: []) == 1)
    }

    @Test("chunks with keys of their own run together up to the limit; the oldest ends first")
    func disjoint() {
        var window = ChunkWindow<String>(limit: 2)
        #expect(window.needsKeys)
        #expect(window.mustEnd(before: ["k1", "k2"]) == 0)
        window.add("a", keys: ["k1", "k2"])
        #expect(window.mustEnd(before: ["k3"]) == 0, "room for a second chunk")
        window.add("b", keys: ["k3"])
        #expect(window.mustEnd(before: ["k4"]) == 1, "full: the oldest ends first")
        window.removeOldest()
        #expect(window.oldest == "b")
        #expect(window.mustEnd(before: ["k4"]) == 0)
    }

    @Test("a chunk holding a key of a running chunk waits for that one and every older one")
    func sharing() {
        var window = ChunkWindow<String>(limit: 3)
        window.add("a", keys: ["k1"])
        window.add("b", keys: ["k2"])
        #expect(window.mustEnd(before: ["k9", "k1"]) == 1, "shares with the oldest")
        #expect(window.mustEnd(before: ["k2"]) == 2, "shares with the newest: it and the one before end first")
        #expect(window.mustEnd(before: ["k1", "k2"]) == 2)
        #expect(window.mustEnd(before: ["k3"]) == 0)
        window.add("c", keys: ["k3"])
        #expect(window.mustEnd(before: ["k4"]) == 1, "full")
        #expect(window.mustEnd(before: ["k3"]) == 3)
    }
}

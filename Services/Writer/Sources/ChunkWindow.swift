/// The chunks of a bulk write being written at the provider, oldest first, each with its rows' keys:
/// which of them must end before the next chunk starts.
struct ChunkWindow<Chunk> {
    /// Chunks at the provider at once, at most.
    let limit: Int
    private(set) var chunks: [(chunk: Chunk, keys: Set<String>)] = []

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Whether a chunk's keys are needed to place it (with one chunk at a time, every chunk ends before
    /// the next starts whatever its keys).
    var needsKeys: Bool { limit > 1 }

    /// How many of the oldest chunks must end before one with `keys` starts: every chunk up to the last
    /// that holds one of its keys (a record's rows reach the provider in the file's order, never in two
    /// chunks at once), and as many as leave room for it.
    func mustEnd(before keys: Set<String>) -> Int {
        let sharing = keys.isEmpty ? 0 : (chunks.lastIndex { !$0.keys.isDisjoint(with: keys) }.map { $0 + 1 } ?? 0)
        return max(sharing, chunks.count - limit + 1)
    }

    var oldest: Chunk? { chunks.first?.chunk }
    var isEmpty: Bool { chunks.isEmpty }

    mutating func add(_ chunk: Chunk, keys: Set<String>) {
        chunks.append((chunk, keys))
    }

    mutating func removeOldest() {
        chunks.removeFirst()
    }
}

extension ChunkWindow: Sendable where Chunk: Sendable {}

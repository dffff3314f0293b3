import Shared

/// What a write occupies while it waits or runs, so that the writes of one record reach the provider in
/// the order they were accepted, however they were sent.
struct WriteOrder: Sendable, Equatable {
    /// The object, as the integration names it, lower-cased.
    var object: String
    /// The records it writes: a record's id (updates and deletes, alone or in a batch), the values an
    /// upsert matches on, and always the operation itself (so that a repeated message waits for the
    /// first). Two writes that share a key run one after the other, in order.
    let keys: Set<String>
    /// The keys' hashes, sorted: two writes whose hashes meet in none share no key, which is told
    /// without hashing or comparing a string (a lane compares each waiting write with every one before
    /// it).
    let fingerprints: [Int]
    /// A bulk write: it waits for every earlier write of its object, and every later one waits for it
    /// (its rows are known only as it reads them).
    var barrier: Bool
    /// Auto-batched writes of one object and write type go to the provider together.
    var batchGroup: String?

    init(object: String, keys: Set<String>, barrier: Bool, batchGroup: String?) {
        self.object = object
        self.keys = keys
        fingerprints = Self.fingerprints(keys)
        self.barrier = barrier
        self.batchGroup = batchGroup
    }

    init(_ request: WriteRequestMessage) {
        object = request.objectName.lowercased()
        var keys: Set<String> = ["op:\(request.operationId)"]
        var single = false
        switch request.payload {
        case .batch(let records, _):
            for record in records { if let id = record.recordId { keys.insert("id:\(object)/\(id)") } }
        case .single(_, let recordId?, _):
            single = true
            keys.insert("id:\(object)/\(recordId)")
        case .single:
            single = true
            if let upsertOn = request.upsertOn {
                for value in upsertOn.values { keys.insert("match:\(object)/\(upsertOn.key)=\(value.lowercased())") }
            }
        case .bulk:
            break
        }
        self.keys = keys
        fingerprints = Self.fingerprints(keys)
        barrier = request.bulk != nil
        batchGroup = single && request.autoBatchDelaySeconds != nil && request.unifiedObject == nil
            && (request.type == .create || request.type == .update)
            ? "\(object)|\(request.type.rawValue)" : nil
    }

    /// The order of writes sent together: every key of each.
    func joined(_ others: some Sequence<WriteOrder>) -> WriteOrder {
        var keys = self.keys
        for other in others { keys.formUnion(other.keys) }
        return WriteOrder(object: object, keys: keys, barrier: barrier, batchGroup: batchGroup)
    }

    static func fingerprints(_ keys: Set<String>) -> [Int] {
        keys.map(\.hashValue).sorted()
    }

    /// Whether `self` and a later write must not run at once (the later waits).
    func conflicts(with other: WriteOrder) -> Bool {
        if (barrier || other.barrier) && object == other.object { return true }
        // Sorted hashes met in one walk; the keys are compared only when two hashes are equal.
        var (mine, theirs) = (fingerprints.startIndex, other.fingerprints.startIndex)
        while mine < fingerprints.endIndex && theirs < other.fingerprints.endIndex {
            let (a, b) = (fingerprints[mine], other.fingerprints[theirs])
            if a == b { return !keys.isDisjoint(with: other.keys) }
            if a < b { mine += 1 } else { theirs += 1 }
        }
        return false
    }
}

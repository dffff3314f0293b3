import Shared

/// What the operations tables keep of a write request: its identity, how and when it was accepted, and
/// the shape of its payload (the record id of a single write, how many records a batch holds, a bulk
/// write's source), never its records. Read a member at a time from the message's bytes, so that the
/// records a request carries (often most of its bytes) are passed over, not read into values.
struct AcceptedRequest: Sendable, Equatable {
    enum Payload: Sendable, Equatable {
        case single(recordId: String?)
        case batch(count: Int)
        case bulk(BulkWrite)
    }

    var identity: OperationIdentity
    var mode: WriteMode
    var acceptedAt: String
    var payload: Payload

    var operationId: String { identity.operationId }

    init(identity: OperationIdentity, mode: WriteMode, acceptedAt: String, payload: Payload) {
        (self.identity, self.mode, self.acceptedAt, self.payload) = (identity, mode, acceptedAt, payload)
    }

    /// Reads a `write-requests` message. It refuses what the whole read (`JSONCoding.decode` of a
    /// `WriteRequestMessage`) refuses in the members it keeps: a missing or mistyped identity, provider,
    /// mode or acceptance time, a bulk source that is not one, a batch that is not a list of objects, a
    /// single write without its record object. The records and what only the writer uses (`upsertOn`,
    /// `unifiedObject`, a batch entry's members) are checked for form only: a request the writer cannot
    /// read is dead-lettered by the writer, which fails its operation.
    init(message bytes: [UInt8]) throws {
        let type = "WriteRequestMessage"
        var members = OperationMembers(time: "acceptedAt", of: type)
        var bulk: BulkWrite?
        var batch: Int?
        var record = false
        var recordId: String?
        // A null is as good as absent (and, repeated, the last of a key counts, as in the whole read).
        try JSONScanner.members(of: bytes, type: type) { member in
            if try members.read(&member) { return }
            switch member.key {
            case "bulk": bulk = try member.orNil { try $0.nested(BulkWrite.self) }
            case "batch": batch = try member.orNil { try $0.countObjects() }
            case "recordId": recordId = try member.orNil { try $0.string() }
            case "record": record = try member.orNil { try $0.object() } != nil
            default: break
            }
        }
        let required = JSONRequired(type)
        let acceptedAt = try members.time()
        _ = try required(members.provider, "provider")
        let payload: Payload
        if let bulk {
            payload = .bulk(bulk)
        } else if let batch {
            payload = .batch(count: batch)
        } else {
            guard record else { throw JSONFieldError(type: type, key: "record", problem: "is missing") }
            payload = .single(recordId: recordId)
        }
        self.init(
            identity: try members.identity(required), mode: try required(members.mode, "mode"), acceptedAt: acceptedAt,
            payload: payload)
    }
}

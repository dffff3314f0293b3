import Foundation
import Shared

/// What the operations tables keep of a write request: its identity, how and when it was accepted, the
/// shape of its payload (the record id of a single write, how many records a batch holds, a bulk write's
/// source), the operation it sends again, and the message itself as text (`operation_requests`, for the
/// console and for sending it again). Read a member at a time from the message's bytes, so that the
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
    /// The operation this one sends again.
    var resentFrom: String?
    /// The message as it came, for `operation_requests`.
    var message: String = ""

    var operationId: String { identity.operationId }

    /// The same summary of the same request (the message's text is where it was read from, not what it says).
    static func == (lhs: Self, rhs: Self) -> Bool {
        (lhs.identity, lhs.mode, lhs.acceptedAt, lhs.payload, lhs.resentFrom) == (rhs.identity, rhs.mode, rhs.acceptedAt, rhs.payload, rhs.resentFrom)
    }

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
        var resentFrom: String?
        // A null is as good as absent (and, repeated, the last of a key counts, as in the whole read).
        try JSONScanner.members(of: bytes, type: type) { member in
            if try members.read(&member) { return }
            switch member.key {
            case "bulk": bulk = try member.orNil { try $0.nested(BulkWrite.self) }
            case "batch": batch = try member.orNil { try $0.countObjects() }
            case "recordId": recordId = try member.orNil { try $0.string() }
            case "resentFrom": resentFrom = try member.orNil { try $0.string() }
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
        // Cast to uuid in the statement of a whole batch: one that is not would fail every operation of it.
        self.resentFrom = resentFrom.flatMap(UUID.init(uuidString:))?.uuidString.lowercased()
        self.message = String(decoding: bytes, as: UTF8.self)
    }
}

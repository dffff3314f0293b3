import Shared

/// The members every operation message carries, read a member at a time: its identity, write type,
/// provider and mode, and its time (`acceptedAt` of a request, `completedAt` of a result). A null is as
/// good as absent; repeated, the last of a key counts, as in the whole read.
struct OperationMembers {
    private var strings: JSONRequiredStrings
    var type: WriteType?
    var provider: Provider?
    var mode: WriteMode?

    init(time: String, of message: String) {
        strings = JSONRequiredStrings(OperationIdentity.stringMembers + [time], type: message)
    }

    /// Reads `member` when it is one of them: whether it was.
    mutating func read(_ member: inout JSONScanner) throws -> Bool {
        if try strings.read(&member) { return true }
        switch member.key {
        case "type": type = try member.orNil { try $0.raw(WriteType.self) }
        case "provider": provider = try member.orNil { try $0.raw(Provider.self) }
        case "mode": mode = try member.orNil { try $0.raw(WriteMode.self) }
        default: return false
        }
        return true
    }

    /// The time; throws naming the first of the identity's strings or the time that is missing.
    func time() throws -> String {
        try strings.all()[OperationIdentity.stringMembers.count]
    }

    /// The identity; throws naming what of it is missing.
    func identity(_ required: JSONRequired) throws -> OperationIdentity {
        OperationIdentity(strings: try strings.all(), type: try required(type, "type"))
    }
}

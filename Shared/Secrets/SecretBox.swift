import Foundation

/// Seals secrets for storage with AES-256-GCM under a key from the environment, and opens them with
/// that key or one it replaced. A sealed value reads `wb1.<key id>.<base64 of nonce, ciphertext, tag>`;
/// the key id is the first 8 bytes of the key's SHA-256, in hex, so a value names the key that sealed
/// it and values sealed with a replaced key can be found and sealed again.
///
/// Each value is bound to the row it belongs to (`context`, e.g. the connection id) as authenticated
/// data: a sealed value copied to another row does not open.
public struct SecretBox: Sendable {
    public struct Key: Sendable {
        let bytes: [UInt8]
        public let id: String

        /// A key from its base64 text (32 bytes).
        public init(base64 text: String) throws(SecretError) {
            guard let data = Data(base64Encoded: text.trimmingCharacters(in: .whitespaces)), data.count == 32 else {
                throw SecretError("an encryption key must be 32 bytes in base64 (e.g. `openssl rand -base64 32`)")
            }
            bytes = Array(data)
            id = Digest.sha256.hash(Array(data)).prefix(8).map { String(format: "%02x", $0) }.joined()
        }
    }

    public let current: Key
    private let previous: [Key]

    public init(current: Key, previous: [Key] = []) {
        self.current = current
        self.previous = previous
    }

    /// The box of `WRITEBACK_ENCRYPTION_KEY` and, while a rotation is under way,
    /// `WRITEBACK_PREVIOUS_ENCRYPTION_KEYS` (comma-separated). Without a key there is no box: a service
    /// that stores credentials refuses to start.
    public init(environment: [String: String]) throws(SecretError) {
        guard let text = environment["WRITEBACK_ENCRYPTION_KEY"], !text.isEmpty else {
            throw SecretError("WRITEBACK_ENCRYPTION_KEY is not set: credentials are stored encrypted with it "
                + "(32 random bytes in base64, e.g. `openssl rand -base64 32`)")
        }
        let current = try Key(base64: text)
        var previous: [Key] = []
        for part in (environment["WRITEBACK_PREVIOUS_ENCRYPTION_KEYS"] ?? "").split(separator: ",") {
            do {
                previous.append(try Key(base64: String(part)))
            } catch {
                throw SecretError("WRITEBACK_PREVIOUS_ENCRYPTION_KEYS: \(error.message)")
            }
        }
        self.init(current: current, previous: previous)
    }

    public func seal(_ plaintext: [UInt8], context: String) throws -> String {
        let combined = try AESGCM.seal(plaintext, key: current.bytes, authenticating: Array(context.utf8))
        return "wb1.\(current.id).\(Data(combined).base64EncodedString())"
    }

    public func open(_ sealed: String, context: String) throws(SecretError) -> [UInt8] {
        let parts = sealed.split(separator: ".", maxSplits: 2)
        guard parts.count == 3, parts[0] == "wb1", let combined = Data(base64Encoded: String(parts[2])) else {
            throw SecretError("a stored secret is not in the sealed format")
        }
        guard let key = ([current] + previous).first(where: { $0.id == parts[1] }) else {
            throw SecretError("a stored secret was sealed with key \(parts[1]), which is neither "
                + "WRITEBACK_ENCRYPTION_KEY nor one of WRITEBACK_PREVIOUS_ENCRYPTION_KEYS")
        }
        do {
            return try AESGCM.open(Array(combined), key: key.bytes, authenticating: Array(context.utf8))
        } catch {
            throw SecretError("a stored secret did not open with key \(key.id): it was altered or belongs to another row")
        }
    }

    /// Whether a sealed value should be sealed again with the current key.
    public func isStale(_ sealed: String) -> Bool {
        !sealed.hasPrefix("wb1.\(current.id).")
    }
}

public struct SecretError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A box (and its keys) describes itself by key id only, however it is printed or reflected (a service
/// lifecycle logs its services at debug level), so no key appears in a log line.
extension SecretBox: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "SecretBox(key: \(current.id), previous: \(previous.map(\.id)))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["key": current.id], displayStyle: .struct) }
}

extension SecretBox.Key: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "Key(\(id))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["id": id], displayStyle: .struct) }
}

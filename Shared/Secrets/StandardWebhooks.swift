import Foundation

/// Signing as Standard Webhooks (standardwebhooks.com) has it, so that any of its verifier libraries
/// checks what a destination receives: the secret is `whsec_` and base64 of random bytes; the signed
/// content is `{webhook-id}.{webhook-timestamp}.{body}`; the signature is `v1,` and base64 of its
/// HMAC-SHA256 under the secret's bytes.
public enum StandardWebhooks {
    public static let secretPrefix = "whsec_"

    /// A new signing secret: 32 random bytes.
    public static func newSecret() -> String {
        secretPrefix + Data(randomBytes(32)).base64EncodedString()
    }

    /// The secret's key bytes, or nil when it is not `whsec_` and base64.
    public static func key(of secret: String) -> [UInt8]? {
        let encoded = secret.hasPrefix(secretPrefix) ? String(secret.dropFirst(secretPrefix.count)) : secret
        return Data(base64Encoded: encoded).map(Array.init)
    }

    /// The `webhook-signature` header's value for one message.
    public static func signature(id: String, timestamp: Int, body: [UInt8], key: [UInt8]) -> String {
        var content = Array("\(id).\(timestamp).".utf8)
        content.append(contentsOf: body)
        return "v1," + Data(Digest.sha256.authenticationCode(key: key, message: content)).base64EncodedString()
    }

    /// The three headers of one delivery attempt.
    public static func headers(id: String, timestamp: Int, body: [UInt8], key: [UInt8]) -> [(String, String)] {
        [("webhook-id", id), ("webhook-timestamp", String(timestamp)),
         ("webhook-signature", signature(id: id, timestamp: timestamp, body: body, key: key))]
    }
}

/// What a webhook destination's sealed values are bound to (`SecretBox` context), so that one cannot be
/// moved to another destination or column.
public enum DestinationSeal {
    public static func signingSecret(_ destinationId: String) -> String { "notification-destination:\(destinationId):signing-secret" }
    public static func headers(_ destinationId: String) -> String { "notification-destination:\(destinationId):headers" }
}

import Foundation

/// JSON Web Tokens signed with HMAC (`HS256`, `HS384`, `HS512`) in their compact form: base64url header,
/// payload and signature joined by dots.
public enum HMACToken {
    /// The algorithms, by their `alg` names.
    public static let algorithms: [String: Digest] = ["HS256": .sha256, "HS384": .sha384, "HS512": .sha512]

    /// A token of `payload` (JSON), signed with `secret`.
    public static func sign(payload: [UInt8], secret: [UInt8], algorithm: String = "HS256") -> String {
        let digest = algorithms[algorithm] ?? .sha256
        let input = base64URL(Array(#"{"alg":"\#(algorithm)","typ":"JWT"}"#.utf8)) + "." + base64URL(payload)
        return input + "." + base64URL(digest.authenticationCode(key: secret, message: Array(input.utf8)))
    }

    /// Whether the token's signature is the HMAC of its header and payload under `secret` with `digest`.
    public static func verifies(_ token: String, secret: [UInt8], digest: Digest) -> Bool {
        guard let dot = token.lastIndex(of: "."), let signature = decodeBase64URL(token[token.index(after: dot)...]) else { return false }
        let expected = digest.authenticationCode(key: secret, message: Array(token[..<dot].utf8))
        return constantTimeEquals(signature, expected)
    }

    public static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    public static func decodeBase64URL(_ text: Substring) -> [UInt8]? {
        var text = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while text.count % 4 != 0 { text += "=" }
        return Data(base64Encoded: text).map(Array.init)
    }
}

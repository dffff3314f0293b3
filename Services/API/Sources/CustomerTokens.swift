import Foundation
import Postgres
import ProviderAccess
import Secrets
import Shared

/// A key that signs customer tokens: the project it belongs to and its secret.
struct CustomerTokenKey: Sendable {
    var key: String
    var projectId: String
    var projectName: String
    var secret: [UInt8]
    var revoked: Bool
}

struct CustomerTokenError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// A verified customer: the project and the groupRef the token names.
struct Customer: Sendable {
    var project: ControlData.Project
    var groupRef: String
    var name: String?
}

/// Checks `Authorization: Bearer <token>`: a JWT signed with HS256, HS384 or HS512 by one of the
/// project's customer-token keys (named by `iss`).
struct CustomerTokens: Sendable {
    let database: PostgresPool
    let box: SecretBox
    let keys: ExpiringCache<String, CustomerTokenKey>

    func customer(authorization: String?) async throws -> Customer {
        guard let authorization, authorization.lowercased().hasPrefix("bearer ") else {
            throw CustomerTokenError("the Authorization header must be 'Bearer <customer token>'")
        }
        let token = String(authorization.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let header = Self.decodePart(parts[0]), let payload = Self.decodePart(parts[1]) else {
            throw CustomerTokenError("the customer token is not a JWT")
        }
        guard let digest = header["alg"]?.stringValue.flatMap({ HMACToken.algorithms[$0] }) else {
            throw CustomerTokenError("customer tokens are signed with HS256, HS384 or HS512")
        }
        guard let issuer = payload["iss"]?.stringValue, !issuer.isEmpty else {
            throw CustomerTokenError("the token has no iss claim; set it to the key that signs it")
        }
        guard let key = try await keys.value(for: issuer, load: { try await load(issuer) }), !key.revoked else {
            throw CustomerTokenError("the token's key '\(issuer)' is unknown or revoked")
        }
        guard HMACToken.verifies(token, secret: key.secret, digest: digest) else {
            throw CustomerTokenError("the customer token's signature does not verify")
        }
        let now = Date().timeIntervalSince1970
        guard let expires = payload["exp"]?.numberValue else {
            throw CustomerTokenError("the token has no exp claim; sign tokens that expire")
        }
        guard expires > now else { throw CustomerTokenError("the token has expired") }
        if let notBefore = payload["nbf"]?.numberValue, notBefore > now {
            throw CustomerTokenError("the token is not valid yet (nbf)")
        }
        let groupRef = payload["id"]?.stringValue ?? payload["sub"]?.stringValue
        guard let groupRef, !groupRef.isEmpty else {
            throw CustomerTokenError("the token names no customer; set id (or sub) to the customer's groupRef")
        }
        return Customer(project: .init(id: key.projectId, name: key.projectName), groupRef: groupRef, name: payload["name"]?.stringValue)
    }

    private func load(_ key: String) async throws -> CustomerTokenKey? {
        guard let row = try await database.query(
            """
            SELECT k.project_id::text AS project_id, p.name, k.secret, k.revoked_at IS NOT NULL AS revoked
            FROM customer_token_keys k JOIN projects p ON p.id = k.project_id WHERE k.key = $1
            """, [key]
        ).first else { return nil }
        let secret = try box.open(try row.string("secret"), context: InstallationStore.customerTokenKeyContext(key))
        return CustomerTokenKey(key: key, projectId: try row.string("project_id"), projectName: try row.string("name"),
                                secret: secret, revoked: row.bool("revoked") ?? false)
    }

    static func decodePart(_ part: Substring) -> JSONValue? {
        HMACToken.decodeBase64URL(part).flatMap { try? JSONCoding.decode(JSONValue.self, from: $0) }
    }
}

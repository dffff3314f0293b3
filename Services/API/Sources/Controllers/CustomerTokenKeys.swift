import Foundation
import Hummingbird
import Postgres
import ProviderAccess
import Secrets
import Shared
import Schema

/// The keys that sign customer tokens (`/v1/projects/{p}/customer-token-keys`): made (the secret shown
/// once), listed, revoked.
struct CustomerTokenKeysController: Controller {
    let configuration: APIConfiguration
    let control: ControlData
    let database: PostgresPool
    let customerTokens: CustomerTokens

    func addRoutes(to projects: RouterGroup<APIContext>) {
        let keys = projects.group("customer-token-keys")
        keys.post { try await self.createTokenKey($0, $1) }
        keys.get { try await self.listTokenKeys($0, $1) }
        keys.delete(":key") { try await self.revokeTokenKey($0, $1) }
    }
}

extension CustomerTokenKeysController {

    func createTokenKey(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let body = try await optionalJSONObject(request)
        let label = body["label"]?.stringValue
        let key = "wbk_" + Self.randomHex(12)
        let secret = Self.randomHex(32)
        let sealed = try configuration.secrets.seal(Array(secret.utf8), context: InstallationStore.customerTokenKeyContext(key))
        let row = try await database.query(
            "INSERT INTO customer_token_keys (key, project_id, secret, label) VALUES ($1, $2::uuid, $3, $4) RETURNING \(timestamp("created_at")) AS created_at",
            [key, project.id, sealed, label]
        ).first
        var answer: [String: JSONValue] = ["key": .string(key), "secret": .string(secret), "createdAt": .string(row?["created_at"] ?? "")]
        if let label { answer["label"] = .string(label) }
        return jsonResponse(201, try JSONCoding.encode(JSONValue.object(answer)))
    }

    func listTokenKeys(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let rows = try await database.query(
            """
            SELECT key, label, \(timestamp("created_at")) AS created_at, \(timestamp("revoked_at")) AS revoked_at
            FROM customer_token_keys WHERE project_id = $1::uuid ORDER BY created_at
            """, [project.id])
        let keys: [JSONValue] = try rows.rows.map { row in
            var entry: [String: JSONValue] = ["key": .string(try row.string("key")), "createdAt": .string(try row.string("created_at"))]
            if let label = row["label"] { entry["label"] = .string(label) }
            if let revoked = row["revoked_at"] { entry["revokedAt"] = .string(revoked) }
            return .object(entry)
        }
        return jsonResponse(200, try JSONCoding.encode(["keys": JSONValue.array(keys)]))
    }

    func revokeTokenKey(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let key = context.path("key")
        guard try await database.query(
            "UPDATE customer_token_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key = $1 AND project_id = $2::uuid RETURNING key",
            [key, project.id]
        ).first != nil else { throw Problem.notFound("customer-token key '\(key)' was not found", name: "key") }
        customerTokens.keys.remove(key)
        return Response(status: .noContent)
    }

    static func randomHex(_ count: Int) -> String {
        randomBytes(count).map { String(format: "%02x", $0) }.joined()
    }
}

import Foundation
import Hummingbird
import Logging
import Postgres
import Shared
import Schema

/// A controller serves one resource's routes. Each holds what its routes use; what every controller
/// reads is the configuration, the control data and the control database.
protocol Controller: Sendable {
    var configuration: APIConfiguration { get }
    var control: ControlData { get }
    var database: PostgresPool { get }
}

extension Controller {
    /// The request's body, at most `limit` bytes (default `API_MAX_BODY_BYTES`).
    func bodyBytes(_ request: Request, limit: Int? = nil) async throws -> [UInt8] {
        var request = request
        let limit = limit ?? configuration.maxBodyBytes
        do {
            let buffer = try await request.collectBody(upTo: limit)
            return Array(buffer.readableBytesView)
        } catch {
            throw Problem(title: "Content Too Large", status: 413, detail: "the request body is larger than \(limit) bytes")
        }
    }

    /// The request's body as a JSON object, or a 400 saying why it is not one.
    func jsonObject(_ request: Request, limit: Int? = nil) async throws -> [String: JSONValue] {
        try jsonBodyObject(try await bodyBytes(request, limit: limit))
    }

    /// The request's body as a JSON object, where an empty body is an empty object.
    func optionalJSONObject(_ request: Request) async throws -> [String: JSONValue] {
        let bytes = try await bodyBytes(request)
        return bytes.allSatisfy { $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 } ? [:] : try jsonBodyObject(bytes)
    }

    /// The project, integration and installation id the path names (`:integration`, `:installation`).
    func installationPath(_ context: APIContext) async throws -> (ControlData.Project, ControlData.Integration, String) {
        let project = try context.authenticatedProject
        let integration = try await control.integration(context.path("integration"), project: project)
        let text = context.path("installation")
        guard let id = normalizedUUID(text) else { throw Problem.notFound("installation \(text) was not found", name: "installationId") }
        return (project, integration, id)
    }

    func providerField(_ value: JSONValue?, name: String) throws -> Provider {
        guard let text = value?.stringValue, !text.isEmpty else { throw Problem.badRequest("\(name) is required", name: name) }
        guard let provider = Provider(rawValue: text.lowercased()) else {
            throw Problem.badRequest("provider '\(text)' is not supported; use one of: "
                + Provider.allCases.map(\.rawValue).joined(separator: ", "), name: name)
        }
        return provider
    }

    func requiredString(_ body: [String: JSONValue], _ name: String) throws -> String {
        guard let text = body[name]?.stringValue, !text.isEmpty else {
            throw Problem.badRequest("\(name) is required and must be a non-empty string", name: name)
        }
        return text
    }

    func connectionJSON(_ id: String, project: String) async throws -> JSONValue {
        let row = try await database.query(
            "SELECT \(connectionColumns) FROM connections WHERE id = $1::uuid AND project_id = $2::uuid", [id, project]).first
        guard let row else { throw Problem.notFound("connection \(id) was not found", name: "connectionId") }
        return try connectionJSON(row)
    }

    var connectionColumns: String {
        """
        id::text AS id, project_id::text AS project_id, provider, group_ref, group_name, consumer_ref, consumer_name,
        provider_workspace_ref, base_url, auth_scheme, status, \(timestamp("created_at")) AS create_time,
        \(timestamp("updated_at")) AS update_time
        """
    }

    /// A connection in the Ampersand shape, without its credentials.
    func connectionJSON(_ row: PostgresRow) throws -> JSONValue {
        let project = JSONValue.string(try row.string("project_id"))
        let created = JSONValue.string(try row.string("create_time"))
        var body: [String: JSONValue] = [
            "id": .string(try row.string("id")), "projectId": project, "provider": .string(try row.string("provider")),
            "group": ["groupRef": .string(try row.string("group_ref")), "groupName": .string(try row.string("group_name")),
                      "projectId": project, "createTime": created],
            "consumer": ["consumerRef": .string(try row.string("consumer_ref")),
                         "consumerName": .string(try row.string("consumer_name")), "projectId": project, "createTime": created],
            "createTime": created, "updateTime": .string(try row.string("update_time")),
            "authScheme": .string(try row.string("auth_scheme")), "status": .string(try row.string("status")),
            "providerMetadata": ["baseUrl": ["value": .string(try row.string("base_url")), "source": "input"]],
        ]
        if let workspace = row["provider_workspace_ref"] { body["providerWorkspaceRef"] = .string(workspace) }
        return .object(body)
    }
}

/// A request body as a JSON object, or a 400 saying why it is not one.
func jsonBodyObject(_ bytes: [UInt8]) throws(Problem) -> [String: JSONValue] {
    guard !bytes.isEmpty else { throw .badRequest("the request body is empty; send a JSON object", name: "body") }
    guard let value = try? JSONCoding.decode(JSONValue.self, from: bytes) else {
        throw .badRequest("the request body is not valid JSON", name: "body")
    }
    guard let object = value.objectValue else { throw .badRequest("the request body must be a JSON object", name: "body") }
    // Stored text and JSON cannot hold NUL, which a JSON body can only spell `\u0000`: where the bytes
    // hold that, the member that has it is refused, named.
    if bytes.containsNULEscape { for (name, member) in object { try refuseNUL(member, name: name) } }
    return object
}

/// Refuses (400) a JSON value with the NUL character in a string or a key, which stored JSON cannot hold.
func refuseNUL(_ value: JSONValue, name: String) throws(Problem) {
    switch value {
    case .string(let text) where text.contains("\0"):
        throw .badRequest("\(name) must not contain the NUL character", name: name)
    case .array(let items):
        for (index, item) in items.enumerated() { try refuseNUL(item, name: "\(name)[\(index)]") }
    case .object(let members):
        for (key, item) in members {
            if key.contains("\0") { throw .badRequest("\(name) must not contain the NUL character in a key", name: name) }
            try refuseNUL(item, name: "\(name).\(key)")
        }
    default: break
    }
}

/// UUIDs are compared in lower case.
func normalizedUUID(_ text: String) -> String? {
    UUID(uuidString: text).map { $0.uuidString.lowercased() }
}

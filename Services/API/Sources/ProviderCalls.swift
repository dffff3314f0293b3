import Connectors
import Foundation
import HTTPClient
import ProviderAccess
import Shared

/// The libcurl client's response, under a name that does not clash with the HTTP types of the api's own
/// server.
typealias ProviderResponse = HTTPResponse

/// Calls to a customer's provider made by the api itself (reads, metadata, raw requests), each through
/// the provider's connector with the installation's stored credentials.
struct ProviderCalls: Sendable {
    let configuration: APIConfiguration
    let installations: InstallationStore
    let tokens: TokenRefresher
    let connectors: Connectors
    /// Field metadata read from providers, per installation and object.
    let metadata: ExpiringCache<[String], JSONValue>
}

extension ProviderCalls {
    /// Calls the provider with the installation's connection; when `refused` says the token was refused,
    /// renews it once and calls again.
    func withConnection<T: Sendable>(
        _ installation: InstallationContext, refused: (T) -> Bool, _ call: (any Connector, Connection) async throws -> T
    ) async throws -> T {
        let connector = connectors.connector(for: installation.provider)
        let result = try await call(connector, installation.connection)
        guard refused(result) else { return result }
        guard case .refreshed = try await tokens.renew(installation, refused: installation.connection, with: connector),
              let renewed = try await installations.context(installation.installationId)
        else { return result }
        return try await call(connector, renewed.connection)
    }

    /// Reads records at the installation's provider (the object's fields from its metadata, where the
    /// provider needs them named).
    func providerRead(_ read: RecordRead, object: String, installation: InstallationContext) async throws -> ProviderAnswer<JSONValue> {
        let fields: @Sendable () async -> [String] = { [self] in
            let known = (try? await objectFields(object, installation: installation, provider: installation.provider)) ?? .object([:])
            return (known.objectValue ?? [:]).keys.filter { $0 != "__displayName" }.sorted()
        }
        return try await withConnection(installation, refused: \.tokenRefused) { connector, connection in
            await connector.read(read, connection: connection, allFields: fields)
        }
    }

    /// A raw request at the installation's host with its credentials.
    func providerSend(_ request: RawRequest, installation: InstallationContext) async throws -> ProviderResponse {
        do {
            return try await withConnection(installation, refused: { $0.status == 401 }) { connector, connection in
                try await connector.send(request, connection: connection, timeout: configuration.providerTimeout)
            }
        } catch let error as HTTPClientError {
            throw Problem(title: "Bad Gateway", status: 502, detail: "the provider could not be reached: \(error.message)")
        }
    }

    /// The provider object's fields in the customer's account as `describe` reads them, kept for
    /// `API_METADATA_CACHE_SECONDS` (`refresh`: read them again).
    func objectFields(_ providerObject: String, installation: InstallationContext, provider: Provider, refresh: Bool = false)
        async throws -> JSONValue
    {
        let key = [installation.installationId, providerObject]
        if refresh { metadata.remove(key) }
        return try await metadata.value(for: key) {
            try await describe(providerObject, installation: installation, provider: provider)
        } ?? .object([:])
    }

    /// The object's fields as `FieldMetadata`, keyed by field name (the display name under `__displayName`).
    private func describe(_ object: String, installation: InstallationContext, provider: Provider) async throws -> JSONValue {
        let answer = try await withConnection(installation, refused: \.tokenRefused) { connector, connection in
            await connector.describe(object, connection: connection)
        }
        switch answer {
        case .answered(let metadata):
            var fields = try JSONCoding.decode([String: JSONValue].self, from: JSONCoding.encode(metadata.fields))
            fields["__displayName"] = .string(metadata.displayName)
            return .object(fields)
        case .refused(400, _, _), .refused(404, _, _):
            // HubSpot answers 400 for an object type it does not know.
            throw Problem.notFound("\(provider.rawValue) has no object \(object) for this customer", name: "objectName")
        case .refused(let status, _, _):
            throw Problem(title: "Bad Gateway", status: 502, detail: "\(provider.rawValue) answered the metadata request with HTTP \(status)")
        case .unauthorized:
            throw Problem(title: "Bad Gateway", status: 502, detail: "\(provider.rawValue) answered the metadata request with HTTP 401")
        case .unreachable(let reason):
            throw Problem(title: "Bad Gateway", status: 502, detail: "the provider could not be reached: \(reason)")
        }
    }

    /// A raw call at the installation's provider host with its stored credentials: `path` under the
    /// host, `query`, `headers` (one line each; Authorization and hop-by-hop headers are dropped) and
    /// `body` (JSON, or a string sent as it is) from `body`.
    func rawProviderCall(_ body: [String: JSONValue], method: String, path: String, installation: InstallationContext) async throws
        -> (url: String, response: ProviderResponse)
    {
        var query: [(String, String)] = []
        for (name, value) in body["query"]?.objectValue ?? [:] {
            guard let text = value.scalarText else { throw Problem.badRequest("query.\(name) must be a string", name: "query.\(name)") }
            query.append((name, text))
        }
        let url = try passthroughURL(base: installation.connection.baseURL, path: path, query: query.sorted { $0.0 < $1.0 })
        var headers: [(String, String)] = []
        let dropped: Set<String> = ["authorization", "host", "content-length", "connection", "transfer-encoding", "cookie"]
        for (name, value) in body["headers"]?.objectValue ?? [:] where !dropped.contains(name.lowercased()) {
            guard let text = value.scalarText, name.range(of: #"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"#, options: .regularExpression) != nil,
                  !text.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" })
            else {
                throw Problem.badRequest("headers.\(name) must be a header name with a string value on one line", name: "headers.\(name)")
            }
            headers.append((name, text))
        }
        var payload: [UInt8]?
        switch body["body"] {
        case .string(let text)?: payload = Array(text.utf8)
        case nil, .null?: payload = nil
        case let value?:
            payload = try JSONCoding.encode(value)
            if !headers.contains(where: { $0.0.lowercased() == "content-type" }) { headers.append(("Content-Type", "application/json")) }
        }
        let response = try await providerSend(RawRequest(method: method, url: url, headers: headers, body: payload),
                                              installation: installation)
        return (url, response)
    }

    /// The provider URL of a pass-through path: only under the connection's own host. A path that is not
    /// absolute, climbs out with `..`, or would name another host is refused.
    func passthroughURL(base: String, path: String, query: [(String, String)]) throws -> String {
        let decoded = path.removingPercentEncoding ?? path
        let segments = decoded.split(separator: "/", omittingEmptySubsequences: false)
        guard path.hasPrefix("/"), !path.hasPrefix("//"), !decoded.contains("\\"), !segments.contains(".."),
              !segments.contains("."), !decoded.contains("://"),
              decoded.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7f })
        else {
            throw Problem.badRequest("path must be an absolute path at the provider's host (like /v1/records), "
                + "without '..', '//', '\\\\' or a scheme", name: "path")
        }
        var url = base + path
        if !query.isEmpty { url += (path.contains("?") ? "&" : "?") + formEncoded(query) }
        guard let target = URLComponents(string: url), let origin = URLComponents(string: base),
              target.scheme == origin.scheme, target.host == origin.host, target.port == origin.port, target.user == nil
        else { throw Problem.badRequest("path leads away from the provider's host", name: "path") }
        return url
    }
}

import Connectors
import HTTPClient
import ProviderAccess
import Shared

/// The libcurl client's response, under a name that does not clash with the HTTP types of the api's own
/// server.
typealias ProviderResponse = HTTPResponse

/// Calls to a customer's provider made by the api itself (reads, metadata, raw requests), each through
/// the provider's connector with the installation's stored credentials.
extension Handlers {
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
}

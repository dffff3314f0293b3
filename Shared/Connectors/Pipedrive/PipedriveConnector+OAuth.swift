import Foundation
import HTTPClient
import Shared

/// Pipedrive's OAuth at oauth.pipedrive.com (`/oauth/authorize`, `POST /oauth/token` with the client in HTTP
/// Basic authentication); tokens come with the company's `api_domain`, the host to call. A connection made
/// with an API token calls `https://{company}.pipedrive.com`, or the API host.
extension PipedriveConnector {
    func baseURL(workspace: String?) throws(ConnectionInputError) -> String {
        guard let workspace, !workspace.isEmpty else { return hosts.pipedriveAPI }
        guard workspace.range(of: #"^[A-Za-z0-9-]+$"#, options: .regularExpression) != nil else {
            throw ConnectionInputError(field: "providerWorkspaceRef", message: "providerWorkspaceRef must be the Pipedrive company domain")
        }
        return "https://\(workspace).pipedrive.com"
    }

    func authorizationPage(_ app: OAuthApp, state: String) -> String {
        hosts.pipedriveOAuth + "/oauth/authorize?" + formEncoded([("client_id", app.clientId), ("redirect_uri", app.redirectURI), ("state", state)])
    }

    func exchange(code: String, app: OAuthApp) async -> TokenExchange {
        let grant = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", app.redirectURI)]
        switch await token(grant, clientId: app.clientId, clientSecret: app.clientSecret, at: hosts.pipedriveOAuth) {
        case .success(let tokens):
            return .connected(accessToken: tokens.access, refreshToken: tokens.refresh, baseURL: tokens.domain ?? hosts.pipedriveAPI,
                              tokenURL: hosts.pipedriveOAuth)
        case .failure(let failure):
            return failure.reachable ? .refused(failure.error.message) : .unavailable(failure.error.message)
        }
    }

    var tokenHost: String? { hosts.pipedriveOAuth }

    func refresh(_ connection: Connection) async -> TokenRefresh {
        guard let refreshToken = connection.refreshToken, let clientId = connection.clientId, let clientSecret = connection.clientSecret else {
            return .refused(WriteError(message: "the installation has no refresh token", code: "RECONNECT_REQUIRED"))
        }
        let grant = [("grant_type", "refresh_token"), ("refresh_token", refreshToken)]
        switch await token(grant, clientId: clientId, clientSecret: clientSecret, at: connection.tokenURL ?? hosts.pipedriveOAuth) {
        case .success(let tokens):
            return .refreshed(accessToken: tokens.access, refreshToken: tokens.refresh, instanceURL: tokens.domain)
        case .failure(let failure):
            return failure.reachable ? .refused(failure.error) : .unavailable(failure.error)
        }
    }

    private struct Tokens {
        var access: String
        var refresh: String?
        var domain: String?
    }

    private struct TokenFailure: Error {
        var error: WriteError
        /// The endpoint answered (and refused); false: it could not be reached or failed.
        var reachable: Bool
    }

    /// `POST {host}/oauth/token` with the grant.
    private func token(_ grant: [(String, String)], clientId: String, clientSecret: String, at host: String) async -> Result<Tokens, TokenFailure> {
        let basic = Data("\(clientId):\(clientSecret)".utf8).base64EncodedString()
        let request = HTTPRequest(
            method: "POST", url: host + "/oauth/token",
            headers: [("Authorization", "Basic \(basic)"), ("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")],
            body: Array(formEncoded(grant).utf8), timeout: timeout)
        let response: HTTPResponse
        do {
            response = try await client.execute(request)
        } catch {
            return .failure(TokenFailure(error: WriteError(message: "token endpoint unreachable: \(error)"), reachable: false))
        }
        let body = try? JSONCoding.decode(JSONValue.self, from: response.body)
        if response.status == 200, let access = body?["access_token"]?.stringValue {
            return .success(Tokens(access: access, refresh: body?["refresh_token"]?.stringValue, domain: body?["api_domain"]?.stringValue))
        }
        let reason = body?["message"]?.stringValue ?? body?["error_description"]?.stringValue ?? "HTTP \(response.status)"
        let error = WriteError(message: "token request failed: \(reason)", code: body?["error"]?.stringValue, raw: response.text)
        return .failure(TokenFailure(error: error, reachable: [400, 401, 403].contains(response.status)))
    }
}

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
        await exchangeCode(code, app: app, url: hosts.pipedriveOAuth + "/oauth/token", tokenURL: hosts.pipedriveOAuth, basic: true,
                           baseURL: { [hosts] in $0["api_domain"]?.stringValue ?? hosts.pipedriveAPI }, timeout: timeout)
    }

    var tokenHost: String? { hosts.pipedriveOAuth }

    func refresh(_ connection: Connection) async -> TokenRefresh {
        guard let refresh = connection.refreshGrant else { return .refused(Connection.cannotRefresh) }
        let grant = [("grant_type", "refresh_token"), ("refresh_token", refresh.token)]
        switch await postGrant(grant, to: (connection.tokenURL ?? hosts.pipedriveOAuth) + "/oauth/token",
                               basic: (refresh.clientId, refresh.clientSecret), timeout: timeout) {
        case .success(let tokens):
            return .refreshed(accessToken: tokens.access, refreshToken: tokens.body["refresh_token"]?.stringValue,
                              instanceURL: tokens.body["api_domain"]?.stringValue)
        case .failure(let failure):
            let error = WriteError(message: "token request failed: \(failure.reason)", code: failure.code, raw: failure.raw)
            return [400, 401, 403].contains(failure.status ?? 0) ? .refused(error) : .unavailable(error)
        }
    }
}

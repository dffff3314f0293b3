import Shared

/// HubSpot's OAuth: the consent page (`HUBSPOT_AUTHORIZE_URL`) and `POST /oauth/v1/token` at the API host,
/// which every connection calls.
extension HubSpotConnector {
    func baseURL(workspace: String?) throws(ConnectionInputError) -> String { hosts.hubspotAPI }

    func authorizationPage(_ app: OAuthApp, state: String) -> String {
        var pairs = [("client_id", app.clientId), ("redirect_uri", app.redirectURI), ("state", state)]
        if !app.scopes.isEmpty { pairs.append(("scope", app.scopes.joined(separator: " "))) }
        return hosts.hubspotAuthorize + "?" + formEncoded(pairs)
    }

    func exchange(code: String, app: OAuthApp) async -> TokenExchange {
        await exchangeCode(code, app: app, url: hosts.hubspotAPI + "/oauth/v1/token", tokenURL: nil,
                           baseURL: { [hosts] _ in hosts.hubspotAPI }, timeout: timeout)
    }

    var tokenHost: String? { nil }

    func refresh(_ connection: Connection) async -> TokenRefresh {
        await refreshToken(client, connection, path: "/oauth/v1/token", timeout: timeout)
    }
}

import Foundation
import Shared

/// The web-server OAuth flow at the login host (`/services/oauth2/authorize`, `/services/oauth2/token`);
/// a connection's API host is its instance URL (its My Domain).
extension SalesforceConnector {
    func baseURL(workspace: String?) throws(ConnectionInputError) -> String {
        guard let workspace, workspace.range(of: #"^[A-Za-z0-9-]+$"#, options: .regularExpression) != nil else {
            throw ConnectionInputError(
                field: "providerWorkspaceRef",
                message: "a Salesforce connection needs providerWorkspaceRef (the My Domain name) or providerMetadata.baseUrl.value")
        }
        return "https://\(workspace).my.salesforce.com"
    }

    func authorizationPage(_ app: OAuthApp, state: String) -> String {
        var pairs = [("response_type", "code"), ("client_id", app.clientId), ("redirect_uri", app.redirectURI), ("state", state)]
        if !app.scopes.isEmpty { pairs.append(("scope", app.scopes.joined(separator: " "))) }
        return hosts.salesforceLogin + "/services/oauth2/authorize?" + formEncoded(pairs)
    }

    func exchange(code: String, app: OAuthApp) async -> TokenExchange {
        await exchangeCode(code, app: app, url: hosts.salesforceLogin + "/services/oauth2/token", tokenURL: hosts.salesforceLogin,
                           baseURL: { [hosts] in $0["instance_url"]?.stringValue ?? hosts.salesforceLogin }, timeout: timeout)
    }

    /// Tokens are renewed at the login host, not at the instance.
    var tokenHost: String? { hosts.salesforceLogin }

    func refresh(_ connection: Connection) async -> TokenRefresh {
        await refreshToken(client, connection, path: "/services/oauth2/token", timeout: timeout)
    }
}

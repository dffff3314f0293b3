import Foundation
import HTTPClient
import Shared

/// Where the providers' public hosts are: their OAuth pages and token endpoints, and the API hosts a new
/// connection calls when none is given. Each can be pointed elsewhere (a sandbox) by its variable.
public struct ProviderHosts: Sendable, Equatable {
    /// `SALESFORCE_LOGIN_URL`: the OAuth authorize page and token endpoint are under it.
    public var salesforceLogin = "https://login.salesforce.com"
    /// `HUBSPOT_AUTHORIZE_URL`: HubSpot's consent page.
    public var hubspotAuthorize = "https://app.hubspot.com/oauth/authorize"
    /// `HUBSPOT_API_URL`: HubSpot's API host, and its token endpoint's.
    public var hubspotAPI = "https://api.hubapi.com"
    /// `PIPEDRIVE_OAUTH_URL`: Pipedrive's OAuth server (consent page and token endpoint).
    public var pipedriveOAuth = "https://oauth.pipedrive.com"
    /// `PIPEDRIVE_API_URL`: where a Pipedrive connection made with an API token calls, unless it names its
    /// company domain.
    public var pipedriveAPI = "https://api.pipedrive.com"

    public init() {}

    /// The hosts, each from its variable where it is set.
    public init(environment: [String: String]) {
        let value = { (name: String) in environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        salesforceLogin = value("SALESFORCE_LOGIN_URL") ?? salesforceLogin
        hubspotAuthorize = value("HUBSPOT_AUTHORIZE_URL") ?? hubspotAuthorize
        hubspotAPI = value("HUBSPOT_API_URL") ?? hubspotAPI
        pipedriveOAuth = value("PIPEDRIVE_OAUTH_URL") ?? pipedriveOAuth
        pipedriveAPI = value("PIPEDRIVE_API_URL") ?? pipedriveAPI
    }
}

/// A project's OAuth app at a provider, and where the provider sends the browser back.
public struct OAuthApp: Sendable {
    public var clientId: String
    public var clientSecret: String
    public var redirectURI: String
    public var scopes: [String]

    public init(clientId: String, clientSecret: String = "", redirectURI: String, scopes: [String] = []) {
        self.clientId = clientId
        self.clientSecret = clientSecret
        self.redirectURI = redirectURI
        self.scopes = scopes
    }
}

/// A connection's credentials from an authorization code.
public enum TokenExchange: Sendable {
    /// The tokens, the API host to call with them, and the token endpoint's host for refreshes.
    case connected(accessToken: String, refreshToken: String?, baseURL: String, tokenURL: String?)
    /// The provider refused the code (the reason it gave).
    case refused(String)
    /// The token endpoint could not be reached.
    case unavailable(String)
}

/// What a new connection's input lacks: the field to name, and why.
public struct ConnectionInputError: Error, Sendable {
    public var field: String
    public var message: String
}

extension Connector {
    /// Posts the authorization-code grant to `url` (the client in the form, or in HTTP Basic authentication
    /// when `basic`) and reads the tokens; `baseURL` picks the API host from the token answer.
    func exchangeCode(
        _ code: String, app: OAuthApp, url: String, tokenURL: String?, basic: Bool = false, baseURL: (JSONValue) -> String, timeout: Double
    ) async -> TokenExchange {
        var grant = [("grant_type", "authorization_code"), ("code", code), ("redirect_uri", app.redirectURI)]
        if !basic { grant += [("client_id", app.clientId), ("client_secret", app.clientSecret)] }
        switch await postGrant(grant, to: url, basic: basic ? (app.clientId, app.clientSecret) : nil, timeout: timeout) {
        case .success(let tokens):
            return .connected(accessToken: tokens.access, refreshToken: tokens.body["refresh_token"]?.stringValue,
                              baseURL: baseURL(tokens.body), tokenURL: tokenURL)
        case .failure(let failure) where failure.status == nil:
            return .unavailable("the provider's token endpoint could not be reached")
        case .failure(let failure):
            return .refused(failure.reason)
        }
    }
}

/// `a=1&b=2`, each part percent-encoded.
public func formEncoded(_ pairs: [(String, String)]) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return pairs.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)" }.joined(separator: "&")
}

import Foundation
import HTTPClient
import Shared

/// Where and as whom a connector calls a provider, resolved from an installation.
public struct Connection: Sendable, Equatable {
    /// The provider's API base: a Salesforce instance URL, the HubSpot API host.
    public var baseURL: String
    public var accessToken: String
    /// What renews the access token when it expires: the OAuth refresh token and client, and the
    /// token endpoint's base (default: `baseURL`).
    public var refreshToken: String?
    public var clientId: String?
    public var clientSecret: String?
    public var tokenURL: String?
    /// The access token is an API key of the account (a HubSpot private-app token, a Pipedrive API token),
    /// which some providers take in a header of their own.
    public var isAPIKey: Bool

    public init(
        baseURL: String, accessToken: String, refreshToken: String? = nil, clientId: String? = nil,
        clientSecret: String? = nil, tokenURL: String? = nil, isAPIKey: Bool = false
    ) {
        self.isAPIKey = isAPIKey
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.clientId = clientId
        self.clientSecret = clientSecret
        self.tokenURL = tokenURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
    }

    /// What a refresh grant needs, or nil when the connection cannot be refreshed.
    var refreshGrant: (token: String, clientId: String, clientSecret: String)? {
        guard let refreshToken, let clientId, let clientSecret else { return nil }
        return (refreshToken, clientId, clientSecret)
    }

    /// Why a connection without `refreshGrant` cannot be renewed.
    static let cannotRefresh = WriteError(message: "the installation has no refresh token", code: "RECONNECT_REQUIRED")
}

/// A connection prints its address only: its tokens and client secret never reach a log line.
extension Connection: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "Connection(\(baseURL))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["baseURL": baseURL], displayStyle: .struct) }
}

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

    public init(
        baseURL: String, accessToken: String, refreshToken: String? = nil, clientId: String? = nil,
        clientSecret: String? = nil, tokenURL: String? = nil
    ) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.clientId = clientId
        self.clientSecret = clientSecret
        self.tokenURL = tokenURL.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
    }

    /// The refresh grant's form, or nil when the connection cannot be refreshed.
    var refreshForm: [UInt8]? {
        guard let refreshToken, let clientId, let clientSecret else { return nil }
        let pairs = [("grant_type", "refresh_token"), ("refresh_token", refreshToken), ("client_id", clientId),
                     ("client_secret", clientSecret)]
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return Array(pairs.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)" }
            .joined(separator: "&").utf8)
    }
}

/// What a token refresh came to.
public enum TokenRefresh: Sendable, Equatable {
    /// A new access token (and, where the provider rotates them, a new refresh token or instance URL).
    case refreshed(accessToken: String, refreshToken: String?, instanceURL: String?)
    /// The provider refused the refresh token or client: the customer has to connect again.
    case refused(WriteError)
    /// The token endpoint could not be reached or failed: worth trying again later.
    case unavailable(WriteError)
}

/// One single-record write, in the provider's terms.
public struct ConnectorWrite: Sendable {
    public var type: WriteType
    /// The provider's object (Contact, contacts, …).
    public var object: String
    public var recordId: String?
    public var fields: [String: JSONValue]
    public var associations: JSONValue?

    public init(type: WriteType, object: String, recordId: String?, fields: [String: JSONValue], associations: JSONValue?) {
        self.type = type
        self.object = object
        self.recordId = recordId
        self.fields = fields
        self.associations = associations
    }
}

/// What a provider made of a write.
public enum ConnectorOutcome: Sendable, Equatable {
    /// Applied. `data` is the record as the provider describes it after the write.
    case applied(recordId: String, data: [String: JSONValue], status: Int)
    /// Refused for good (validation, not found, auth): sending it again would not help.
    case rejected(WriteError, status: Int)
    /// Not applied for now (rate limit, outage, lock): worth sending again later. `notSent` is true when
    /// the request cannot have reached the provider.
    case retryable(WriteError, status: Int?, notSent: Bool)
    /// The access token was refused (expired or revoked): not applied; refresh the token and send again.
    case unauthorized(WriteError, status: Int)
    /// Refused for the connection's request limit (HubSpot 429, Salesforce 403 REQUEST_LIMIT_EXCEEDED):
    /// not applied; send again once the window (`daily`: the day's budget) has room.
    case rateLimited(WriteError, status: Int, daily: Bool)
}

/// What a provider's answer said about the connection's request limits.
public struct RateLimitReport: Sendable, Equatable {
    /// Calls allowed per short window, left in the current one, and the window's length (HubSpot's
    /// ten-secondly limit).
    public var windowMax: Int?
    public var windowRemaining: Int?
    public var windowSeconds: Double?
    /// The long budget (HubSpot's day, Salesforce's rolling 24 hours): calls allowed, and left.
    public var dailyMax: Int?
    public var dailyRemaining: Int?

    public init(windowMax: Int? = nil, windowRemaining: Int? = nil, windowSeconds: Double? = nil, dailyMax: Int? = nil,
                dailyRemaining: Int? = nil)
    {
        self.windowMax = windowMax
        self.windowRemaining = windowRemaining
        self.windowSeconds = windowSeconds
        self.dailyMax = dailyMax
        self.dailyRemaining = dailyRemaining
    }
}

/// A provider's answer to a write: the outcome, and the limits it reported (nil: no answer, or none).
public struct ConnectorResponse: Sendable, Equatable {
    public var outcome: ConnectorOutcome
    public var limits: RateLimitReport?

    public init(_ outcome: ConnectorOutcome, limits: RateLimitReport? = nil) {
        self.outcome = outcome
        self.limits = limits
    }

    /// Whether the provider answered at all (not a transport failure).
    public var answered: Bool {
        if case .retryable(_, nil, _) = outcome { return false }
        return true
    }
}

extension ConnectorOutcome {
    /// applied, rejected or retryable: a metrics label.
    public var name: String {
        switch self {
        case .applied: return "applied"
        case .rejected: return "rejected"
        case .retryable: return "retryable"
        case .unauthorized: return "unauthorized"
        case .rateLimited: return "rate_limited"
        }
    }
}

/// A provider's write API.
public protocol Connector: Sendable {
    func write(_ write: ConnectorWrite, connection: Connection) async -> ConnectorResponse
    /// The limits a response's headers report.
    func limits(of response: HTTPResponse) -> RateLimitReport?
    /// Asks the provider's OAuth token endpoint for a new access token with the refresh token.
    func refresh(_ connection: Connection) async -> TokenRefresh
}

extension Connector {
    /// Sends a request and turns a transport failure into a retryable outcome; hands any HTTP response
    /// to `interpret` and reads the limits it reports.
    func call(
        _ client: HTTPClient, _ request: HTTPRequest, interpret: (HTTPResponse) -> ConnectorOutcome
    ) async -> ConnectorResponse {
        do {
            let response = try await client.execute(request)
            return ConnectorResponse(interpret(response), limits: limits(of: response))
        } catch let error as HTTPClientError {
            return ConnectorResponse(.retryable(
                WriteError(message: "provider unreachable: \(error.message)", code: error.isTimeout ? "TIMEOUT" : "UNREACHABLE"),
                status: nil, notSent: error.notSent))
        } catch {
            return ConnectorResponse(.retryable(WriteError(message: "provider call failed: \(error)"), status: nil, notSent: false))
        }
    }

    /// Posts the refresh grant to `path` under the token endpoint and reads the access token (and a
    /// rotated refresh token or instance URL) from a 200; a 400 or 401 is a refusal.
    func refreshToken(_ client: HTTPClient, _ connection: Connection, path: String, timeout: Double) async -> TokenRefresh {
        guard let form = connection.refreshForm else {
            return .refused(WriteError(message: "the installation has no refresh token", code: "RECONNECT_REQUIRED"))
        }
        let request = HTTPRequest(
            method: "POST", url: (connection.tokenURL ?? connection.baseURL) + path,
            headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")], body: form,
            timeout: timeout)
        let response: HTTPResponse
        do {
            response = try await client.execute(request)
        } catch {
            return .unavailable(WriteError(message: "token endpoint unreachable: \(error)"))
        }
        let body = try? JSONCoding.decode(JSONValue.self, from: response.body)
        if response.status == 200, let token = body?["access_token"]?.stringValue {
            return .refreshed(accessToken: token, refreshToken: body?["refresh_token"]?.stringValue,
                              instanceURL: body?["instance_url"]?.stringValue)
        }
        let reason = body?["error_description"]?.stringValue ?? body?["message"]?.stringValue ?? "HTTP \(response.status)"
        let code = body?["error"]?.stringValue ?? body?["status"]?.stringValue
        let error = WriteError(message: "token refresh failed: \(reason)", code: code, raw: response.text)
        return response.status == 400 || response.status == 401 ? .refused(error) : .unavailable(error)
    }

    func jsonBody(_ value: some Encodable) -> [UInt8] {
        (try? JSONCoding.encode(value)) ?? Array("{}".utf8)
    }
}

/// The connector for each provider.
public struct Connectors: Sendable {
    private let salesforce: SalesforceConnector
    private let hubspot: HubSpotConnector

    public init(client: HTTPClient, timeout: Double) {
        salesforce = SalesforceConnector(client: client, timeout: timeout)
        hubspot = HubSpotConnector(client: client, timeout: timeout)
    }

    public func connector(for provider: Provider) -> any Connector {
        switch provider {
        case .salesforce: return salesforce
        case .hubspot: return hubspot
        }
    }
}

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

/// A connection prints its address only: its tokens and client secret never reach a log line.
extension Connection: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var description: String { "Connection(\(baseURL))" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: ["baseURL": baseURL], displayStyle: .struct) }
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
    /// For an upsert: the field to match and the values, any of which matches.
    public var upsertOn: ConnectorUpsert?

    public init(
        type: WriteType, object: String, recordId: String?, fields: [String: JSONValue], associations: JSONValue?,
        upsertOn: ConnectorUpsert? = nil
    ) {
        self.upsertOn = upsertOn
        self.type = type
        self.object = object
        self.recordId = recordId
        self.fields = fields
        self.associations = associations
    }
}

public struct ConnectorUpsert: Sendable, Equatable {
    public var field: String
    public var values: [String]

    public init(field: String, values: [String]) {
        self.field = field
        self.values = values
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
    /// For a batch the provider answered: each record's outcome (applied or rejected), in request order.
    public var items: [ConnectorOutcome]?

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
    /// The HTTP client the connector calls with.
    var client: HTTPClient { get }
    func write(_ write: ConnectorWrite, connection: Connection) async -> ConnectorResponse
    /// Creates or updates several records of one object in one call (Salesforce sObject collections,
    /// HubSpot batch): `items` of the response says what became of each, unless the call failed whole.
    func writeBatch(_ writes: [ConnectorWrite], allOrNone: Bool, connection: Connection) async -> ConnectorResponse
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

    /// An upsert: finds the records whose field holds one of the values, then updates the one found or
    /// creates the record (with the first value in the field) when none is; refuses when several match.
    func upsert(
        _ write: ConnectorWrite, connection: Connection,
        find: (ConnectorUpsert) async -> (ids: [String]?, response: ConnectorResponse)
    ) async -> ConnectorResponse {
        guard let match = write.upsertOn, !match.values.isEmpty else {
            return ConnectorResponse(.rejected(WriteError(message: "an upsert needs a field and values to match on"), status: 400))
        }
        let found = await find(match)
        guard let ids = found.ids else { return found.response }
        var next = write
        next.upsertOn = nil
        if ids.count > 1 {
            return ConnectorResponse(.rejected(WriteError(
                message: "\(ids.count) \(write.object) records match \(match.field) in [\(match.values.joined(separator: ", "))]; "
                    + "an upsert updates one record at most", code: "MULTIPLE_RECORDS_MATCH"), status: 409))
        }
        if let id = ids.first {
            next.type = .update
            next.recordId = id
        } else {
            next.type = .create
            if next.fields[match.field] == nil { next.fields[match.field] = .string(match.values[0]) }
        }
        return await self.write(next, connection: connection)
    }

    /// Sends a search and reads the ids of the records it found: `list` names the answer's array, `idKey`
    /// the id in each item. A refused search comes back as its response, with no ids.
    func findIds(
        _ request: HTTPRequest, list: String, idKey: String, provider: String, failure: (HTTPResponse) -> ConnectorOutcome
    ) async -> (ids: [String]?, response: ConnectorResponse) {
        var ids: [String] = []
        let response = await call(client, request) { response in
            guard response.status == 200 else { return failure(response) }
            let answer = try? JSONCoding.decode(JSONValue.self, from: response.body)
            guard case .array(let items)? = answer?[list] else {
                return .rejected(WriteError(message: "\(provider) answered the search without \(list)", raw: response.text),
                                 status: response.status)
            }
            ids = items.compactMap { $0[idKey]?.scalarText }
            return .applied(recordId: "", data: [:], status: response.status)
        }
        guard case .applied = response.outcome else { return (nil, response) }
        return (ids, response)
    }

    /// Sends a batch call; `interpret` reads a successful answer into each record's outcome, in request
    /// order (nil: the answer cannot be read). Any other answer is `failure`'s.
    func batchCall(
        _ request: HTTPRequest, count: Int, provider: String, failure: (HTTPResponse) -> ConnectorOutcome,
        interpret: (HTTPResponse) -> [ConnectorOutcome]?
    ) async -> ConnectorResponse {
        var items: [ConnectorOutcome]?
        var response = await call(client, request) { response in
            guard (200..<300).contains(response.status) else { return failure(response) }
            guard let read = interpret(response), read.count == count else {
                return .rejected(WriteError(message: "\(provider) answered the batch without a result per record", raw: response.text),
                                 status: response.status)
            }
            items = read
            return .applied(recordId: "", data: [:], status: response.status)
        }
        response.items = items
        return response
    }

    func jsonBody(_ value: some Encodable) -> [UInt8] {
        (try? JSONCoding.encode(value)) ?? Array("{}".utf8)
    }
}

/// The connector for each provider.
public struct Connectors: Sendable {
    let salesforce: SalesforceConnector
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

import HTTPClient
import Shared

/// Everything Writeback asks of a provider's HTTP API: writes (single and batch), reads and search,
/// object metadata, raw requests with the connection's credentials, OAuth, and the limits its answers
/// report. Nothing outside a provider's folder builds one of its URLs.
public protocol Connector: Sendable {
    /// The HTTP client the connector calls with.
    var client: HTTPClient { get }
    /// What is known of the provider without calling it.
    var profile: ProviderProfile { get }

    // MARK: writes

    func write(_ write: ConnectorWrite, connection: Connection) async -> ConnectorResponse
    /// Creates or updates several records of one object in one call (Salesforce sObject collections,
    /// HubSpot batch): `items` of the response says what became of each, unless the call failed whole.
    func writeBatch(_ writes: [ConnectorWrite], allOrNone: Bool, connection: Connection) async -> ConnectorResponse
    /// The limits a response's headers report.
    func limits(of response: HTTPResponse) -> RateLimitReport?
    /// A write's answer as the provider itself gives it (what the actions API returns).
    func nativeAnswer(_ type: WriteType, recordId: String, data: [String: JSONValue]) -> JSONValue

    // MARK: reads

    /// Reads records; the answer is the provider's own. `allFields` names every field of the object,
    /// for a provider that has to list the fields it reads.
    func read(_ read: RecordRead, connection: Connection, allFields: @Sendable () async -> [String]) async
        -> ProviderAnswer<JSONValue>
    /// The records of a list or search answer, and the cursor of the next page.
    func records(in answer: JSONValue) -> (records: [RecordSummary], cursor: String?)
    /// One record of an answer.
    func record(_ answer: JSONValue) -> RecordSummary
    /// The object's fields in the connection's account.
    func describe(_ object: String, connection: Connection) async -> ProviderAnswer<ObjectMetadata>
    /// The request with the connection's credentials added.
    func authorized(_ headers: [(String, String)], connection: Connection) -> [(String, String)]

    // MARK: connecting

    /// The API host of a new connection when none is given (`workspace`: the account's own name at the
    /// provider, where its host is named after it).
    func baseURL(workspace: String?) throws(ConnectionInputError) -> String
    /// The provider's consent page for the app, carrying `state`.
    func authorizationPage(_ app: OAuthApp, state: String) -> String
    /// Exchanges an authorization code for the connection's tokens.
    func exchange(code: String, app: OAuthApp) async -> TokenExchange
    /// The host a connection made from tokens renews them at (nil: its API host).
    var tokenHost: String? { get }
    /// Asks the provider's OAuth token endpoint for a new access token with the refresh token.
    func refresh(_ connection: Connection) async -> TokenRefresh
}

extension Connector {
    public func authorized(_ headers: [(String, String)], connection: Connection) -> [(String, String)] {
        headers + [("Authorization", "Bearer \(connection.accessToken)")]
    }

    /// Sends a raw request at the connection's host with its credentials: the answer as it is.
    public func send(_ request: RawRequest, connection: Connection, timeout: Double) async throws -> HTTPResponse {
        let dropped: Set<String> = ["authorization", "x-api-token"]
        let headers = authorized(request.headers.filter { !dropped.contains($0.0.lowercased()) }, connection: connection)
        return try await client.execute(HTTPRequest(method: request.method, url: request.url, headers: headers, body: request.body,
                                                    timeout: timeout))
    }

    /// A read's or a describe's answer: `read` turns a 2xx body into the value; a 401 is a refused token,
    /// a 429 (or what `limited` recognises) the connection's limit.
    func answer<Value>(
        _ request: HTTPRequest, limited: (HTTPResponse) -> Bool = { $0.status == 429 }, read: (JSONValue) -> Value?
    ) async -> ProviderAnswer<Value> {
        let response: HTTPResponse
        do {
            response = try await client.execute(request)
        } catch let error as HTTPClientError {
            return .unreachable(error.message)
        } catch {
            return .unreachable("\(error)")
        }
        let body = (try? JSONCoding.decode(JSONValue.self, from: response.body)) ?? .string(response.text)
        if response.status == 401 { return .unauthorized(body: body) }
        guard (200..<300).contains(response.status), let value = read(body) else {
            return .refused(status: response.status, body: body, rateLimited: limited(response))
        }
        return .answered(value)
    }
}

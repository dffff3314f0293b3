import Foundation
import HTTPClient
import Shared

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
        guard let refresh = connection.refreshGrant else { return .refused(Connection.cannotRefresh) }
        let grant = [("grant_type", "refresh_token"), ("refresh_token", refresh.token), ("client_id", refresh.clientId),
                     ("client_secret", refresh.clientSecret)]
        switch await postGrant(grant, to: (connection.tokenURL ?? connection.baseURL) + path, timeout: timeout) {
        case .success(let tokens):
            return .refreshed(accessToken: tokens.access, refreshToken: tokens.body["refresh_token"]?.stringValue,
                              instanceURL: tokens.body["instance_url"]?.stringValue)
        case .failure(let failure):
            let error = WriteError(message: "token refresh failed: \(failure.reason)", code: failure.code, raw: failure.raw)
            return failure.status == 400 || failure.status == 401 ? .refused(error) : .unavailable(error)
        }
    }

    /// Posts an OAuth grant (form-encoded; the client in HTTP Basic authentication when `basic` is given)
    /// and reads the access token from a 200.
    func postGrant(_ grant: [(String, String)], to url: String, basic: (id: String, secret: String)? = nil, timeout: Double) async
        -> Result<GrantedTokens, GrantFailure>
    {
        var headers = [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/json")]
        if let basic { headers.append(("Authorization", "Basic " + Data("\(basic.id):\(basic.secret)".utf8).base64EncodedString())) }
        let response: HTTPResponse
        do {
            response = try await client.execute(HTTPRequest(method: "POST", url: url, headers: headers, body: Array(formEncoded(grant).utf8),
                                                            timeout: timeout))
        } catch {
            return .failure(GrantFailure(status: nil, reason: "token endpoint unreachable: \(error)", code: nil, raw: nil))
        }
        let body = try? JSONCoding.decode(JSONValue.self, from: response.body)
        if response.status == 200, let body, let access = body["access_token"]?.stringValue {
            return .success(GrantedTokens(access: access, body: body))
        }
        let reason = body?["error_description"]?.stringValue ?? body?["message"]?.stringValue ?? "HTTP \(response.status)"
        return .failure(GrantFailure(status: response.status, reason: reason, code: body?["error"]?.stringValue ?? body?["status"]?.stringValue,
                                     raw: response.text))
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
    /// the id in each item (either may be a dotted path, `data.items`). A refused search comes back as its response, with no ids.
    func findIds(
        _ request: HTTPRequest, list: String, idKey: String, provider: String, failure: (HTTPResponse) -> ConnectorOutcome
    ) async -> (ids: [String]?, response: ConnectorResponse) {
        var ids: [String] = []
        let response = await call(client, request) { response in
            guard response.status == 200 else { return failure(response) }
            let answer = try? JSONCoding.decode(JSONValue.self, from: response.body)
            /// `a.b`: `b` of `a`.
            func lookup(_ value: JSONValue?, _ path: String) -> JSONValue? {
                path.split(separator: ".").reduce(value) { $0?[String($1)] }
            }
            guard case .array(let items)? = lookup(answer, list) else {
                return .rejected(WriteError(message: "\(provider) answered the search without \(list)", raw: response.text),
                                 status: response.status)
            }
            ids = items.compactMap { lookup($0, idKey)?.scalarText }
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

/// A URL path segment, percent-encoded.
func pathSegment(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
}

/// `?a=1&b=2`, or nothing.
func queryText(_ query: [(String, String)]) -> String {
    query.isEmpty ? "" : "?" + formEncoded(query)
}

/// A token endpoint's 200: the access token and the whole answer (refresh token, instance or API host).
struct GrantedTokens {
    var access: String
    var body: JSONValue
}

/// A token endpoint's refusal (`status`), or no answer (`status` nil).
struct GrantFailure: Error {
    var status: Int?
    var reason: String
    var code: String?
    var raw: String?
}

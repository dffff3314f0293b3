import Foundation
import HTTPTypes
import Hummingbird
import Shared

/// The providers' OAuth consent pages (which consent at once), token endpoints (authorization-code and
/// refresh grants) and the controls that make tokens expire.
extension Sandbox {
    func addOAuthRoutes(to router: Router<BasicRequestContext>) {
        // Salesforce: GET /services/oauth2/authorize; HubSpot: GET /oauth/authorize. The customer consents
        // at once: the browser goes back to redirect_uri with a code and the state.
        for (path, provider) in [("services/oauth2/authorize", "salesforce"), ("oauth/authorize", "hubspot"),
                                 ("pipedrive-oauth/oauth/authorize", "pipedrive")] {
            router.get(RouterPath(stringLiteral: path)) { request, _ in
                let query = request.uri.queryParameters
                guard query.get("client_id") == self.configuration.clientId else {
                    return jsonResponse(400, ["error": "invalid_client_id", "error_description": "client identifier invalid"])
                }
                guard let redirect = query.get("redirect_uri"), let target = URLComponents(string: redirect), target.host != nil else {
                    return jsonResponse(400, ["error": "redirect_uri_mismatch", "error_description": "redirect_uri must be a URL"])
                }
                if provider == "salesforce", query.get("response_type") != "code" {
                    return jsonResponse(400, ["error": "unsupported_response_type", "error_description": "response type not supported"])
                }
                let code = "code-\(UUID().uuidString.lowercased())"
                self.state.withLock { $0.authorizationCodes[code] = (provider, redirect) }
                var location = target
                location.queryItems = (target.queryItems ?? []) + [URLQueryItem(name: "code", value: code)]
                    + (query.get("state").map { [URLQueryItem(name: "state", value: $0)] } ?? [])
                var headers = HTTPFields()
                headers[.location] = location.string ?? redirect
                return Response(status: .found, headers: headers)
            }
        }
        // Salesforce: POST /services/oauth2/token, form-encoded.
        router.post("services/oauth2/token") { request, _ in
            var request = request
            let form = await formBody(&request)
            let host = request.head.authority ?? "\(self.configuration.host):\(self.configuration.port)"
            // The instance is where the token was asked for: HTTPS when a TLS terminator in front says so.
            let secure = request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
            let (status, body) = self.refresh(form, provider: "salesforce", validRefreshTokens: self.configuration.salesforceRefreshTokens,
                                              lifetime: self.configuration.salesforceTokenLifetime) { token in
                [
                    "access_token": .string(token), "instance_url": .string("\(secure ? "https" : "http")://\(host)"),
                    "id": "https://login.salesforce.com/id/00D000000000001AAA/005000000000001AAA",
                    "token_type": "Bearer", "issued_at": .string(String(Int(Date().timeIntervalSince1970 * 1000))),
                    "signature": .string(Data(token.utf8.reversed()).base64EncodedString()), "scope": "api refresh_token",
                ]
            } refused: { invalidClient in
                invalidClient
                    ? ["error": "invalid_client_id", "error_description": "client identifier invalid"]
                    : ["error": "invalid_grant", "error_description": "expired access/refresh token"]
            }
            self.log(provider: "salesforce", method: "POST", path: request.uri.path, object: "oauth", recordId: nil,
                     status: status, body: nil)
            return jsonResponse(status, body)
        }
        // HubSpot: POST /oauth/v1/token, form-encoded.
        router.post("oauth/v1/token") { request, _ in
            var request = request
            let form = await formBody(&request)
            let (status, body) = self.refresh(form, provider: "hubspot", validRefreshTokens: self.configuration.hubspotRefreshTokens,
                                              lifetime: self.configuration.hubspotTokenLifetime) { token in
                ["token_type": "bearer", "refresh_token": .string(form["refresh_token"] ?? ""), "access_token": .string(token),
                 "expires_in": .number(self.configuration.hubspotTokenLifetime)]
            } refused: { invalidClient in
                [
                    "status": invalidClient ? "BAD_CLIENT_ID" : "BAD_REFRESH_TOKEN",
                    "message": invalidClient ? "missing or unknown client_id" : "missing or unknown refresh token",
                    "correlationId": .string(UUID().uuidString.lowercased()),
                ]
            }
            self.log(provider: "hubspot", method: "POST", path: request.uri.path, object: "oauth", recordId: nil,
                     status: status, body: nil)
            return jsonResponse(status, body)
        }
        // Every access token issued so far stops working now (as if its session timed out).
        router.put("_sandbox/tokens/expire") { request, _ in
            let now = Date().timeIntervalSince1970
            // `?provider=` expires that provider's tokens only.
            let provider = request.uri.queryParameters["provider"].map(String.init)
            let count = self.state.withLock { state in
                let tokens = state.accessTokens.filter { provider == nil || $0.value.provider == provider }.keys
                for token in tokens { state.accessTokens[token]?.expires = now }
                return tokens.count
            }
            return jsonResponse(200, ["expired": count])
        }
        // Every refresh token stops working too (as if the customer revoked the app).
        router.put("_sandbox/tokens/revoke") { _, _ in
            let revoked = Set(self.configuration.salesforceRefreshTokens.union(self.configuration.hubspotRefreshTokens)
                .union(self.configuration.pipedriveRefreshTokens)
                .map { Self.tokenAndOrg($0).token })
            self.state.withLock { $0.revokedRefreshTokens.formUnion(revoked) }
            return jsonResponse(200, ["revoked": revoked.count])
        }
    }

    func refresh(
        _ form: [String: String], provider: String, validRefreshTokens: Set<String>, lifetime: Double,
        issued: (String) -> [String: JSONValue], refused: (_ invalidClient: Bool) -> [String: JSONValue]
    ) -> (Int, [String: JSONValue]) {
        guard form["client_id"] == configuration.clientId, form["client_secret"] == configuration.clientSecret else {
            return (400, refused(true))
        }
        if form["grant_type"] == "authorization_code" {
            return exchange(form, provider: provider, lifetime: lifetime, issued: issued, refused: refused)
        }
        guard form["grant_type"] == "refresh_token", let refreshToken = form["refresh_token"],
            validRefreshTokens.contains(where: { Self.tokenAndOrg($0).token == refreshToken })
                || state.withLock({ $0.issuedRefreshTokens[refreshToken] == provider })
        else { return (400, refused(false)) }
        let token: String? = state.withLock { state in
            guard !state.revokedRefreshTokens.contains(refreshToken) else { return nil }
            state.issuedTokens += 1
            let token = "\(provider)-access-\(state.issuedTokens)-\(UUID().uuidString.prefix(8).lowercased())"
            state.accessTokens[token] = .init(
                provider: provider, org: state.refreshTokenOrgs[refreshToken] ?? "default",
                expires: Date().timeIntervalSince1970 + lifetime)
            return token
        }
        guard let token else { return (400, refused(false)) }
        return (200, issued(token))
    }
}

extension Sandbox {
    /// The authorization-code grant: a code the consent page gave for this provider and redirect URI,
    /// once, for an access token and a new refresh token.
    fileprivate func exchange(
        _ form: [String: String], provider: String, lifetime: Double, issued: (String) -> [String: JSONValue],
        refused: (_ invalidClient: Bool) -> [String: JSONValue]
    ) -> (Int, [String: JSONValue]) {
        let tokens: (String, String)? = state.withLock { state in
            guard let code = form["code"], let grant = state.authorizationCodes.removeValue(forKey: code), grant.provider == provider,
                  grant.redirectURI == form["redirect_uri"]
            else { return nil }
            state.issuedTokens += 1
            let access = "\(provider)-access-\(state.issuedTokens)-\(UUID().uuidString.prefix(8).lowercased())"
            let refresh = "\(provider)-refresh-\(UUID().uuidString.lowercased())"
            state.accessTokens[access] = .init(provider: provider, org: "default", expires: Date().timeIntervalSince1970 + lifetime)
            state.issuedRefreshTokens[refresh] = provider
            state.refreshTokenOrgs[refresh] = "default"
            return (access, refresh)
        }
        guard let (access, refresh) = tokens else {
            return (400, provider == "salesforce"
                ? ["error": "invalid_grant", "error_description": "authentication failure"]
                : ["status": "BAD_AUTH_CODE", "message": "missing or unknown auth code",
                   "correlationId": .string(UUID().uuidString.lowercased())])
        }
        var body = issued(access)
        body["refresh_token"] = .string(refresh)
        return (200, body)
    }
}

/// An `application/x-www-form-urlencoded` body as a dictionary.
func formBody(_ request: inout Request) async -> [String: String] {
    guard let buffer = try? await request.collectBody(upTo: 1 << 20) else { return [:] }
    var form: [String: String] = [:]
    for pair in String(buffer: buffer).split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1).map {
            $0.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
        }
        if parts.count == 2 { form[parts[0]] = parts[1] }
    }
    return form
}

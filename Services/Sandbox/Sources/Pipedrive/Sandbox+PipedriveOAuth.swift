import Foundation
import Hummingbird
import Shared

/// Pipedrive's OAuth server, standing for oauth.pipedrive.com under `/pipedrive-oauth`: the consent page
/// is the shared one; `POST /pipedrive-oauth/oauth/token` takes the client by HTTP Basic authentication
/// and answers the tokens with the `api_domain` to call (this sandbox).
extension Sandbox {
    func addPipedriveOAuthRoutes(to router: Router<BasicRequestContext>) {
        router.post("pipedrive-oauth/oauth/token") { request, _ in
            var request = request
            var form = await formBody(&request)
            if let (id, secret) = Self.basicCredentials(request) {
                form["client_id"] = id
                form["client_secret"] = secret
            }
            let host = request.head.authority ?? "\(self.configuration.host):\(self.configuration.port)"
            let (status, body) = self.refresh(form, provider: "pipedrive", validRefreshTokens: self.configuration.pipedriveRefreshTokens,
                                              lifetime: self.configuration.pipedriveTokenLifetime) { token in
                ["access_token": .string(token), "token_type": "Bearer", "refresh_token": .string(form["refresh_token"] ?? ""),
                 "scope": "base,contacts:full,deals:full", "expires_in": .number(self.configuration.pipedriveTokenLifetime),
                 "api_domain": .string("http://\(host)")]
            } refused: { invalidClient in
                invalidClient
                    ? ["success": false, "message": "Invalid client credentials", "error": "invalid_client"]
                    : ["success": false, "message": "Invalid grant: refresh token is invalid", "error": "invalid_grant"]
            }
            self.log(provider: "pipedrive", method: "POST", path: request.uri.path, object: "oauth", recordId: nil, status: status, body: nil)
            return jsonResponse(status == 400 && body["error"] == "invalid_client" ? 401 : status, body)
        }
    }

    /// `Authorization: Basic base64(id:secret)`.
    static func basicCredentials(_ request: Request) -> (String, String)? {
        guard let value = request.headers[.authorization], value.hasPrefix("Basic "),
              let data = Data(base64Encoded: String(value.dropFirst("Basic ".count))), let text = String(data: data, encoding: .utf8),
              let colon = text.firstIndex(of: ":")
        else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }
}

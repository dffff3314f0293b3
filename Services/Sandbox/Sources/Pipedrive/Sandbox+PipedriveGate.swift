import Hummingbird
import HTTPTypes
import Shared

/// How Pipedrive authenticates a call and reports its limits.
extension Sandbox {
    /// An API token: the `x-api-token` header or the `api_token` query parameter.
    static func pipedriveAPIToken(_ request: Request) -> String? {
        request.headers[HTTPField.Name("x-api-token")!] ?? request.uri.queryParameters.get("api_token")
    }

    /// `x-ratelimit-limit`, `-remaining` and `-reset` (seconds) for the burst window, and
    /// `x-daily-requests-left`.
    static func pipedriveLimitHeaders(_ org: Org) -> HTTPFields {
        var headers = HTTPFields()
        if let max = org.limits.windowMax {
            headers[HTTPField.Name("x-ratelimit-limit")!] = String(max)
            headers[HTTPField.Name("x-ratelimit-remaining")!] = String(org.windowRemaining)
            headers[HTTPField.Name("x-ratelimit-reset")!] = String(Swift.max(1, org.limits.windowMilliseconds / 1000))
        }
        if org.limits.dailyMax != nil { headers[HTTPField.Name("x-daily-requests-left")!] = String(org.dailyRemaining) }
        return headers
    }

    /// 429 with Pipedrive's body and a `Retry-After`.
    func pipedriveLimited(daily: Bool, headers: HTTPFields) -> Response {
        var headers = headers
        headers[.retryAfter] = daily ? "3600" : headers[HTTPField.Name("x-ratelimit-reset")!] ?? "2"
        let message = daily ? "Daily request limit exceeded" : "Request over limit"
        return jsonResponse(429, Self.pipedriveErrorBody(message, code: daily ? "daily_limit" : "rate_limit"), headers: headers)
    }
}

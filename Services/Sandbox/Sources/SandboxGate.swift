import Foundation
import Hummingbird
import HTTPTypes
import Shared

/// Where a provider call stands once its token, its org's limits and any queued fault were looked at.
enum Gate {
    /// Go on: the call was counted against `org`; send `headers` with the answer.
    case proceed(org: String, headers: HTTPFields)
    /// Answer this instead: a refused token, a limit, an injected fault. `status` 0 is a dropped connection.
    case answered(status: Int, response: Response)
}

extension Sandbox {
    /// Authenticates a provider call, waits the org's latency, counts the call against the org's limits
    /// and, for writes, applies the next queued fault, the way the provider would answer each.
    func gate(_ request: Request, provider: String, write: Bool) async throws -> Gate {
        let org: String
        switch checkToken(request, provider: provider) {
        case .valid(let name):
            org = name
        case .missing:
            try await simulateLatency(provider, nil)
            return .answered(status: 401, response: unauthorized(provider, expiredSeconds: nil))
        case .expired(let seconds):
            try await simulateLatency(provider, nil)
            return .answered(status: 401, response: unauthorized(provider, expiredSeconds: seconds))
        }
        try await simulateLatency(provider, org)
        let now = Date().timeIntervalSince1970
        let (admission, headers) = withOrg(provider, org) { org in (org.admit(now: now), Self.limitHeaders(provider, org)) }
        if admission != .admitted {
            return .answered(status: provider == "salesforce" ? 403 : 429,
                             response: limited(provider, daily: admission == .overDaily, headers: headers))
        }
        guard write, let fault = try await takeFault(provider, org: org) else { return .proceed(org: org, headers: headers) }
        switch fault.kind {
        case "drop":
            return .answered(status: 0, response: Self.droppedConnection())
        case "lock" where provider == "salesforce":
            let record = request.uri.path.split(separator: "/").last.map(String.init) ?? ""
            return .answered(status: 400, response: jsonResponse(400, [SalesforceError(
                message: "unable to obtain exclusive access to this record or 1 records: \(record)",
                errorCode: "UNABLE_TO_LOCK_ROW")], headers: headers))
        default:
            let status = fault.status ?? 500
            if provider == "pipedrive" {
                return .answered(status: status, response: jsonResponse(status, Self.pipedriveErrorBody("Internal server error"), headers: headers))
            }
            if provider == "hubspot" {
                return .answered(status: status, response: jsonResponse(status, HubSpotError(
                    message: "internal error", category: "INTERNAL_ERROR"), headers: headers))
            }
            return .answered(status: status, response: jsonResponse(status, [status == 503
                ? SalesforceError(message: "Server is temporarily unavailable", errorCode: "SERVER_UNAVAILABLE")
                : SalesforceError(message: "An unexpected error occurred. Please include this ErrorId if you contact support: 1428390781-1021 (-1421349180)",
                                  errorCode: "UNKNOWN_EXCEPTION")], headers: headers))
        }
    }

    /// The next queued fault for the org, or for any org of the provider; a delay is waited here.
    private func takeFault(_ provider: String, org: String) async throws -> Fault? {
        guard let fault = state.withLock({ state -> Fault? in
            for key in ["\(provider)/\(org)", provider] {
                if var queue = state.faults[key], !queue.isEmpty {
                    let fault = queue.removeFirst()
                    state.faults[key] = queue
                    return fault
                }
            }
            return nil
        }) else { return nil }
        if fault.kind == "delay" {
            try await Task.sleep(for: .milliseconds(fault.delayMilliseconds ?? 0))
            return nil
        }
        return fault
    }

    /// Waits the org's latency, or the sandbox's, as a remote API would take.
    private func simulateLatency(_ provider: String, _ org: String?) async throws {
        let milliseconds = state.withLock { state in
            org.flatMap { state.orgs["\(provider)/\($0)"]?.latencyMilliseconds } ?? state.latencyMilliseconds
        }
        if milliseconds > 0 { try await Task.sleep(for: .milliseconds(milliseconds)) }
    }

    /// Salesforce reports the rolling 24-hour usage on every answer; HubSpot the short window and the day.
    static func limitHeaders(_ provider: String, _ org: Org) -> HTTPFields {
        var headers = HTTPFields()
        if provider == "salesforce" {
            headers[HTTPField.Name("Sforce-Limit-Info")!] = "api-usage=\(org.dailyUsed)/\(org.limits.dailyMax ?? 0)"
            return headers
        }
        if provider == "pipedrive" { return pipedriveLimitHeaders(org) }
        if let max = org.limits.windowMax {
            headers[HTTPField.Name("X-HubSpot-RateLimit-Max")!] = String(max)
            headers[HTTPField.Name("X-HubSpot-RateLimit-Remaining")!] = String(org.windowRemaining)
            headers[HTTPField.Name("X-HubSpot-RateLimit-Interval-Milliseconds")!] = String(org.limits.windowMilliseconds)
        }
        if let daily = org.limits.dailyMax {
            headers[HTTPField.Name("X-HubSpot-RateLimit-Daily")!] = String(daily)
            headers[HTTPField.Name("X-HubSpot-RateLimit-Daily-Remaining")!] = String(org.dailyRemaining)
        }
        return headers
    }

    private func unauthorized(_ provider: String, expiredSeconds: Int?) -> Response {
        if provider == "pipedrive" {
            return jsonResponse(401, Self.pipedriveErrorBody(expiredSeconds == nil ? "unauthorized access" : "Access token expired",
                                                             code: "unauthorized"))
        }
        if provider == "salesforce" {
            return jsonResponse(401, [SalesforceError(message: "Session expired or invalid", errorCode: "INVALID_SESSION_ID")])
        }
        if let expiredSeconds {
            return jsonResponse(401, HubSpotError(
                message: "The OAuth token used to make this call expired \(expiredSeconds) second(s) ago.",
                category: "EXPIRED_AUTHENTICATION"))
        }
        return jsonResponse(401, HubSpotError(
            message: "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            category: "INVALID_AUTHENTICATION"))
    }

    /// Salesforce: 403 REQUEST_LIMIT_EXCEEDED, no Retry-After. HubSpot: 429 RATE_LIMIT naming the policy.
    private func limited(_ provider: String, daily: Bool, headers: HTTPFields) -> Response {
        if provider == "pipedrive" { return pipedriveLimited(daily: daily, headers: headers) }
        if provider == "salesforce" {
            return jsonResponse(403, [SalesforceError(message: "TotalRequests Limit exceeded.", errorCode: "REQUEST_LIMIT_EXCEEDED")],
                                headers: headers)
        }
        let policy = daily ? "daily" : "ten_secondly_rolling"
        let body: JSONValue = [
            "status": "error", "message": .string("You have reached your \(policy) limit."), "errorType": "RATE_LIMIT",
            "correlationId": .string(UUID().uuidString.lowercased()), "policyName": .string(policy.uppercased()),
        ]
        return jsonResponse(429, body, headers: headers)
    }

    /// A response whose connection closes after the status line, before any body: the client sees the
    /// connection dropped mid-answer.
    static func droppedConnection() -> Response {
        struct Dropped: Error {}
        return Response(status: .ok, headers: [.contentType: "application/json"],
                        body: ResponseBody(contentLength: 64) { _ in throw Dropped() })
    }
}

extension Sandbox {
    /// Runs `body` with the org and limit headers of a call the gate let through; answers the gate's
    /// refusal otherwise.
    func gated(_ request: Request, provider: String, write: Bool = false,
               _ body: (_ org: String, _ headers: HTTPFields) async throws -> Response) async throws -> Response
    {
        switch try await gate(request, provider: provider, write: write) {
        case .answered(_, let response): return response
        case .proceed(let org, let headers): return try await body(org, headers)
        }
    }
}

extension Sandbox {
    /// One call to a provider's record API: through the gate, then `answer` (status, body, and the id of
    /// a record it created); writes are logged for `GET /_sandbox/requests` whatever the answer.
    func answerCall(
        _ request: Request, provider: String, object: String, recordId: String?, body: JSONValue?, method: String,
        answer: (_ org: String) -> (Int, any Encodable, String?)
    ) async throws -> Response {
        let status: Int
        let response: Response
        var loggedId = recordId
        switch try await gate(request, provider: provider, write: method != "GET") {
        case .answered(let code, let refusal):
            (status, response) = (code, refusal)
        case .proceed(let org, let headers):
            let (code, value, createdId) = answer(org)
            status = code
            response = code == 204
                ? Response(status: .noContent, headers: headers) : jsonResponse(code, AnyEncodable(value), headers: headers)
            loggedId = recordId ?? createdId
        }
        if method != "GET" {
            log(provider: provider, method: method, path: request.uri.path, object: object, recordId: loggedId,
                status: status, body: body)
        }
        return response
    }
}

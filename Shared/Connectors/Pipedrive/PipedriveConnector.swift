import Foundation
import HTTPClient
import Shared

/// Pipedrive API v2 items (`persons`, `organizations`, `deals`): add `POST /api/v2/{type}`, update
/// `PATCH …/{id}`, delete `DELETE …/{id}`. A record's own fields go at the top level and any other key (an
/// account's 40-character custom field keys) under `custom_fields`; `email` and `phone` are accepted as
/// the primary entry of `emails` and `phones`. Pipedrive has no upsert and no batch endpoint: an upsert
/// searches (`GET …/search?exact_match=true`) and then updates or adds; a batch is one call per record.
struct PipedriveConnector: Connector {
    let client: HTTPClient
    let timeout: Double
    let hosts: ProviderHosts
    var profile: ProviderProfile { .pipedrive }

    /// The longest a batch waits for the burst window when Pipedrive limits it midway, in seconds.
    static let batchLimitWait = 10.0

    func headers(_ connection: Connection, json: Bool = false) -> [(String, String)] {
        authorized([("Accept", "application/json")] + (json ? [("Content-Type", "application/json")] : []), connection: connection)
    }

    /// An API token goes in `x-api-token`; an OAuth access token is a bearer token.
    func authorized(_ headers: [(String, String)], connection: Connection) -> [(String, String)] {
        headers + [connection.isAPIKey ? ("x-api-token", connection.accessToken) : ("Authorization", "Bearer \(connection.accessToken)")]
    }

    /// The item's body: its own fields at the top level, every other key under `custom_fields`.
    func body(_ fields: [String: JSONValue], object: String) -> [String: JSONValue] {
        let own = PipedriveProfile.ownFields[object] ?? []
        var body: [String: JSONValue] = [:]
        var custom = fields["custom_fields"]?.objectValue ?? [:]
        for (key, value) in fields where key != "custom_fields" && key.lowercased() != "id" {
            switch key {
            case "email" where own.contains("emails"):
                if let text = value.stringValue { body["emails"] = [["value": .string(text), "primary": true, "label": "work"]] }
            case "phone" where own.contains("phones"):
                if let text = value.stringValue { body["phones"] = [["value": .string(text), "primary": true, "label": "work"]] }
            default:
                if own.contains(key) { body[key] = value } else { custom[key] = value }
            }
        }
        if !custom.isEmpty { body["custom_fields"] = .object(custom) }
        return body
    }

    func write(_ write: ConnectorWrite, connection: Connection) async -> ConnectorResponse {
        let base = "\(connection.baseURL)/api/v2/\(write.object)"
        switch write.type {
        case .upsert:
            return await upsert(write, connection: connection) { match in await find(write.object, match, connection: connection) }
        case .create, .update:
            let creating = write.type == .create
            let request = HTTPRequest(
                method: creating ? "POST" : "PATCH", url: creating ? base : "\(base)/\(pathSegment(write.recordId ?? ""))",
                headers: headers(connection, json: true), body: jsonBody(body(write.fields, object: write.object)), timeout: timeout)
            return await call(client, request) { response in
                guard (200..<300).contains(response.status) else { return failure(response) }
                let data = (try? JSONCoding.decode(JSONValue.self, from: response.body))?["data"]
                guard let id = data?["id"]?.scalarText else {
                    return .rejected(WriteError(message: "Pipedrive answered without an id", raw: response.text), status: response.status)
                }
                return .applied(recordId: id, data: Self.flattened(data?.objectValue ?? [:]), status: creating ? 201 : response.status)
            }
        case .delete:
            let id = write.recordId ?? ""
            let request = HTTPRequest(method: "DELETE", url: "\(base)/\(pathSegment(id))", headers: headers(connection), timeout: timeout)
            return await call(client, request) { response in
                guard (200..<300).contains(response.status) else { return failure(response) }
                return .applied(recordId: id, data: [:], status: response.status)
            }
        }
    }

    /// One call per record, in order. When Pipedrive limits the connection midway, the batch waits for
    /// the burst window (up to `batchLimitWait`); a record still not sent then is refused as NOT_SENT, so
    /// that the records already written are not written again. `allOrNone` cannot be kept without a batch
    /// endpoint and is refused.
    func writeBatch(_ writes: [ConnectorWrite], allOrNone: Bool, connection: Connection) async -> ConnectorResponse {
        if allOrNone {
            return ConnectorResponse(.rejected(WriteError(
                message: "Pipedrive has no batch endpoint, so a batch cannot be written all or none; send it without allOrNone",
                code: "ALL_OR_NONE_UNSUPPORTED"), status: 400))
        }
        var items: [ConnectorOutcome] = []
        var last: ConnectorResponse?
        var waited = 0.0
        var index = 0
        while index < writes.count {
            // Stopped (shutdown): nothing more is sent; what was written is answered.
            if Task.isCancelled {
                guard !items.isEmpty else {
                    return ConnectorResponse(.retryable(WriteError(message: "stopped before the batch was sent", code: "NOT_SENT"),
                                                        status: nil, notSent: true))
                }
                break
            }
            let response = await write(writes[index], connection: connection)
            last = response
            switch response.outcome {
            case .applied, .rejected:
                items.append(response.outcome)
                index += 1
                continue
            case .rateLimited(_, _, false) where waited < Self.batchLimitWait:
                let wait = min(Self.batchLimitWait - waited, max(0.2, response.limits?.windowSeconds ?? 2))
                waited += wait
                try? await Task.sleep(for: .seconds(wait))  // a stop ends the wait, and the loop then stops
                continue
            default:
                break
            }
            // Nothing written yet: the whole batch can be sent again.
            guard !items.isEmpty else { return response }
            break
        }
        if items.count < writes.count {
            let reason = WriteError(message: "not sent: Pipedrive took \(items.count) of \(writes.count) records before it refused "
                + "the connection's calls or the writer stopped; send this record again", code: "NOT_SENT")
            items += Array(repeating: .rejected(reason, status: 429), count: writes.count - items.count)
        }
        var answer = ConnectorResponse(.applied(recordId: "", data: [:], status: 200), limits: last?.limits)
        answer.items = items
        return answer
    }

    /// The ids of the items whose field holds one of the values: `GET …/search?term=…&exact_match=true`
    /// per value (`email`, `name`, `phone`, or a custom field's key).
    private func find(_ object: String, _ match: ConnectorUpsert, connection: Connection) async -> (ids: [String]?, response: ConnectorResponse) {
        let field: String
        switch match.field {
        case "email", "emails": field = "email"
        case "phone", "phones": field = "phone"
        case "name", "title": field = "name"
        default: field = "custom_fields"
        }
        var ids: [String] = []
        var last = ConnectorResponse(.applied(recordId: "", data: [:], status: 200))
        for value in match.values {
            let query = [("term", value), ("fields", field), ("exact_match", "true"), ("limit", "10")]
            let request = HTTPRequest(method: "GET", url: "\(connection.baseURL)/api/v2/\(object)/search" + queryText(query),
                                      headers: headers(connection), timeout: timeout)
            let found = await findIds(request, list: "data.items", idKey: "item.id", provider: "Pipedrive", failure: failure)
            guard let some = found.ids else { return found }
            last = found.response
            for id in some where !ids.contains(id) { ids.append(id) }
        }
        return (ids, last)
    }

    /// An item's fields with its custom fields at the top level, as a record is written.
    static func flattened(_ item: [String: JSONValue]) -> [String: JSONValue] {
        var fields = item
        fields["custom_fields"] = nil
        for (key, value) in item["custom_fields"]?.objectValue ?? [:] { fields[key] = value }
        return fields
    }

    /// `x-ratelimit-limit`, `-remaining`, `-reset` (the burst window) and `x-daily-requests-left`.
    func limits(of response: HTTPResponse) -> RateLimitReport? {
        let number = { (name: String) in response.headers[name].flatMap { Int($0) } }
        let report = RateLimitReport(
            windowMax: number("x-ratelimit-limit"), windowRemaining: number("x-ratelimit-remaining"),
            windowSeconds: number("x-ratelimit-reset").map { Double(max(1, $0)) }, dailyRemaining: number("x-daily-requests-left"))
        return report == RateLimitReport() ? nil : report
    }

    /// Pipedrive errors are `{success: false, error, error_info, code?}`.
    func failure(_ response: HTTPResponse) -> ConnectorOutcome {
        let body = try? JSONCoding.decode(JSONValue.self, from: response.body)
        let message = body?["error"]?.stringValue ?? body?["message"]?.stringValue ?? "Pipedrive answered HTTP \(response.status)"
        let error = WriteError(message: message, code: body?["code"]?.scalarText ?? body?["errorCode"]?.scalarText, raw: response.text)
        if response.status == 401 { return .unauthorized(error, status: 401) }
        if response.status == 429 {
            return .rateLimited(error, status: 429, daily: message.lowercased().contains("daily") || body?["code"] == "daily_limit")
        }
        if response.status >= 500 { return .retryable(error, status: response.status, notSent: false) }
        return .rejected(error, status: response.status)
    }
}

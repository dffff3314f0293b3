import HTTPClient
import Shared

/// HubSpot CRM v3 objects: create `POST /crm/v3/objects/{type}`, update `PATCH …/{id}`, archive
/// `DELETE …/{id}`. Record fields are HubSpot properties.
struct HubSpotConnector: Connector {
    let client: HTTPClient
    let timeout: Double
    let hosts: ProviderHosts
    var profile: ProviderProfile { .hubspot }

    func write(_ write: ConnectorWrite, connection: Connection) async -> ConnectorResponse {
        let base = "\(connection.baseURL)/crm/v3/objects/\(write.object)"
        let headers = [("Authorization", "Bearer \(connection.accessToken)"), ("Content-Type", "application/json"),
                       ("Accept", "application/json")]
        var properties = write.fields
        properties["id"] = nil
        properties["Id"] = nil
        switch write.type {
        case .upsert:
            return await upsert(write, connection: connection) { match in
                await find(base, match, headers: headers)
            }
        case .create, .update:
            var body: [String: JSONValue] = ["properties": .object(properties)]
            if write.type == .create, let associations = write.associations { body["associations"] = associations }
            let request = HTTPRequest(
                method: write.type == .create ? "POST" : "PATCH",
                url: write.type == .create ? base : "\(base)/\(write.recordId ?? "")",
                headers: headers, body: jsonBody(body), timeout: timeout)
            return await call(client, request) { response in
                guard (200..<300).contains(response.status) else { return failure(response) }
                let object = try? JSONCoding.decode(JSONValue.self, from: response.body)
                guard let id = object?["id"]?.scalarText else {
                    return .rejected(WriteError(message: "HubSpot answered without an id", raw: response.text),
                                     status: response.status)
                }
                return .applied(recordId: id, data: object?["properties"]?.objectValue ?? properties, status: response.status)
            }
        case .delete:
            let id = write.recordId ?? ""
            let request = HTTPRequest(method: "DELETE", url: "\(base)/\(id)", headers: headers, timeout: timeout)
            return await call(client, request) { response in
                guard (200..<300).contains(response.status) else { return failure(response) }
                return .applied(recordId: id, data: [:], status: response.status)
            }
        }
    }

    /// `POST …/batch/create`, `…/batch/update`, `…/batch/upsert` (each input's `upsertOn` names the
    /// `idProperty` and its value) or `…/batch/archive` with up to 100 inputs. Unless `allOrNone`, each
    /// input carries its index as `objectWriteTraceId`, so HubSpot applies the valid ones and answers 207
    /// with an error per refused one; without it, one refused input refuses the whole batch.
    func writeBatch(_ writes: [ConnectorWrite], allOrNone: Bool, connection: Connection) async -> ConnectorResponse {
        let type = writes.first?.type ?? .create
        let action: String
        switch type {
        case .create: action = "create"
        case .update: action = "update"
        case .upsert: action = "upsert"
        case .delete: action = "archive"
        }
        let object = writes.first?.object ?? ""
        let inputs: [JSONValue] = writes.enumerated().map { index, write in
            var properties = write.fields
            properties["id"] = nil
            properties["Id"] = nil
            var input: [String: JSONValue] = type == .delete ? [:] : ["properties": .object(properties)]
            switch type {
            case .update, .delete: input["id"] = .string(write.recordId ?? "")
            case .upsert:
                input["idProperty"] = .string(write.upsertOn?.field ?? "hs_object_id")
                input["id"] = .string(write.upsertOn?.values.first ?? "")
            case .create:
                if let associations = write.associations { input["associations"] = associations }
            }
            if !allOrNone { input["objectWriteTraceId"] = .string(String(index)) }
            return .object(input)
        }
        let request = HTTPRequest(
            method: "POST", url: "\(connection.baseURL)/crm/v3/objects/\(object)/batch/\(action)",
            headers: [("Authorization", "Bearer \(connection.accessToken)"), ("Content-Type", "application/json"),
                      ("Accept", "application/json")],
            body: jsonBody(["inputs": JSONValue.array(inputs)]), timeout: timeout)
        return await batchCall(request, count: writes.count, provider: "HubSpot", failure: failure) { response in
            // An archive answers 204 when every input was archived.
            if response.status == 204 { return writes.map { .applied(recordId: $0.recordId ?? "", data: [:], status: 204) } }
            guard let answer = try? JSONCoding.decode(JSONValue.self, from: response.body) else { return nil }
            var items = [ConnectorOutcome?](repeating: nil, count: writes.count)
            for (position, result) in (answer["results"]?.arrayValue ?? []).enumerated() {
                let index = result["objectWriteTraceId"]?.scalarText.flatMap { Int($0) } ?? position
                guard index < items.count, let id = result["id"]?.scalarText else { continue }
                let status = result["new"] == .bool(true) ? 201 : (response.status == 207 ? 200 : response.status)
                items[index] = .applied(recordId: id, data: result["properties"]?.objectValue ?? writes[index].fields, status: status)
            }
            for error in answer["errors"]?.arrayValue ?? [] {
                let traces = (error["context"]?["objectWriteTraceId"]?.arrayValue ?? [])
                    + (error["errors"]?.arrayValue ?? []).flatMap { $0["context"]?["objectWriteTraceId"]?.arrayValue ?? [] }
                for trace in traces {
                    guard let index = trace.scalarText.flatMap({ Int($0) }), index < items.count else { continue }
                    items[index] = .rejected(WriteError(
                        message: error["message"]?.stringValue ?? "HubSpot refused the input", code: error["category"]?.stringValue,
                        raw: try? JSONCoding.encodeString(error)), status: 400)
                }
            }
            if type == .delete {
                // An archive with errors answers only the refused inputs; the others were archived.
                for index in items.indices where items[index] == nil {
                    items[index] = .applied(recordId: writes[index].recordId ?? "", data: [:], status: 204)
                }
            }
            return items.contains { $0 == nil } ? nil : items.compactMap { $0 }
        }
    }

    /// The ids of the records whose property holds one of the values, by the CRM search API.
    private func find(_ base: String, _ match: ConnectorUpsert, headers: [(String, String)]) async
        -> (ids: [String]?, response: ConnectorResponse)
    {
        let body: JSONValue = [
            "filterGroups": [["filters": [[
                "propertyName": .string(match.field), "operator": "IN",
                "values": .array(match.values.map { .string($0.lowercased()) }),
            ]]]],
            "properties": ["hs_object_id"], "limit": 10,
        ]
        let request = HTTPRequest(method: "POST", url: "\(base)/search", headers: headers, body: jsonBody(body), timeout: timeout)
        return await findIds(request, list: "results", idKey: "id", provider: "HubSpot", failure: failure)
    }

    /// `X-HubSpot-RateLimit-Max/-Remaining/-Interval-Milliseconds` (the ten-secondly window) and
    /// `-Daily/-Daily-Remaining`.
    func limits(of response: HTTPResponse) -> RateLimitReport? {
        let number = { (name: String) in response.headers["x-hubspot-ratelimit-\(name)"].flatMap { Int($0) } }
        let report = RateLimitReport(
            windowMax: number("max"), windowRemaining: number("remaining"),
            windowSeconds: number("interval-milliseconds").map { Double($0) / 1000 }, dailyMax: number("daily"),
            dailyRemaining: number("daily-remaining"))
        return report == RateLimitReport() ? nil : report
    }

    /// HubSpot errors are `{status:"error", message, correlationId, category, …}`.
    private func failure(_ response: HTTPResponse) -> ConnectorOutcome {
        let body = try? JSONCoding.decode(JSONValue.self, from: response.body)
        let message = body?["message"]?.stringValue ?? "HubSpot answered HTTP \(response.status)"
        // A duplicate on create names the record that has the value: "Contact already exists. Existing ID: 1001".
        let existing = response.status == 409
            ? message.range(of: "Existing ID: ").map { String(message[$0.upperBound...].prefix { $0.isNumber }) } : nil
        let error = WriteError(
            message: message, code: body?["category"]?.stringValue ?? body?["errorType"]?.stringValue, raw: response.text,
            existingRecordId: existing.flatMap { $0.isEmpty ? nil : $0 })
        if response.status == 401 { return .unauthorized(error, status: response.status) }
        if response.status == 429 {
            return .rateLimited(error, status: 429, daily: body?["policyName"]?.stringValue == "DAILY")
        }
        if response.status >= 500 { return .retryable(error, status: response.status, notSent: false) }
        return .rejected(error, status: response.status)
    }
}

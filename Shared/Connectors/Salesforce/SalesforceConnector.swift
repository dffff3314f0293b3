import Foundation
import HTTPClient
import Shared

/// Salesforce REST API v60.0, sObject rows: create `POST /sobjects/{SObject}/`, update
/// `PATCH /sobjects/{SObject}/{id}`, delete `DELETE /sobjects/{SObject}/{id}`.
struct SalesforceConnector: Connector {
    static let apiVersion = "v60.0"
    let client: HTTPClient
    let timeout: Double
    let hosts: ProviderHosts
    var profile: ProviderProfile { .salesforce }

    func write(_ write: ConnectorWrite, connection: Connection) async -> ConnectorResponse {
        let base = "\(connection.baseURL)/services/data/\(Self.apiVersion)/sobjects/\(write.object)"
        let headers = [("Authorization", "Bearer \(connection.accessToken)"), ("Content-Type", "application/json"),
                       ("Accept", "application/json")]
        var fields = write.fields
        fields["Id"] = nil
        fields["id"] = nil
        switch write.type {
        case .upsert:
            return await upsert(write, connection: connection) { match in
                await find(write.object, match, connection: connection, headers: headers)
            }
        case .create:
            let request = HTTPRequest(method: "POST", url: base + "/", headers: headers, body: jsonBody(fields), timeout: timeout)
            return await call(client, request) { response in
                guard response.status == 201 || response.status == 200 else { return failure(response) }
                let created = try? JSONCoding.decode(JSONValue.self, from: response.body)
                guard let id = created?["id"]?.stringValue else {
                    return .rejected(WriteError(message: "Salesforce answered without an id", raw: response.text),
                                     status: response.status)
                }
                return .applied(recordId: id, data: fields, status: response.status)
            }
        case .update, .delete:
            let id = write.recordId ?? ""
            let isUpdate = write.type == .update
            let request = HTTPRequest(
                method: isUpdate ? "PATCH" : "DELETE", url: "\(base)/\(id)", headers: headers,
                body: isUpdate ? jsonBody(fields) : nil, timeout: timeout)
            return await call(client, request) { response in
                guard (200..<300).contains(response.status) else { return failure(response) }
                return .applied(recordId: id, data: isUpdate ? fields : [:], status: response.status)
            }
        }
    }

    /// `POST` (create) or `PATCH` (update) `/composite/sobjects` with up to 200 records; Salesforce answers
    /// 200 with `{id, success, errors}` per record, in order.
    func writeBatch(_ writes: [ConnectorWrite], allOrNone: Bool, connection: Connection) async -> ConnectorResponse {
        let isUpdate = writes.first?.type == .update
        let records: [JSONValue] = writes.map { write in
            var fields = write.fields
            fields["Id"] = nil
            fields["attributes"] = ["type": .string(write.object)]
            if isUpdate { fields["id"] = .string(write.recordId ?? "") }
            return .object(fields)
        }
        let request = HTTPRequest(
            method: isUpdate ? "PATCH" : "POST", url: "\(connection.baseURL)/services/data/\(Self.apiVersion)/composite/sobjects",
            headers: [("Authorization", "Bearer \(connection.accessToken)"), ("Content-Type", "application/json"),
                      ("Accept", "application/json")],
            body: jsonBody(["allOrNone": JSONValue.bool(allOrNone), "records": .array(records)]), timeout: timeout)
        return await batchCall(request, count: writes.count, provider: "Salesforce", failure: failure) { response in
            guard case .array(let answers)? = try? JSONCoding.decode(JSONValue.self, from: response.body) else { return nil }
            return zip(answers, writes).map { answer, write in
                if answer["success"] == true, let id = answer["id"]?.stringValue ?? write.recordId {
                    var data = write.fields
                    data["Id"] = nil
                    return .applied(recordId: id, data: data, status: isUpdate ? 204 : 201)
                }
                let errors = answer["errors"]?.arrayValue ?? []
                let message = errors.compactMap { $0["message"]?.stringValue }.joined(separator: "; ")
                return .rejected(WriteError(
                    message: message.isEmpty ? "Salesforce did not save the record" : message,
                    code: errors.first?["statusCode"]?.stringValue, raw: (try? JSONCoding.encodeString(answer))), status: 400)
            }
        }
    }

    /// The ids of the records whose field holds one of the values, by a SOQL query.
    private func find(_ object: String, _ match: ConnectorUpsert, connection: Connection, headers: [(String, String)]) async
        -> (ids: [String]?, response: ConnectorResponse)
    {
        let quoted = match.values.map { "'" + $0.replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "'", with: "\\'") + "'" }
        let soql = "SELECT Id FROM \(object) WHERE \(match.field) IN (\(quoted.joined(separator: ", "))) LIMIT 10"
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let url = "\(connection.baseURL)/services/data/\(Self.apiVersion)/query?q="
            + (soql.addingPercentEncoding(withAllowedCharacters: allowed) ?? soql)
        let request = HTTPRequest(method: "GET", url: url, headers: headers, timeout: timeout)
        return await findIds(request, list: "records", idKey: "Id", provider: "Salesforce", failure: failure)
    }

    /// `Sforce-Limit-Info: api-usage=18/5000`: the rolling 24-hour allocation and what is used of it.
    /// Read byte by byte: it is on every answer, and Foundation's `range(of:)` cost more than the rest of
    /// reading the answer.
    func limits(of response: HTTPResponse) -> RateLimitReport? {
        response.headers["sforce-limit-info"].flatMap(Self.apiUsage)
    }

    /// `api-usage=used/max` in a `Sforce-Limit-Info` value; nil where it is absent or not two numbers.
    static func apiUsage(_ info: String) -> RateLimitReport? {
        let name = Array("api-usage=".utf8)
        let bytes = Array(info.utf8)
        guard bytes.count > name.count,
              // The name itself, not the end of `per-app-api-usage=` (which Salesforce sends beside it).
              let start = (0...(bytes.count - name.count)).first(where: {
                  ($0 == 0 || bytes[$0 - 1] == UInt8(ascii: " ") || bytes[$0 - 1] == UInt8(ascii: ";") || bytes[$0 - 1] == UInt8(ascii: ","))
                      && bytes[$0..<$0 + name.count].elementsEqual(name)
              })
        else { return nil }
        // `used/max`, up to a separator.
        var numbers: [Int] = [0], digits = 0
        for byte in bytes[(start + name.count)...] {
            if byte == UInt8(ascii: ",") || byte == UInt8(ascii: ";") || byte == UInt8(ascii: " ") { break }
            if byte == UInt8(ascii: "/") {
                guard digits > 0 else { return nil }
                numbers.append(0)
                digits = 0
                continue
            }
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte), digits < 18 else { return nil }
            numbers[numbers.count - 1] = numbers[numbers.count - 1] * 10 + Int(byte - UInt8(ascii: "0"))
            digits += 1
        }
        guard numbers.count == 2, digits > 0 else { return nil }
        return RateLimitReport(dailyMax: numbers[1], dailyRemaining: Swift.max(0, numbers[1] - numbers[0]))
    }

    /// Salesforce errors are an array of `{message, errorCode, fields}`.
    func failure(_ response: HTTPResponse) -> ConnectorOutcome {
        let errors = (try? JSONCoding.decode([SalesforceError].self, from: response.body)) ?? []
        let message = errors.isEmpty
            ? "Salesforce answered HTTP \(response.status)"
            : errors.map(\.message).joined(separator: "; ")
        let code = errors.first?.errorCode
        let error = WriteError(message: message, code: code, raw: response.text)
        if response.status == 401 { return .unauthorized(error, status: response.status) }
        if code == "REQUEST_LIMIT_EXCEEDED" { return .rateLimited(error, status: response.status, daily: true) }
        let transient = ["UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"]
        if response.status >= 500 || response.status == 429 || transient.contains(code ?? "") {
            return .retryable(error, status: response.status, notSent: false)
        }
        return .rejected(error, status: response.status)
    }
}

struct SalesforceError: Decodable {
    var message: String
    var errorCode: String
}

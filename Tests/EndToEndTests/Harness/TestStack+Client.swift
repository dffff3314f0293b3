import Foundation
import HTTPClient
import Postgres
import Shared
import Testing

/// What a user of the stack does: HTTP calls to the api and the providers, a Kafka client that is not
/// ours (kcat), and SQL against the destination database.
extension TestStack {
    struct Answer {
        let status: Int
        let body: JSONValue
        let headers: [String: String]
    }

    func call(_ method: String, _ url: String, body: String? = nil, headers: [(String, String)] = []) async throws -> Answer {
        let response = try await http.execute(
            HTTPRequest(method: method, url: url, headers: headers, body: body.map { Array($0.utf8) }, timeout: 60))
        let json = response.body.isEmpty ? JSONValue.null : ((try? JSONCoding.decode(JSONValue.self, from: response.body)) ?? .string(response.text))
        return Answer(status: response.status, body: json, headers: response.headers)
    }

    /// POST to the Write API with the test project's key.
    func write(_ integration: String, _ object: String, _ body: JSONValue, headers: [(String, String)] = [],
               key: String? = TestStack.apiKey, project: String = TestStack.project) async throws -> Answer
    {
        try await write(integration, object, raw: try JSONCoding.encodeString(body), headers: headers, key: key, project: project)
    }

    func write(_ integration: String, _ object: String, raw: String, headers: [(String, String)] = [],
               key: String? = TestStack.apiKey, project: String = TestStack.project) async throws -> Answer
    {
        var all = headers + [("Content-Type", "application/json")]
        if let key { all.append(("X-Api-Key", key)) }
        return try await call("POST", "\(apiURL)/v1/projects/\(project)/integrations/\(integration)/objects/\(object)",
                              body: raw, headers: all)
    }

    /// A call to the api's control routes with the test project's key: `path` under `/v1/projects/{project}`.
    func control(_ method: String, _ path: String, _ body: JSONValue? = nil) async throws -> Answer {
        try await call(method, "\(apiURL)/v1/projects/\(TestStack.project)\(path)", body: try body.map { try JSONCoding.encodeString($0) },
                       headers: [("X-Api-Key", TestStack.apiKey), ("Content-Type", "application/json")])
    }

    /// Connects a customer's account at the sandbox (its own org when the token names one) and installs
    /// an integration for it with a config; fails the test when the api refuses.
    @discardableResult
    func install(_ integration: String, provider: String, groupRef: String, token: String,
                 config: JSONValue = .object([:])) async throws -> JSONValue
    {
        let connection = try await control("POST", "/connections:generate", [
            "provider": .string(provider), "groupRef": .string(groupRef), "consumerRef": .string(groupRef),
            "providerMetadata": ["baseUrl": ["value": .string(sandboxURL), "source": "input"]],
            "oauth2AuthorizationCode": ["accessToken": ["token": .string(token)]],
        ])
        try #require(connection.status == 201, "\(connection.body)")
        let installation = try await control("POST", "/integrations/\(integration)/installations", [
            "groupRef": .string(groupRef), "connectionId": connection.body["id"] ?? .null, "config": ["content": config],
        ])
        try #require(installation.status == 201, "\(installation.body)")
        return installation.body
    }

    func operation(_ id: String) async throws -> Answer {
        try await call("GET", "\(apiURL)/v1/projects/\(TestStack.project)/operations/\(id)", headers: [("X-Api-Key", TestStack.apiKey)])
    }

    func operationLogs(_ id: String) async throws -> [JSONValue] {
        let answer = try await call("GET", "\(apiURL)/v1/projects/\(TestStack.project)/operations/\(id)/logs",
                                    headers: [("X-Api-Key", TestStack.apiKey)])
        guard case .array(let logs) = answer.body else { return [] }
        return logs
    }

    /// Polls an operation until its status is final (success or failure).
    func finalOperation(_ id: String, timeout: Duration = .seconds(60)) async throws -> JSONValue {
        let deadline = ContinuousClock.now + timeout
        var last: Answer?
        while ContinuousClock.now < deadline {
            let answer = try await operation(id)
            if answer.status == 200, let status = answer.body["status"]?.stringValue, status != "in_progress" {
                return answer.body
            }
            last = answer
            try await Task.sleep(for: .milliseconds(100))
        }
        throw HarnessError("operation \(id) did not finish within \(timeout); last seen: \(last.map { "\($0.status) \($0.body)" } ?? "-")")
    }

    /// A record as the simulated provider holds it, read through the provider's own API.
    func salesforceRecord(_ object: String, _ id: String) async throws -> Answer {
        try await call("GET", "\(sandboxURL)/services/data/v60.0/sobjects/\(object)/\(id)",
                       headers: [("Authorization", "Bearer sandbox-salesforce-token")])
    }

    func hubspotObject(_ type: String, _ id: String) async throws -> Answer {
        try await call("GET", "\(sandboxURL)/crm/v3/objects/\(type)/\(id)", headers: [("Authorization", "Bearer sandbox-hubspot-token")])
    }

    /// Every write call the simulated providers received, in order.
    func providerCalls() async throws -> [JSONValue] {
        guard case .array(let calls) = try await call("GET", "\(sandboxURL)/_sandbox/requests").body else { return [] }
        return calls
    }

    func setProviderLatency(milliseconds: Int) async throws {
        _ = try await call("PUT", "\(sandboxURL)/_sandbox/latency", body: #"{"latencyMilliseconds": \#(milliseconds)}"#)
    }

    /// Every message on a topic from the beginning, read with kcat.
    func kcat(_ topic: String) throws -> [JSONValue] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/kcat")
        process.arguments = ["-b", kafkaBrokers, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-D", "\n"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
            try? JSONCoding.decode(JSONValue.self, from: String($0))
        }
    }

    /// The destination database's row for a record.
    func destinationRow(provider: String, object: String, recordId: String) throws -> PostgresRow? {
        let connection = try PostgresConnection.connect(destinationDatabase)
        return try connection.query(
            """
            SELECT fields::text AS fields, deleted, version, operation_id FROM records
            WHERE provider = $1 AND object_name = $2 AND record_id = $3
            """, [provider, object, recordId]
        ).first
    }

    /// A customer token as a backend signs it, here by Python's own hmac module (a signer independent of
    /// the api's): `iss` the signing key, `id` the groupRef; `algorithm` HS256, HS384 or HS512.
    static func customerToken(_ customer: String, key: String, secret: String, algorithm: String = "HS256",
                              expires: Date? = Date().addingTimeInterval(3600)) async throws -> String
    {
        var claims: [String: JSONValue] = ["iss": .string(key), "id": .string(customer), "name": .string("Customer \(customer)")]
        if let expires { claims["exp"] = .number(expires.timeIntervalSince1970.rounded()) }
        let script = """
            import base64, hashlib, hmac, json, sys
            alg, secret, claims = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
            part = lambda data: base64.urlsafe_b64encode(data).rstrip(b"=").decode()
            signing = part(json.dumps({"alg": alg, "typ": "JWT"}).encode()) + "." + part(claims.encode())
            digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
            print(signing + "." + part(hmac.new(secret, signing.encode(), digest).digest()))
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script, algorithm, secret, try JSONCoding.encodeString(JSONValue.object(claims))]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let token = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw HarnessError("signing a customer token failed") }
        return token.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func controlQuery(_ sql: String, _ parameters: [String?] = []) throws -> PostgresRows {
        try PostgresConnection.connect(controlDatabase).query(sql, parameters)
    }
}

extension JSONValue {
    /// Follows a dotted path: `result.recordId`, `errors.0.message`.
    func at(_ path: String) -> JSONValue? {
        var value: JSONValue? = self
        for part in path.split(separator: ".") {
            if case .array(let items)? = value, let index = Int(part) {
                value = index < items.count ? items[index] : nil
            } else {
                value = value?[String(part)]
            }
        }
        return value
    }
}

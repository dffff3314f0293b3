import ArgumentParser
import Foundation
import HTTPClient
import Manifest
import Shared

/// `writeback`: the backend team's tool. Checks and deploys `amp.yaml` manifests, connects customers'
/// provider accounts, installs integrations, and reads operations and their logs, through the api.
@main
struct Writeback: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "writeback",
        abstract: "Manage Writeback integrations, installations and operations.",
        subcommands: [Validate.self, Deploy.self, ProviderApp.self, Connect.self, Install.self, Installations.self,
                      Operations.self, Logs.self, TokenKey.self, CustomerToken.self, Destinations.self, Deliveries.self])
}

/// Where the api is and as which project: flags, or `WRITEBACK_API_URL`, `WRITEBACK_API_KEY`,
/// `WRITEBACK_PROJECT`.
struct APIOptions: ParsableArguments {
    @Option(help: "The api's address (env WRITEBACK_API_URL; default http://127.0.0.1:8080).")
    var apiURL: String?
    @Option(help: "The project's API key (env WRITEBACK_API_KEY).")
    var apiKey: String?
    @Option(help: "The project's id or name (env WRITEBACK_PROJECT).")
    var project: String?

    func client() throws -> APIClient {
        let environment = ProcessInfo.processInfo.environment
        guard let key = apiKey ?? environment["WRITEBACK_API_KEY"], !key.isEmpty else {
            throw ValidationError("an API key is needed: --api-key or WRITEBACK_API_KEY")
        }
        guard let project = project ?? environment["WRITEBACK_PROJECT"], !project.isEmpty else {
            throw ValidationError("a project is needed: --project or WRITEBACK_PROJECT")
        }
        let url = apiURL ?? environment["WRITEBACK_API_URL"] ?? "http://127.0.0.1:8080"
        return APIClient(base: url.hasSuffix("/") ? String(url.dropLast()) : url, key: key, project: project)
    }
}

struct APIClient {
    let base: String
    let key: String
    let project: String
    let http = HTTPClient(configuration: .init(concurrency: 2), name: "cli-http")

    var projectPath: String { "/v1/projects/\(escaped(project))" }

    /// Sends a JSON request; returns the answer's JSON, or fails with the api's problem.
    func call(_ method: String, _ path: String, _ body: JSONValue? = nil) async throws -> JSONValue {
        var headers = [("X-Api-Key", key), ("Accept", "application/json")]
        if body != nil { headers.append(("Content-Type", "application/json")) }
        let response: HTTPResponse
        do {
            response = try await http.execute(HTTPRequest(
                method: method, url: base + path, headers: headers, body: try body.map { try JSONCoding.encode($0) }, timeout: 60))
        } catch {
            throw CLIError("the api at \(base) could not be reached: \(error)")
        }
        let answer = (try? JSONCoding.decode(JSONValue.self, from: response.body)) ?? .string(response.text)
        guard (200..<300).contains(response.status) else { throw CLIError(problem: answer, status: response.status) }
        return answer
    }

    /// The installation of an integration for a groupRef.
    func installation(_ integration: String, groupRef: String) async throws -> JSONValue {
        let list = try await call("GET", "\(projectPath)/integrations/\(escaped(integration))/installations?groupRef=\(escaped(groupRef))")
        guard let first = list.arrayValue?.first else {
            throw CLIError("group \(groupRef) has no installation of \(integration)")
        }
        return first
    }

    func shutdown() { http.shutdown() }
}

func escaped(_ text: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
}

struct CLIError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) { self.description = description }

    /// The api's problem+json, with each issue on a line of its own.
    init(problem: JSONValue, status: Int) {
        var lines = ["HTTP \(status): \(problem["detail"]?.stringValue ?? problem.stringValue ?? "the api refused the request")"]
        for issue in problem["issues"]?.arrayValue ?? [] {
            let place = issue["line"]?.scalarText.map { " (line \($0), column \(issue["column"]?.scalarText ?? "1"))" } ?? ""
            lines.append("  \(issue["name"]?.stringValue ?? "")\(place): \(issue["detail"]?.stringValue ?? "")")
        }
        description = lines.joined(separator: "\n")
    }
}

func printJSON(_ value: JSONValue) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    if let data = try? encoder.encode(value) { print(String(decoding: data, as: UTF8.self)) }
}

/// Reads a manifest and checks it; prints every problem as `file:line:column: path: message`.
func readManifest(_ file: String) throws -> (String, Manifest) {
    guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { throw CLIError("\(file) could not be read") }
    switch Manifest.parse(text) {
    case .success(let manifest): return (text, manifest)
    case .failure(let errors):
        for issue in errors.issues { print("\(file):\(issue.description)") }
        throw ExitCode(1)
    }
}

extension Writeback {
    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check an amp.yaml without sending it anywhere.")
        @Argument(help: "The manifest file.") var file = "amp.yaml"

        func run() async throws {
            let (_, manifest) = try readManifest(file)
            for integration in manifest.integrations {
                let writes = integration.writeObjects.map(\.objectName).joined(separator: ", ")
                print("\(integration.name) (\(integration.provider)): writes \(writes.isEmpty ? "nothing" : writes)"
                    + (integration.proxy?.enabled == true ? "; proxy enabled" : ""))
            }
            print("\(file): valid, \(manifest.integrations.count) integration\(manifest.integrations.count == 1 ? "" : "s")")
        }
    }

    struct Deploy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check an amp.yaml and deploy its integrations (a new revision each).")
        @Argument(help: "The manifest file.") var file = "amp.yaml"
        @OptionGroup var api: APIOptions

        func run() async throws {
            let (text, _) = try readManifest(file)
            let client = try api.client()
            defer { client.shutdown() }
            let deployed = try await client.call("PUT", "\(client.projectPath)/integrations:batch", ["sourceYaml": .string(text)])
            for integration in deployed.arrayValue ?? [] {
                print("deployed \(integration["name"]?.stringValue ?? "") (\(integration["provider"]?.stringValue ?? "")) "
                    + "id \(integration["id"]?.stringValue ?? "") revision \(integration["latestRevision"]?["id"]?.stringValue ?? "")")
            }
        }
    }

    struct ProviderApp: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "provider-app", abstract: "Store the project's OAuth client for a provider (the secret is stored encrypted).")
        @Option var provider: String
        @Option var clientId: String
        @Option(help: "The client secret (or env WRITEBACK_CLIENT_SECRET).") var clientSecret: String?
        @Option(parsing: .upToNextOption) var scopes: [String] = []
        @OptionGroup var api: APIOptions

        func run() async throws {
            guard let secret = clientSecret ?? ProcessInfo.processInfo.environment["WRITEBACK_CLIENT_SECRET"] else {
                throw ValidationError("a client secret is needed: --client-secret or WRITEBACK_CLIENT_SECRET")
            }
            let client = try api.client()
            defer { client.shutdown() }
            let app = try await client.call("POST", "\(client.projectPath)/provider-apps", [
                "provider": .string(provider), "clientId": .string(clientId), "clientSecret": .string(secret),
                "scopes": .array(scopes.map(JSONValue.string)),
            ])
            print("provider app \(app["id"]?.stringValue ?? "") for \(provider), client \(clientId)")
        }
    }

    struct Connect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Connect a customer's provider account with tokens you hold (stored encrypted, never shown again).")
        @Option var provider: String
        @Option var groupRef: String
        @Option(help: "The user whose credentials these are (default: the groupRef).") var consumerRef: String?
        @Option(help: "The provider API's address (a Salesforce instance URL, a sandbox).") var baseURL: String?
        @Option(help: "The Salesforce My Domain name.") var workspace: String?
        @Option(help: "The OAuth access token (or env WRITEBACK_ACCESS_TOKEN).") var accessToken: String?
        @Option(help: "The OAuth refresh token (or env WRITEBACK_REFRESH_TOKEN).") var refreshToken: String?
        @Option(help: "An API key such as a HubSpot private-app token (or env WRITEBACK_PROVIDER_API_KEY).") var providerAPIKey: String?
        @OptionGroup var api: APIOptions

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            var body: [String: JSONValue] = [
                "provider": .string(provider), "groupRef": .string(groupRef), "consumerRef": .string(consumerRef ?? groupRef),
            ]
            if let workspace { body["providerWorkspaceRef"] = .string(workspace) }
            if let baseURL { body["providerMetadata"] = ["baseUrl": ["value": .string(baseURL), "source": "input"]] }
            if let key = providerAPIKey ?? environment["WRITEBACK_PROVIDER_API_KEY"] {
                body["apiKey"] = .string(key)
            } else if let access = accessToken ?? environment["WRITEBACK_ACCESS_TOKEN"] {
                var tokens: [String: JSONValue] = ["accessToken": ["token": .string(access)]]
                if let refresh = refreshToken ?? environment["WRITEBACK_REFRESH_TOKEN"] { tokens["refreshToken"] = ["token": .string(refresh)] }
                body["oauth2AuthorizationCode"] = .object(tokens)
            } else {
                throw ValidationError("credentials are needed: --access-token [--refresh-token] or --provider-api-key")
            }
            let client = try api.client()
            defer { client.shutdown() }
            let connection = try await client.call("POST", "\(client.projectPath)/connections:generate", .object(body))
            print("connection \(connection["id"]?.stringValue ?? "") for \(groupRef) on \(provider)")
        }
    }

    struct Install: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Install an integration for a customer on its latest connection, with an optional config (JSON file).")
        @Option var integration: String
        @Option var groupRef: String
        @Option(help: "A JSON file with the config content: field mappings and field settings.") var config: String?
        @Option var connectionId: String?
        @OptionGroup var api: APIOptions

        func run() async throws {
            var content: JSONValue = .object([:])
            if let config {
                guard let data = FileManager.default.contents(atPath: config),
                      let parsed = try? JSONCoding.decode(JSONValue.self, from: Array(data))
                else { throw CLIError("\(config) is not a readable JSON file") }
                content = parsed
            }
            var body: [String: JSONValue] = ["groupRef": .string(groupRef), "config": ["content": content, "createdBy": "api:writeback-cli"]]
            if let connectionId { body["connectionId"] = .string(connectionId) }
            let client = try api.client()
            defer { client.shutdown() }
            let installation = try await client.call(
                "POST", "\(client.projectPath)/integrations/\(escaped(integration))/installations", .object(body))
            print("installation \(installation["id"]?.stringValue ?? "") of \(integration) for \(groupRef)")
        }
    }

    struct Installations: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List an integration's installations.")
        @Option var integration: String
        @OptionGroup var api: APIOptions

        func run() async throws {
            let client = try api.client()
            defer { client.shutdown() }
            let list = try await client.call("GET", "\(client.projectPath)/integrations/\(escaped(integration))/installations")
            for installation in list.arrayValue ?? [] {
                print("\(installation["id"]?.stringValue ?? "")  \(installation["group"]?["groupRef"]?.stringValue ?? "")  "
                    + "\(installation["healthStatus"]?.stringValue ?? "")  connection \(installation["connection"]?["id"]?.stringValue ?? "")")
            }
        }
    }

    struct Operations: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a customer's operations, newest first.")
        @Option var integration: String
        @Option var groupRef: String
        @Option var limit = 20
        @Flag(help: "Print the operations as JSON.") var json = false
        @OptionGroup var api: APIOptions

        func run() async throws {
            let client = try api.client()
            defer { client.shutdown() }
            let installation = try await client.installation(integration, groupRef: groupRef)
            let page = try await client.call("GET", "\(client.projectPath)/integrations/\(escaped(integration))/installations/"
                + "\(installation["id"]?.stringValue ?? "")/operations?pageSize=\(limit)")
            let operations = page["results"]?.arrayValue ?? []
            if json { return printJSON(.array(operations)) }
            for operation in operations { print(Self.line(operation)) }
        }

        static func line(_ operation: JSONValue) -> String {
            let metadata = operation["metadata"]
            return "\(operation["createTime"]?.stringValue ?? "")  \(operation["id"]?.stringValue ?? "")  "
                + "\(operation["status"]?.stringValue ?? "")  \(operation["result"]?.stringValue ?? "")"
                + (metadata?["errors"]?.arrayValue?.first?["message"]?.stringValue.map { "  error: \($0)" } ?? "")
        }
    }

    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the logs of a customer's latest operations; --follow keeps printing new ones.")
        @Option var integration: String
        @Option var groupRef: String
        @Option var limit = 10
        @Flag var follow = false
        @OptionGroup var api: APIOptions

        func run() async throws {
            let client = try api.client()
            defer { client.shutdown() }
            let installation = try await client.installation(integration, groupRef: groupRef)
            let path = "\(client.projectPath)/integrations/\(escaped(integration))/installations/\(installation["id"]?.stringValue ?? "")"
            var printed: [String: Int] = [:]
            repeat {
                let page = try await client.call("GET", "\(path)/operations?pageSize=\(limit)")
                for operation in (page["results"]?.arrayValue ?? []).reversed() {
                    guard let id = operation["id"]?.stringValue else { continue }
                    let logs = try await client.call("GET", "\(client.projectPath)/operations/\(id)/logs").arrayValue ?? []
                    for entry in logs.dropFirst(printed[id] ?? 0) {
                        print("\(entry["timestamp"]?.stringValue ?? "")  \(id)  \(entry["severity"]?.stringValue ?? "")  "
                            + "\(entry["message"]?["msg"]?.stringValue ?? entry["message"].map { String(decoding: (try? JSONCoding.encode($0)) ?? [], as: UTF8.self) } ?? "")")
                    }
                    printed[id] = logs.count
                }
                if follow { try await Task.sleep(for: .seconds(1)) }
            } while follow
        }
    }
}

extension Writeback {
    struct Destinations: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the project's webhook destinations, or enable one that was disabled (--enable NAME).")
        @Option(help: "Enable this destination (its id or name): its waiting deliveries are sent at once.") var enable: String?
        @Flag(help: "Print them as JSON.") var json = false
        @OptionGroup var api: APIOptions

        func run() async throws {
            let client = try api.client()
            defer { client.shutdown() }
            if let enable {
                let destination = try await client.call("PATCH", "\(client.projectPath)/destinations/\(escaped(enable))",
                                                        ["updateMask": ["disabled"], "destination": ["disabled": false]])
                return print("enabled \(destination["name"]?.stringValue ?? enable)")
            }
            let list = try await client.call("GET", "\(client.projectPath)/destinations").arrayValue ?? []
            if json { return printJSON(.array(list)) }
            for destination in list {
                let state = destination["disabled"] == true
                    ? "disabled since \(destination["disableTime"]?.stringValue ?? ""): \(destination["disabledReason"]?.stringValue ?? "")"
                    : "enabled"
                print("\(destination["id"]?.stringValue ?? "")  \(destination["name"]?.stringValue ?? "")  "
                    + "\(destination["metadata"]?["url"]?.stringValue ?? "")  \(state)")
            }
        }
    }

    struct Deliveries: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the deliveries of a destination or of an event, each attempt with its status, duration and error; "
                + "--resend sends a delivery again.",
            discussion: "writeback deliveries --destination my-webhook [--state failed]\n"
                + "writeback deliveries --event <eventId>\nwriteback deliveries --resend <deliveryId>")
        @Option(help: "A destination's id or name.") var destination: String?
        @Option(help: "An event's id (a write.async.done event's id is its operation's).") var event: String?
        @Option(help: "pending, delivered or failed (with --destination).") var state: String?
        @Option(help: "Send this delivery again.") var resend: String?
        @Option var limit = 20
        @Flag(help: "Print them as JSON.") var json = false
        @OptionGroup var api: APIOptions

        func validate() throws {
            guard [destination, event, resend].compactMap({ $0 }).count == 1 else {
                throw ValidationError("name one of --destination, --event or --resend")
            }
        }

        func run() async throws {
            let client = try api.client()
            defer { client.shutdown() }
            let list: [JSONValue]
            if let resend {
                list = [try await client.call("POST", "\(client.projectPath)/notification-deliveries/\(escaped(resend))/resend")]
            } else if let event {
                list = try await client.call("GET", "\(client.projectPath)/notification-events/\(escaped(event))/deliveries")["deliveries"]?
                    .arrayValue ?? []
            } else {
                let filter = state.map { "&state=\(escaped($0))" } ?? ""
                list = try await client.call(
                    "GET", "\(client.projectPath)/destinations/\(escaped(destination ?? ""))/deliveries?pageSize=\(limit)\(filter)"
                )["deliveries"]?.arrayValue ?? []
            }
            if json { return printJSON(.array(list)) }
            for delivery in list {
                let next = delivery["nextAttemptTime"]?.stringValue.map { "  next attempt \($0)" } ?? ""
                print("\(delivery["id"]?.stringValue ?? "")  \(delivery["eventType"]?.stringValue ?? "")  event \(delivery["eventId"]?.stringValue ?? "")  "
                    + "\(delivery["state"]?.stringValue ?? "")\(next)")
                for attempt in delivery["attempts"]?.arrayValue ?? [] {
                    let status = attempt["status"]?.scalarText.map { "HTTP \($0)" } ?? "no answer"
                    let error = attempt["error"]?.stringValue.map { "  \($0)" } ?? ""
                    print("    #\(attempt["attempt"]?.scalarText ?? "")  \(attempt["startTime"]?.stringValue ?? "")  \(status)  "
                        + "\(attempt["durationMs"]?.scalarText ?? "") ms\(error)")
                }
            }
        }
    }
}

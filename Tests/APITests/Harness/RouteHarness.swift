import Foundation
import HTTPClient
import HTTPTypes
import Hummingbird
import Kafka
import Logging
import Postgres
import ProviderAccess
import Schema
import Secrets
import Shared
import Testing

@testable import API

/// The api's routes served in this process (`InProcessRoutes`): on a control database of
/// its own in the test PostgreSQL server (scripts/test starts it) and a librdkafka mock cluster hosted
/// here. Seeded through the routes themselves as a backend team would: the example manifest, a
/// connection and an installation per provider for `groupRef`, and a customer-token key.
final class RouteHarness: Sendable {
    static let apiKey = "route-test-key"
    static let project = "routes"
    static let groupRef = "customer-1"

    let database: PostgresPool
    let cluster: KafkaMockCluster
    let producer: KafkaProducer
    let client: HTTPClient
    let routes: InProcessRoutes
    /// Every route the api serves: its method and path pattern (`:name` for a parameter).
    let routeList: [(method: String, path: String)]
    /// Every write request published while the harness runs.
    let published: KafkaTailer
    private let tailing: Task<Void, Never>
    /// A customer token of `groupRef`, signed by the seeded key.
    let customerToken: String
    /// A console session of the project, as its cookie (`writeback_console=…`).
    let consoleCookie: String

    /// One harness for every in-process route test of the run.
    static let shared = Task<RouteHarness, any Error> { try await RouteHarness() }

    private init() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let postgres = environment["WRITEBACK_TEST_POSTGRES"] else {
            throw RouteHarnessError("run the tests with scripts/test, which starts PostgreSQL and sets WRITEBACK_TEST_POSTGRES")
        }
        let name = "routes_\(UInt32.random(in: 0...UInt32.max))"
        try PostgresConnection.connect("\(postgres) dbname=postgres").exec("CREATE DATABASE \(name)")
        let url = "\(postgres) dbname=\(name)"
        database = try await PostgresPool.migrated(url: url, size: 4, name: "control", migrations: ControlSchema.migrations)
        cluster = try KafkaMockCluster(topics: Topics.all.map { ($0, 3) })
        let kafka = KafkaConfiguration(brokers: cluster.bootstrapServers)
        producer = try KafkaProducer(configuration: kafka)
        published = try KafkaTailer(configuration: kafka, topics: [Topics.writeRequests])
        client = HTTPClient(configuration: .init(concurrency: 4), name: "route-tests")
        let secrets = SecretBox(current: try .init(base64: Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()))
        var configuration = APIConfiguration(kafka: kafka, controlDatabaseURL: url, secrets: secrets)
        configuration.controlCacheSeconds = 0
        configuration.syncTimeout = 1
        configuration.maxBodyBytes = 64 << 10
        configuration.providerTimeout = 2
        let logger = Logger(label: "route-tests")
        let router = API.router(
            configuration: configuration, database: database,
            installations: InstallationStore(database: database, box: secrets, cacheLifetime: .zero), producer: producer,
            completions: Completions(instanceId: "route-tests"), client: client, logger: logger)
        let tailer = published
        tailing = Task { try? await tailer.run() }

        let projectId = try await database.query("INSERT INTO projects (name) VALUES ($1) RETURNING id::text AS id", [Self.project])
            .first!.string("id")
        try await database.query(
            "INSERT INTO api_keys (key_hash, project_id, label) VALUES (encode(sha256(convert_to($1, 'UTF8')), 'hex'), $2::uuid, 'tests')",
            [Self.apiKey, projectId])
        routes = InProcessRoutes(responder: router.buildResponder(), logger: logger)
        routeList = router.routes.map { ($0.method.rawValue, "\($0.path)") }
        customerToken = try await Self.seed(routes)
        consoleCookie = String(try ConsoleSession(key: Self.apiKey).cookie(box: secrets, secure: false).split(separator: ";")[0])
    }

    deinit {
        tailing.cancel()
        client.shutdown()
        database.shutdown()
    }

    /// Deploys the example manifest, connects and installs every provider for `groupRef`, and makes a
    /// customer-token key; answers a token of `groupRef` signed by it.
    private static func seed(_ routes: InProcessRoutes) async throws -> String {
        let manifest = try String(contentsOfFile: repositoryFile("examples/amp.yaml"), encoding: .utf8)
        let project = "/v1/projects/\(Self.project)"
        func call(_ method: HTTPRequest.Method, _ path: String, _ body: JSONValue) async throws -> JSONValue {
            let answer = try await routes.send(method, project + path, headers: [APIHeaders.apiKey: Self.apiKey],
                                               body: ByteBuffer(bytes: try JSONCoding.encode(body)))
            guard answer.head.status.code < 300 else {
                throw RouteHarnessError("seeding \(path) answered \(answer.head.status.code): \(String(buffer: answer.body))")
            }
            return try JSONCoding.decode(JSONValue.self, from: Array(answer.body.readableBytesView))
        }
        _ = try await call(.put, "/integrations:batch", ["sourceYaml": .string(manifest)])
        for provider in Provider.allCases {
            _ = try await call(.post, "/connections:generate", [
                "provider": .string(provider.rawValue), "groupRef": .string(groupRef), "consumerRef": .string(groupRef),
                "providerMetadata": ["baseUrl": ["value": "http://127.0.0.1:9", "source": "input"]],
                "oauth2AuthorizationCode": ["accessToken": ["token": "access"], "refreshToken": ["token": "refresh"]],
            ])
            _ = try await call(.post, "/integrations/write-to-\(provider.rawValue)/installations", [
                "groupRef": .string(groupRef), "config": ["content": [:], "createdBy": "api:tests"],
            ])
        }
        let key = try await call(.post, "/customer-token-keys", ["label": "tests"])
        let claims: JSONValue = [
            "iss": key["key"] ?? "", "id": .string(groupRef), "exp": .number(Date().timeIntervalSince1970.rounded() + 3600),
        ]
        return HMACToken.sign(payload: try JSONCoding.encode(claims), secret: Array((key["secret"]?.stringValue ?? "").utf8))
    }

    /// Sends one request to the routes in this process.
    func send(_ method: HTTPRequest.Method, _ path: String, headers: HTTPFields = [:], body: String? = nil) async throws -> Answer {
        let response = try await routes.send(method, path, headers: headers, body: body.map { ByteBuffer(string: $0) })
        return Answer(status: Int(response.head.status.code), contentType: response.head.headerFields[.contentType] ?? "",
                      json: try? JSONCoding.decode(JSONValue.self, from: Array(response.body.readableBytesView)),
                      location: response.head.headerFields[.location])
    }

    struct Answer: Sendable {
        var status: Int
        var contentType: String
        var json: JSONValue?
        var location: String?
    }
}

struct RouteHarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A file of the repository, found from this source file's place in it.
func repositoryFile(_ path: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(path).path
}

import Foundation
import HTTPTypes
import Connectors
import HTTPClient
import Hummingbird
import Kafka
import Logging
import Metrics
import Postgres
import ProviderAccess
import Shared

/// What the routes share.
struct Handlers: Sendable {
    let configuration: APIConfiguration
    let control: ControlData
    let database: PostgresPool
    let producer: KafkaProducer
    let completions: Completions
    let installations: InstallationStore
    let tokens: TokenRefresher
    let connectors: Connectors
    let client: HTTPClient
    /// Field metadata read from providers, per installation and object.
    let metadata: ExpiringCache<[String], JSONValue>
    let customerTokens: CustomerTokens
    let logger: Logger

    static let apiKeyHeader = HTTPField.Name("X-Api-Key")!
    static let idempotencyKeyHeader = HTTPField.Name("Idempotency-Key")!

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("health") { _, _ in jsonResponse(200, Array(#"{"status":"ok"}"#.utf8)) }
        let projects = router.group("v1/projects/:project")
        projects.post("integrations/:integration/objects/:object") { request, context in
            await self.answer { try await self.write(request, context) }
        }
        projects.put("integrations/:integration/objects/:object") { request, context in
            await self.answer { try await self.bulkWrite(request, context) }
        }
        projects.get("operations/:operation/failed-records") { request, context in
            await self.answer { try await self.failedRecords(request, context) }
        }
        projects.get("operations/:operation") { request, context in
            await self.answer { try await self.operation(request, context) }
        }
        projects.get("operations/:operation/logs") { request, context in
            await self.answer { try await self.operationLogs(request, context) }
        }
        addControlRoutes(to: router, projects: projects)
        addUnifiedRoutes(to: router)
        addActionRoutes(to: router)
    }

    /// Runs a handler, turning a problem into its problem+json answer and anything unexpected into a 503
    /// that reveals nothing internal.
    func answer(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let problem as Problem {
            Counter(label: "writeback_requests_refused_total", dimensions: [("status", String(problem.status))]).increment()
            return problem.response
        } catch {
            logger.error("request failed", metadata: ["error": "\(error)"])
            return Problem.unavailable("the request could not be completed now; try again").response
        }
    }

    /// The request's body, at most `limit` bytes (default `API_MAX_BODY_BYTES`).
    func bodyBytes(_ request: Request, limit: Int? = nil) async throws -> [UInt8] {
        var request = request
        let limit = limit ?? configuration.maxBodyBytes
        do {
            let buffer = try await request.collectBody(upTo: limit)
            return Array(buffer.readableBytesView)
        } catch {
            throw Problem(title: "Content Too Large", status: 413, detail: "the request body is larger than \(limit) bytes")
        }
    }

    /// The request's body as a JSON object, or a 400 saying why it is not one.
    func jsonObject(_ request: Request, limit: Int? = nil) async throws -> [String: JSONValue] {
        try jsonBodyObject(try await bodyBytes(request, limit: limit))
    }

    /// The request's body as a JSON object, where an empty body is an empty object.
    func optionalJSONObject(_ request: Request) async throws -> [String: JSONValue] {
        let bytes = try await bodyBytes(request)
        return bytes.allSatisfy { $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 } ? [:] : try jsonBodyObject(bytes)
    }

    func apiKey(_ request: Request) -> String? {
        request.headers[Self.apiKeyHeader] ?? request.uri.queryParameters["apiKey"].map(String.init)
    }
}

/// A request body as a JSON object, or a 400 saying why it is not one.
func jsonBodyObject(_ bytes: [UInt8]) throws(Problem) -> [String: JSONValue] {
    guard !bytes.isEmpty else { throw .badRequest("the request body is empty; send a JSON object", name: "body") }
    guard let value = try? JSONCoding.decode(JSONValue.self, from: bytes) else {
        throw .badRequest("the request body is not valid JSON", name: "body")
    }
    guard let object = value.objectValue else { throw .badRequest("the request body must be a JSON object", name: "body") }
    return object
}

/// UUIDs are compared in lower case.
func normalizedUUID(_ text: String) -> String? {
    UUID(uuidString: text).map { $0.uuidString.lowercased() }
}

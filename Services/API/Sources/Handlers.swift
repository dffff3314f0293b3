import Foundation
import HTTPTypes
import Hummingbird
import Kafka
import Logging
import Metrics
import Postgres
import Shared

/// What the routes share.
struct Handlers: Sendable {
    let configuration: APIConfiguration
    let control: ControlData
    let database: PostgresPool
    let producer: KafkaProducer
    let completions: Completions
    let logger: Logger

    static let apiKeyHeader = HTTPField.Name("X-Api-Key")!
    static let idempotencyKeyHeader = HTTPField.Name("Idempotency-Key")!

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("health") { _, _ in jsonResponse(200, Array(#"{"status":"ok"}"#.utf8)) }
        let projects = router.group("v1/projects/:project")
        projects.post("integrations/:integration/objects/:object") { request, context in
            await self.answer { try await self.write(request, context) }
        }
        projects.get("operations/:operation") { request, context in
            await self.answer { try await self.operation(request, context) }
        }
        projects.get("operations/:operation/logs") { request, context in
            await self.answer { try await self.operationLogs(request, context) }
        }
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

    func apiKey(_ request: Request) -> String? {
        request.headers[Self.apiKeyHeader] ?? request.uri.queryParameters["apiKey"].map(String.init)
    }
}

/// UUIDs are compared in lower case.
func normalizedUUID(_ text: String) -> String? {
    UUID(uuidString: text).map { $0.uuidString.lowercased() }
}

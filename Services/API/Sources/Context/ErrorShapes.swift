import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import Pipeline
import Shared

/// The error format a group of routes answers in, one per API shape: RFC 9457 problems (Write and
/// control APIs), `{errors: [...]}` (unified CRM), `{node_status: "Failed", ...}` (action catalog) and
/// `{type, message, data}` (action instances).
enum ErrorShape: Sendable {
    case problem, unified, catalog, instance

    /// `error` as this shape's answer. Anything that is not a refusal is logged and answered as a 503
    /// that reveals nothing internal.
    func response(for error: any Error, logger: Logger) -> ShapedError {
        let failure: Failure
        switch error {
        case let problem as Problem: failure = .problem(problem)
        case let action as ActionFailure: failure = .action(action)
        case let token as CustomerTokenError: failure = .problem(.unauthorized(token.message, header: "Authorization"))
        case let http as HTTPError:
            failure = .problem(Problem(title: http.status.reasonPhrase, status: http.status.code, detail: http.body ?? http.status.reasonPhrase))
        default:
            logger.error("request failed", metadata: ["error": "\(error)"])
            failure = .problem(.unavailable("the request could not be completed now; try again"))
        }
        Meters.counter("writeback_requests_refused_total", [("status", String(failure.status))]).increment()
        switch self {
        case .problem: return failure.asProblem.shaped
        case .unified: return Self.unified(failure.asProblem)
        case .catalog: return Self.catalog(failure.asAction)
        case .instance: return Self.instance(failure.asAction)
        }
    }

    /// A refusal before it takes a shape.
    private enum Failure {
        case problem(Problem)
        case action(ActionFailure)

        var status: Int {
            switch self {
            case .problem(let problem): problem.statusCode
            case .action(let action): action.status
            }
        }

        var asProblem: Problem {
            switch self {
            case .problem(let problem): return problem
            case .action(let action):
                return Problem(title: HTTPResponse.Status(code: action.status).reasonPhrase, status: action.status, detail: action.message,
                               issues: action.issues.map { .init(in: "body", name: $0.path, detail: $0.message) })
            }
        }

        var asAction: ActionFailure {
            switch self {
            case .action(let action): return action
            case .problem(let problem):
                return ActionFailure(status: problem.statusCode, message: problem.detail,
                                     issues: (problem.issues ?? []).map { .init(path: $0.name, message: $0.detail) })
            }
        }
    }

    // MARK: Unified CRM

    /// `meta.origin` of an error raised by this API itself: the shape allows `remote-provider` or this
    /// value, which the compatible API's clients expect.
    static let selfOrigin = "supaglue"

    static let unifiedCodes = [400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT",
                               413: "BAD_REQUEST", 422: "UNPROCESSABLE_ENTITY", 499: "REMOTE_PROVIDER_ERROR", 501: "NOT_IMPLEMENTED",
                               503: "SERVICE_UNAVAILABLE"]

    private static func unified(_ problem: Problem) -> ShapedError {
        let code = unifiedCodes[problem.statusCode] ?? "ERROR"
        var errors: [JSONValue] = (problem.issues ?? []).map { issue in
            unifiedError(status: problem.statusCode, code: code, title: "\(issue.name): \(issue.detail)", detail: issue.detail,
                         origin: selfOrigin, source: "\(issue.in):\(issue.name)")
        }
        if errors.isEmpty {
            errors = [unifiedError(status: problem.statusCode, code: code, title: problem.title, detail: problem.detail, origin: selfOrigin)]
        }
        return ShapedError(statusCode: problem.statusCode, body: ["errors": .array(errors)])
    }

    /// One error of the unified shape: `{id, title, detail, status, code, problem_type, meta: {origin, source?, cause?}}`.
    static func unifiedError(
        status: Int, code: String, title: String, detail: String, origin: String, source: String? = nil, cause: JSONValue? = nil
    ) -> JSONValue {
        var meta: [String: JSONValue] = ["origin": .string(origin)]
        if let cause { meta["cause"] = cause }
        if let source { meta["source"] = .string(source) }
        return [
            "id": .string(UUID().uuidString.lowercased()), "title": .string(title), "detail": .string(detail),
            "status": .string(String(status)), "code": .string(code), "problem_type": .string(code), "meta": .object(meta),
        ]
    }

    // MARK: Actions

    /// `{node_status: "Failed", message, errors?: [{parameter, message}], data?, operation_id?}`.
    private static func catalog(_ failure: ActionFailure) -> ShapedError {
        var answer: [String: JSONValue] = ["node_status": "Failed", "message": .string(failure.message)]
        if !failure.issues.isEmpty {
            answer["errors"] = .array(failure.issues.map { ["parameter": .string($0.path), "message": .string($0.message)] })
        }
        if let body = failure.providerBody { answer["data"] = body }
        if let operationId = failure.operationId { answer["operation_id"] = .string(operationId) }
        return ShapedError(statusCode: failure.status, body: .object(answer))
    }

    private static let instanceTypes = [
        400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict", 422: "connection_error",
        429: "rate_limited", 502: "connection_error",
    ]

    /// `{type, message, data?: {errors?: [{path, message}], response?, operationId?}}`.
    private static func instance(_ failure: ActionFailure) -> ShapedError {
        var data: [String: JSONValue] = [:]
        if !failure.issues.isEmpty {
            data["errors"] = .array(failure.issues.map { ["path": .string($0.path), "message": .string($0.message)] })
        }
        if let body = failure.providerBody { data["response"] = body }
        if let operationId = failure.operationId { data["operationId"] = .string(operationId) }
        var answer: [String: JSONValue] = [
            "type": .string(instanceTypes[failure.status] ?? "internal_error"), "message": .string(failure.message),
        ]
        if !data.isEmpty { answer["data"] = .object(data) }
        return ShapedError(statusCode: failure.status, body: .object(answer))
    }
}

/// A refusal in the shape of its routes, answered by Hummingbird as it is thrown.
struct ShapedError: HTTPResponseError {
    var statusCode: Int
    var contentType = "application/json"
    var bytes: [UInt8]

    init(statusCode: Int, contentType: String = "application/json", bytes: [UInt8]) {
        self.statusCode = statusCode
        self.contentType = contentType
        self.bytes = bytes
    }

    init(statusCode: Int, body: JSONValue) {
        self.init(statusCode: statusCode, bytes: (try? JSONCoding.encode(body)) ?? Array("{}".utf8))
    }

    var status: HTTPResponse.Status { .init(code: statusCode) }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(status: status, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}

/// Answers every error of the routes behind it in one shape.
struct ErrorShapeMiddleware: RouterMiddleware {
    let shape: ErrorShape
    let logger: Logger

    func handle(_ request: Request, context: APIContext, next: (Request, APIContext) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            throw shape.response(for: error, logger: logger)
        }
    }
}

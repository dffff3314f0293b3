import Foundation
import Hummingbird
import Shared

/// An RFC 9457 problem, answered as `application/problem+json` in the shape of the Ampersand API. Routes
/// of other shapes answer it in theirs (`ErrorShape`).
struct Problem: HTTPResponseError, Encodable, Sendable {
    struct Issue: Encodable, Sendable {
        /// body, header, path or query
        var `in`: String
        var name: String
        var detail: String
        /// Where in an uploaded file (a manifest), from 1.
        var line: Int?
        var column: Int?
    }

    var type = "about:blank"
    var title: String
    var statusCode: Int
    var detail: String
    var subsystem = "api"
    var time = Timestamp.now()
    var requestId = UUID().uuidString.lowercased()
    var remedy: String?
    var retryable: Bool?
    var issues: [Issue]?

    enum CodingKeys: String, CodingKey {
        case type, title, statusCode = "status", detail, subsystem, time, requestId, remedy, retryable, issues
    }

    init(title: String, status: Int, detail: String, remedy: String? = nil, retryable: Bool? = nil, issues: [Issue]? = nil) {
        self.title = title
        statusCode = status
        self.detail = detail
        self.remedy = remedy
        self.retryable = retryable
        self.issues = issues
    }

    var status: HTTPResponse.Status { .init(code: statusCode) }

    static func badRequest(_ detail: String, in location: String = "body", name: String, remedy: String? = nil) -> Problem {
        Problem(title: "Bad Request", status: 400, detail: detail, remedy: remedy,
                issues: [Issue(in: location, name: name, detail: detail)])
    }

    /// 422: the input is well-formed but cannot be used; one issue per problem.
    static func unprocessable(_ detail: String, issues: [Issue]) -> Problem {
        Problem(title: "Unprocessable Entity", status: 422, detail: detail, issues: issues)
    }

    static func unauthorized(_ detail: String, header: String = "X-Api-Key") -> Problem {
        Problem(title: "Unauthorized", status: 401, detail: detail,
                remedy: header == "X-Api-Key" ? "Send the project's API key in the X-Api-Key header." : nil,
                issues: [Issue(in: "header", name: header, detail: detail)])
    }

    static func notFound(_ detail: String, name: String, in location: String = "path") -> Problem {
        Problem(title: "Not Found", status: 404, detail: detail, issues: [Issue(in: location, name: name, detail: detail)])
    }

    static func conflict(_ detail: String) -> Problem {
        Problem(title: "Conflict", status: 409, detail: detail,
                remedy: "Use a new Idempotency-Key for a different request.",
                issues: [Issue(in: "header", name: "Idempotency-Key", detail: detail)])
    }

    /// 409: the request clashes with what exists (a name taken, a row still in use), naming what clashes.
    static func conflict(_ detail: String, in location: String, name: String) -> Problem {
        Problem(title: "Conflict", status: 409, detail: detail, issues: [Issue(in: location, name: name, detail: detail)])
    }

    static func unavailable(_ detail: String) -> Problem {
        Problem(title: "Service Unavailable", status: 503, detail: detail, retryable: true)
    }

    /// The problem as an `application/problem+json` answer.
    var shaped: ShapedError {
        ShapedError(statusCode: statusCode, contentType: "application/problem+json", bytes: (try? JSONCoding.encode(self)) ?? Array("{}".utf8))
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        try shaped.response(from: request, context: context)
    }
}

/// A JSON response with the given status.
func jsonResponse(_ status: Int, _ bytes: [UInt8], headers: HTTPFields = [:]) -> Response {
    var headers = headers
    headers[.contentType] = "application/json"
    return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
}

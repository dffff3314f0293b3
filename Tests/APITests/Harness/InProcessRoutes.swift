import HTTPTypes
import Hummingbird
import Logging
import NIOEmbedded

@testable import API

/// Sends requests straight to the api's router in this process, as Hummingbird's own router test mode
/// does: each request gets a context made from an embedded channel, its body is streamed in, and the
/// response body is collected. No socket, no HTTP client.
struct InProcessRoutes: Sendable {
    let responder: RouterResponder<APIContext>
    let logger: Logger

    func send(_ method: HTTPRequest.Method, _ uri: String, headers: HTTPFields = [:], body: ByteBuffer? = nil) async throws
        -> (head: HTTPResponse, body: ByteBuffer)
    {
        var headers = headers
        if let body { headers[.contentLength] = String(body.readableBytes) }
        let request = Request(
            head: HTTPRequest(method: method, scheme: "http", authority: "localhost", path: uri, headerFields: headers),
            body: RequestBody(buffer: body ?? ByteBuffer()))
        let context = APIContext(source: ApplicationRequestContextSource(channel: EmbeddedChannel(), logger: logger))
        let response = try await responder.respond(to: request, context: context)
        let collected = CollectedBody()
        try await response.body.write(BodyCollector(into: collected))
        return (response.head, collected.bytes)
    }
}

/// The response body as it was written.
private final class CollectedBody: @unchecked Sendable {
    var bytes = ByteBuffer()
}

private struct BodyCollector: ResponseBodyWriter {
    let into: CollectedBody

    mutating func write(_ buffer: ByteBuffer) async throws {
        into.bytes.writeImmutableBuffer(buffer)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

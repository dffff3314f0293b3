import Foundation
import HTTPTypes
import Hummingbird
import Secrets
import Shared
import Synchronization

/// A webhook endpoint for benchmarks: answers every POST with 204 after checking its Standard Webhooks
/// signature (as a receiver would), and keeps, per delivery, when it arrived and how long after its
/// event happened (`createTime`). `PUT /_sink/secret` (the body: the destination's signing secret) sets
/// the key; `GET /_sink/stats` answers the counts and the delays' percentiles; `POST /_sink/reset`
/// forgets what arrived.
public final class WebhookSink: Sendable {
    struct Arrivals {
        var key: [UInt8]?
        var times: [Double] = []
        var delays: [Double] = []
        var unverified = 0
        var ids: Set<String> = []
    }

    let state = Mutex(Arrivals())

    public init() {}

    public func application(host: String, port: Int) -> some ApplicationProtocol {
        let router = Router()
        router.put("_sink/secret") { request, _ -> Response in
            let text = String(buffer: try await request.body.collect(upTo: 1024)).trimmingCharacters(in: .whitespacesAndNewlines)
            self.state.withLock { $0.key = StandardWebhooks.key(of: text) }
            return Response(status: .noContent)
        }
        router.post("_sink/reset") { _, _ -> Response in
            self.state.withLock { $0 = Arrivals(key: $0.key) }
            return Response(status: .noContent)
        }
        router.get("_sink/stats") { _, _ -> Response in
            let body = self.state.withLock { Self.stats($0) }
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(bytes: (try? JSONCoding.encode(body)) ?? [])))
        }
        router.post("**") { request, _ -> Response in
            let body = Array(try await request.body.collect(upTo: 1 << 20).readableBytesView)
            let arrived = Date().timeIntervalSince1970
            let id = request.headers[HTTPField.Name("webhook-id")!] ?? ""
            let timestamp = Int(request.headers[HTTPField.Name("webhook-timestamp")!] ?? "") ?? 0
            let signature = request.headers[HTTPField.Name("webhook-signature")!] ?? ""
            let created = (try? JSONReader.read(body))?["createTime"]?.stringValue.flatMap(Timestamp.parse)?.timeIntervalSince1970
            self.state.withLock { state in
                let verified = state.key.map { StandardWebhooks.signature(id: id, timestamp: timestamp, body: body, key: $0) == signature }
                if verified != true { state.unverified += 1 }
                state.times.append(arrived)
                if let created { state.delays.append(arrived - created) }
                state.ids.insert(id)
            }
            return Response(status: .noContent)
        }
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "webhook-sink"))
    }

    static func stats(_ state: Arrivals) -> JSONValue {
        let delays = state.delays.sorted()
        func percentile(_ p: Double) -> JSONValue {
            delays.isEmpty ? .null : .number((delays[min(delays.count - 1, Int(Double(delays.count) * p))] * 1000).rounded() / 1000)
        }
        return [
            "count": .number(Double(state.times.count)), "distinct": .number(Double(state.ids.count)),
            "unverified": .number(Double(state.unverified)),
            "first": state.times.min().map(JSONValue.number) ?? .null, "last": state.times.max().map(JSONValue.number) ?? .null,
            "delayP50": percentile(0.5), "delayP99": percentile(0.99), "delayMax": delays.last.map(JSONValue.number) ?? .null,
        ]
    }
}

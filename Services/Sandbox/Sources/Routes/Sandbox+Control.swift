import Hummingbird
import Shared

/// `/_sandbox/…`: what tests and the benchmark use to look inside and to steer the simulators. Not
/// part of any provider's API.
extension Sandbox {
    func addControlRoutes(to router: Router<BasicRequestContext>) {
        router.get("_sandbox/health") { _, _ in jsonResponse(200, ["status": "ok"]) }
        // Every write call received, in order.
        router.get("_sandbox/requests") { _, _ in
            jsonResponse(200, self.state.withLock { $0.requests })
        }
        // {"latencyMilliseconds": N}: added to every provider call from now on.
        router.put("_sandbox/latency") { request, _ in
            var request = request
            let milliseconds = (await jsonBody(&request))?["latencyMilliseconds"]?.scalarText.flatMap { Int($0) } ?? 0
            self.state.withLock { $0.latencyMilliseconds = milliseconds }
            return jsonResponse(200, ["latencyMilliseconds": milliseconds])
        }
        // {"provider": "salesforce"|"hubspot", "faults": [{"kind": "error"|"delay"|"lock", "status"?, "delayMilliseconds"?}]}:
        // the provider's next write calls meet these faults, one each, in order.
        router.put("_sandbox/faults") { request, _ in
            var request = request
            struct Faults: Decodable {
                var provider: String
                var faults: [Fault]
            }
            guard let buffer = try? await request.collectBody(upTo: 1 << 20),
                let body = try? JSONCoding.decode(Faults.self, from: buffer.readableBytesView)
            else { return jsonResponse(400, ["error": "expected {provider, faults: [{kind, status?, delayMilliseconds?}]}"]) }
            let queued = self.state.withLock { state in
                state.faults[body.provider, default: []] += body.faults
                return state.faults[body.provider]?.count ?? 0
            }
            return jsonResponse(200, ["queued": queued])
        }
        // A fast endpoint with no provider logic: the floor for benchmarks.
        router.get("_sandbox/ping") { _, _ in jsonResponse(200, ["pong": true]) }
    }
}

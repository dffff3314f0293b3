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
        // A fast endpoint with no provider logic: the floor for benchmarks.
        router.get("_sandbox/ping") { _, _ in jsonResponse(200, ["pong": true]) }
    }
}

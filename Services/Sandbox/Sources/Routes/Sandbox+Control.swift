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
        // {"provider": "salesforce"|"hubspot", "org"?, "faults": [{"kind": "error"|"delay"|"lock"|"drop", "status"?,
        // "delayMilliseconds"?}]}: the next write calls of the org (or of any org of the provider) meet these
        // faults, one each, in order.
        router.put("_sandbox/faults") { request, _ in
            var request = request
            struct Faults: Decodable {
                var provider: String
                var org: String?
                var faults: [Fault]
            }
            guard let buffer = try? await request.collectBody(upTo: 1 << 20),
                let body = try? JSONCoding.decode(Faults.self, from: buffer.readableBytesView)
            else { return jsonResponse(400, ["error": "expected {provider, org?, faults: [{kind, status?, delayMilliseconds?}]}"]) }
            let key = body.org.map { "\(body.provider)/\($0)" } ?? body.provider
            let queued = self.state.withLock { state in
                state.faults[key, default: []] += body.faults
                return state.faults[key]?.count ?? 0
            }
            return jsonResponse(200, ["queued": queued])
        }
        // Forgets every queued fault.
        router.delete("_sandbox/faults") { _, _ in
            let dropped = self.state.withLock { state in
                defer { state.faults = [:] }
                return state.faults.values.reduce(0) { $0 + $1.count }
            }
            return jsonResponse(200, ["dropped": dropped])
        }
        // An org's limits, latency, usage and queued faults.
        router.get("_sandbox/orgs/:provider/:org") { _, context in
            let provider = context.parameters.get("provider") ?? ""
            let name = context.parameters.get("org") ?? ""
            return jsonResponse(200, self.report(provider, name))
        }
        // {"limits"?: {windowMax?, windowMilliseconds, dailyMax?, dailyWindowSeconds}, "latencyMilliseconds"?,
        // "objects"?: Salesforce custom objects and fields}:
        // replaces the org's settings; usage so far is forgotten when the limits change.
        router.put("_sandbox/orgs/:provider/:org") { request, context in
            var request = request
            let provider = context.parameters.get("provider") ?? ""
            guard Self.providers.contains(provider) else {
                return jsonResponse(404, ["error": "provider must be one of \(Self.providers.joined(separator: ", "))"])
            }
            let name = context.parameters.get("org") ?? ""
            guard let buffer = try? await request.collectBody(upTo: 1 << 20),
                let settings = try? JSONCoding.decode(OrgSettings.self, from: buffer.readableBytesView)
            else { return jsonResponse(400, ["error": "expected {limits?, latencyMilliseconds?}"]) }
            self.withOrg(provider, name) { org in
                if let limits = settings.limits, limits != org.limits { org = Org(limits: limits) }
                if let latency = settings.latencyMilliseconds { org.latencyMilliseconds = latency }
                if let objects = settings.objects { org.salesforceObjects = objects }
            }
            return jsonResponse(200, self.report(provider, name))
        }
        // Files to fetch, as a bulk write's recordsURL: PUT stores the body; GET serves it as text/csv
        // (`?stallSeconds=N` waits that long first).
        router.put("_sandbox/files/:name") { request, context in
            guard let body = try? await request.body.collect(upTo: 64 << 20) else { return jsonResponse(413, ["error": "at most 64 MiB"]) }
            let name = context.parameters.get("name") ?? ""
            self.state.withLock { $0.files[name] = Array(body.readableBytesView) }
            return jsonResponse(200, ["bytes": body.readableBytes])
        }
        router.get("_sandbox/files/:name") { request, context in
            if let stall = request.uri.queryParameters["stallSeconds"].flatMap({ Double(String($0)) }) {
                try await Task.sleep(for: .milliseconds(Int(stall * 1000)))
            }
            guard let bytes = self.state.withLock({ $0.files[context.parameters.get("name") ?? ""] }) else {
                return jsonResponse(404, ["error": "no such file"])
            }
            return Response(status: .ok, headers: [.contentType: "text/csv"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        // `?to=URL`: answers 302 to it.
        router.get("_sandbox/redirect") { request, _ in
            let target = request.uri.queryParameters["to"].map(String.init) ?? "/"
            return Response(status: .found, headers: [.location: target])
        }
        // A fast endpoint with no provider logic: the floor for benchmarks.
        router.get("_sandbox/ping") { _, _ in jsonResponse(200, ["pong": true]) }
    }
}

extension Sandbox {
    func report(_ provider: String, _ name: String) -> OrgReport {
        let org = withOrg(provider, name) { $0 }
        let queued = state.withLock { $0.faults["\(provider)/\(name)"]?.count ?? 0 }
        return OrgReport(provider: provider, org: name, limits: org.limits, latencyMilliseconds: org.latencyMilliseconds,
                         objects: org.salesforceObjects, calls: org.calls, limited: org.limited, faultsQueued: queued)
    }
}

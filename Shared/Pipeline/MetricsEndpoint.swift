import Hummingbird
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import Synchronization

/// `GET /metrics` in the Prometheus text format, on a port of its own, for what the service records
/// through swift-metrics.
public struct MetricsEndpoint: Service, CustomStringConvertible {
    public var description: String { "MetricsEndpoint(\(host):\(port))" }

    let host: String
    let port: Int
    let registry: PrometheusCollectorRegistry
    let logger: Logger

    public func run() async throws {
        let router = Router()
        let registry = self.registry
        router.get("metrics") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        let app = Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "metrics"), logger: logger)
        try await app.run()
    }

    /// The process's registry, made the swift-metrics backend on first use.
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()
}

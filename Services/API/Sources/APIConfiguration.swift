import Connectors
import HTTPClient
import Foundation
import Kafka
import Secrets

public struct APIConfiguration: Sendable {
    /// Listen address. Default 127.0.0.1:8080.
    public var host = "127.0.0.1"
    public var port = 8080
    public var kafka: KafkaConfiguration
    public var controlDatabaseURL: String
    /// How long a synchronous write waits before answering 202 with its operation id. Default 30 s.
    public var syncTimeout: Double = 30
    /// Largest request body accepted, in bytes. Default 10 MiB.
    public var maxBodyBytes = 10 << 20
    /// How long API keys, integrations and installations read from the control database are reused.
    /// A change to them takes effect within this time. Default 5 s; 0 reads them on every request.
    public var controlCacheSeconds: Double = 5
    /// Control database connections. Default 8.
    public var databaseConnections = 8
    /// This instance's id, carried by its synchronous requests. Default: a new UUID per start.
    public var instanceId = UUID().uuidString.lowercased()

    /// Seals the credentials of connections and provider apps (`WRITEBACK_ENCRYPTION_KEY`).
    public var secrets: SecretBox
    /// The address customers' browsers reach this api at, for OAuth callbacks. Default
    /// `http://{host}:{port}`.
    public var publicURL: String?
    /// Where the providers' OAuth pages and default API hosts are (`SALESFORCE_LOGIN_URL`,
    /// `HUBSPOT_AUTHORIZE_URL`, `HUBSPOT_API_URL`).
    public var hosts = ProviderHosts()
    /// Seconds a provider call made by the api (pass-through, metadata, token exchange) may take. Default 30.
    public var providerTimeout: Double = 30
    /// How long an object's field metadata read from a provider is reused. Default 300 s.
    public var metadataCacheSeconds: Double = 300
    /// How a bulk write's `recordsURL` is checked and its header read before the write is accepted.
    public var recordsURL = GuardedDownload(guardrail: URLGuard(), maxBytes: 10 << 30, timeout: 21600)

    /// Which webhook destination URLs are accepted: public addresses only, unless allowed
    /// (`WRITEBACK_WEBHOOK_URL_ALLOW`, as the notifier checks them again at every delivery).
    public var webhookURLs = URLGuard()

    public init(kafka: KafkaConfiguration, controlDatabaseURL: String, secrets: SecretBox) {
        self.secrets = secrets
        self.kafka = kafka
        self.controlDatabaseURL = controlDatabaseURL
    }
}

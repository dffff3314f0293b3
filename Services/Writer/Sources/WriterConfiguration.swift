import Connectors
import HTTPClient
import Kafka
import Secrets

public struct WriterConfiguration: Sendable {
    public var kafka: KafkaConfiguration
    public var controlDatabaseURL: String
    /// Consumer group of all writer instances. Default `writeback-writer`.
    public var groupID = "writeback-writer"
    /// Where the providers' token endpoints are, for connections that do not name their own
    /// (`SALESFORCE_LOGIN_URL`, `HUBSPOT_API_URL`, `PIPEDRIVE_OAUTH_URL`, …).
    public var hosts = ProviderHosts()
    /// Messages of `write-requests` read and neither answered nor held, per instance, at most (the bound
    /// on the writer's memory; writes that wait are held in the database and do not count). Default 4096.
    public var maxInFlight = 4096
    /// Writes of one connection running at once (provider calls in flight, at most). Default 25: the
    /// long-running requests Salesforce allows an org at once.
    public var connectionConcurrency = 25
    /// Writes of one connection read from Kafka and kept in memory (running or waiting for their turn)
    /// at most, and never more than a quarter of `maxInFlight`, so that no connection takes the reading
    /// budget of the others; more are held in the database. Default 1000.
    public var connectionMaxQueued = 1000

    /// What one lane may keep in memory: `connectionMaxQueued`, within a quarter of `maxInFlight`.
    var laneMemory: Int { max(1, min(connectionMaxQueued, maxInFlight / 4)) }
    /// The longest a write waits in memory (for its connection's pacing, or before trying again), in
    /// seconds; a longer wait is a hold in the control database. Default 1.
    public var holdThreshold: Double = 1
    /// Under load, the writer's rows (attempts begun and completed, holds, releases) of the writes running
    /// at about the same time go to the database together at most this often, in one transaction; after
    /// a quiet time at once. Default 10 ms.
    public var journalInterval: Duration = .milliseconds(10)
    /// Seconds a provider call may take. Default 30.
    public var providerTimeout: Double = 30
    /// Seconds after its acceptance during which a write failing for a passing reason (outage, timeout,
    /// lock, rate limit) is tried again; then it fails and is dead-lettered. Default 3600 (1 hour).
    public var retryDeadline: Double = 3600
    /// First hold of a connection refused for its daily limit, in seconds; doubles while refusals go on,
    /// up to `maxLimitPause`. Defaults 60 and 3600.
    public var limitPause: Double = 60
    public var maxLimitPause: Double = 3600
    /// First wait between tries, in seconds; doubles each time, half of it random. Default 0.5.
    public var retryBackoff: Double = 0.5
    /// Longest wait between tries, in seconds. Default 30.
    public var maxRetryBackoff: Double = 30
    /// HTTP connections to providers. Default 32. A connection takes a second one only while more than a
    /// quarter of them are free, and one with none running is served first.
    public var httpConcurrency = 32
    /// How long an installation's provider address and token are reused before being read again.
    /// Default 5 s.
    public var installationCacheSeconds: Double = 5
    /// The longest an auto-batched write waits for others to fill its batch, in seconds, whatever its
    /// `autoBatchPolicy.maxDelayMinutes` says. Default 0: no limit of the writer's own.
    public var autoBatchMaxDelay: Double = 0
    /// The most CSV bytes sent in one Salesforce Bulk API 2.0 job; a larger file is split into several
    /// jobs. Default 4 MiB (Salesforce takes up to 100 MB); the writer's memory grows with it.
    public var bulkJobMaxBytes = 4 << 20
    /// The longest wait between two reads of a running bulk job's state, in seconds. Default 5.
    public var bulkPollMaxSeconds: Double = 5
    /// A bulk write's chunks (Salesforce jobs, or batches elsewhere) being written at the provider at
    /// once: with more than one, the next is read and sent while the provider runs the others. The
    /// writer holds as many chunks (and their result files) in memory; two chunks that share a record's
    /// key never run together. Default 1: each chunk is written before more is read.
    public var bulkChunksInFlight = 1
    /// How a bulk write's `recordsURL` is fetched.
    public var recordsURL = GuardedDownload(guardrail: URLGuard(), maxBytes: 10 << 30, timeout: 21600)
    /// Control database connections. Default 8.
    public var databaseConnections = 8

    /// Opens the stored credentials and seals renewed tokens (`WRITEBACK_ENCRYPTION_KEY`).
    public var secrets: SecretBox

    public init(kafka: KafkaConfiguration, controlDatabaseURL: String, secrets: SecretBox) {
        self.secrets = secrets
        self.kafka = kafka
        self.controlDatabaseURL = controlDatabaseURL
    }
}

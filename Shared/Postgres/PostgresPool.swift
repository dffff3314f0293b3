import Metrics
import ThreadPool

/// A pool of libpq connections, each confined to a thread of its own. `withConnection` leases one
/// connection to a job for its whole run; a connection that breaks, or that the server closed while it
/// was idle, is replaced before the next job.
public final class PostgresPool: Sendable {
    private let workers: ThreadConfinedPool<PostgresConnection>
    /// `writeback_database_transactions_total{pool}`: the transactions (and round trips) this pool ran.
    private let transactions: Counter

    /// - Parameters:
    ///   - url: a libpq connection string or `postgres://` URL.
    ///   - size: connections (and threads); default 4.
    public init(url: String, size: Int = 4, name: String = "postgres") {
        transactions = Counter(label: "writeback_database_transactions_total", dimensions: [("pool", name)])
        workers = ThreadConfinedPool(
            name: name, size: size,
            makeResource: { try PostgresConnection.connect(url) },
            isBroken: { error in (error as? PostgresError)?.code == .connection },
            // A connection the server closed while it was idle (a restart) is replaced before a job
            // fails on it: after a restart no request or batch sees the old connections' errors.
            isUsable: { $0.isHealthy })
    }

    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T)
        async throws -> T
    {
        transactions.increment()
        return try await workers.run(body)
    }

    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) async throws -> PostgresRows {
        transactions.increment()
        return try await workers.run { try $0.query(sql, parameters) }
    }

    /// Several statements in one round trip and one transaction (`PostgresConnection.pipeline`).
    @discardableResult
    public func pipeline(_ statements: [(sql: String, parameters: [String?])]) async throws -> [PostgresRows] {
        transactions.increment()
        return try await workers.run { try $0.pipeline(statements) }
    }

    public func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T)
        async throws -> T
    {
        transactions.increment()
        return try await workers.run { try $0.transaction(body) }
    }

    /// Applies the migrations that this database has not seen yet, in order, under an advisory lock so
    /// that services starting together do not race.
    public func migrate(_ migrations: [Migration]) async throws {
        try await withConnection { connection in
            try connection.transaction { connection in
                try connection.exec("SELECT pg_advisory_xact_lock(7210001)")
                try connection.exec(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                let applied = Set(try connection.query("SELECT name FROM schema_migrations").values.compactMap { $0[0] })
                for migration in migrations where !applied.contains(migration.name) {
                    try connection.exec(migration.sql)
                    try connection.query("INSERT INTO schema_migrations (name) VALUES ($1)", [migration.name])
                }
            }
        }
    }

    public func shutdown() {
        workers.shutdown()
    }

    /// A pool whose database has had `migrations` applied; shut down again if that fails.
    public static func migrated(url: String, size: Int, name: String, migrations: [Migration]) async throws -> PostgresPool {
        let pool = PostgresPool(url: url, size: size, name: name)
        do {
            try await pool.migrate(migrations)
            return pool
        } catch {
            pool.shutdown()
            throw error
        }
    }
}

/// One schema change, applied once per database.
public struct Migration: Sendable {
    public let name: String
    public let sql: String

    public init(_ name: String, _ sql: String) {
        self.name = name
        self.sql = sql
    }
}

extension PostgresPool {
    /// The first statement of a pipeline whose statements must be planned for the parameters and the
    /// table sizes of each run: a prepared statement's cached plan is made once, with the table's size
    /// when it was made (nearly empty, for a table filled since), and kept until the table is analyzed,
    /// so a key lookup planned against an empty table reads the whole table ever after.
    public static let customPlans: (sql: String, parameters: [String?]) = (
        "SELECT set_config('plan_cache_mode', 'force_custom_plan', true)", []
    )
}

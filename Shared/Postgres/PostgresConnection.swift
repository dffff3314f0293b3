import CLibPQ
#if canImport(Glibc)
import Glibc
#endif

/// One libpq connection. Not thread-safe: the pool leases it to one job at a time on the thread that
/// owns it, so it is never shared.
public final class PostgresConnection {
    private let handle: OpaquePointer
    /// SQL text → prepared statement name. Statements are prepared once per connection.
    private var prepared: [String: String] = [:]

    private init(handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        PQfinish(handle)
    }

    /// Connects with a libpq connection string or `postgres://` URL.
    public static func connect(_ url: String) throws -> PostgresConnection {
        guard let handle = PQconnectdb(url) else {
            throw PostgresError(.connection, "out of memory")
        }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines()
            PQfinish(handle)
            throw PostgresError(.connection, message)
        }
        let connection = PostgresConnection(handle: handle)
        _ = try connection.exec("SET client_min_messages TO warning")
        return connection
    }

    /// Whether the connection can still be used, as far as can be told without a round trip: an idle
    /// connection the server closed (a restart, an idle timeout) has the server's last error and its end
    /// of file waiting to be read. Nothing else arrives on an idle connection of ours (it listens to no
    /// channel), so anything readable means it is closing; one with nothing to read is taken as alive.
    public var isHealthy: Bool {
        guard PQstatus(handle) == CONNECTION_OK else { return false }
        var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) == 0
    }

    /// Runs SQL with text parameters ($1, $2, …) as a prepared statement of this connection.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) throws -> PostgresRows {
        let name: String
        if let existing = prepared[sql] {
            name = existing
        } else {
            name = "s\(prepared.count)"
            let result = PQprepare(handle, name, sql, Int32(parameters.count), nil)
            defer { PQclear(result) }
            try check(result, sql: sql)
            prepared[sql] = name
        }
        let result = withCStrings(parameters) { pointers in
            PQexecPrepared(handle, name, Int32(parameters.count), pointers, nil, nil, 0)
        }
        defer { PQclear(result) }
        try check(result, sql: sql)
        return rows(of: result)
    }

    /// Runs several statements in one round trip (libpq's pipeline mode) and one implicit transaction:
    /// either all of them apply or, when one fails, none does and its error is thrown. Answers each
    /// statement's rows, in order. Statements are prepared once per connection, as `query` does.
    public func pipeline(_ statements: [(sql: String, parameters: [String?])]) throws -> [PostgresRows] {
        guard !statements.isEmpty else { return [] }
        guard PQenterPipelineMode(handle) == 1 else {
            throw PostgresError(.connection, String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines())
        }
        defer { PQexitPipelineMode(handle) }
        // What this pipeline prepares: its own result comes first, and a failed one is forgotten again.
        var preparing: [Int: String] = [:]
        for (index, statement) in statements.enumerated() {
            let name: String
            if let existing = prepared[statement.sql] {
                name = existing
            } else {
                name = "s\(prepared.count)"
                prepared[statement.sql] = name
                preparing[index] = statement.sql
                guard PQsendPrepare(handle, name, statement.sql, Int32(statement.parameters.count), nil) == 1 else {
                    throw brokenPipeline(forgetting: preparing)
                }
            }
            let sent = withCStrings(statement.parameters) { pointers in
                PQsendQueryPrepared(handle, name, Int32(statement.parameters.count), pointers, nil, nil, 0)
            }
            guard sent == 1 else { throw brokenPipeline(forgetting: preparing) }
        }
        guard PQpipelineSync(handle) == 1 else { throw brokenPipeline(forgetting: preparing) }
        var answers: [PostgresRows] = []
        answers.reserveCapacity(statements.count)
        var failure: PostgresError?
        for index in statements.indices {
            if let sql = preparing[index] {
                if let error = takeResult(sql: sql).error {
                    prepared[sql] = nil
                    failure = failure ?? error
                }
            }
            let (rows, error) = takeResult(sql: statements[index].sql)
            failure = failure ?? error
            answers.append(rows ?? PostgresRows(columns: [], values: [], affected: 0))
        }
        // The sync's own result ends the pipeline.
        guard let sync = PQgetResult(handle) else { throw brokenPipeline(forgetting: preparing) }
        let synced = PQresultStatus(sync) == PGRES_PIPELINE_SYNC
        PQclear(sync)
        guard synced else { throw brokenPipeline(forgetting: preparing) }
        if let failure { throw failure }
        return answers
    }

    /// One statement's result in a pipeline (and the NULL after it): its rows, or the error that failed
    /// it (a statement after a failed one is aborted).
    private func takeResult(sql: String) -> (rows: PostgresRows?, error: PostgresError?) {
        guard let result = PQgetResult(handle) else {
            return (nil, PostgresError(.connection, String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines()))
        }
        defer {
            PQclear(result)
            // Each statement's results end with a NULL.
            while let extra = PQgetResult(handle) { PQclear(extra) }
        }
        if PQresultStatus(result) == PGRES_PIPELINE_ABORTED {
            return (nil, PostgresError(.query, "aborted: an earlier statement of its pipeline failed"))
        }
        do {
            try check(result, sql: sql)
            return (rows(of: result), nil)
        } catch {
            return (nil, error as? PostgresError)
        }
    }

    /// A pipeline that broke off: the connection is not usable any more.
    private func brokenPipeline(forgetting preparing: [Int: String]) -> PostgresError {
        for sql in preparing.values { prepared[sql] = nil }
        return PostgresError(.connection, String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines())
    }

    /// Runs one or more statements without parameters (migrations, BEGIN/COMMIT).
    @discardableResult
    public func exec(_ sql: String) throws -> PostgresRows {
        let result = PQexec(handle, sql)
        defer { PQclear(result) }
        try check(result, sql: sql)
        return rows(of: result)
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    public func transaction<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        try exec("BEGIN")
        do {
            let value = try body(self)
            try exec("COMMIT")
            return value
        } catch {
            _ = try? exec("ROLLBACK")
            throw error
        }
    }

    private func check(_ result: OpaquePointer?, sql: String) throws {
        guard let result else {
            throw PostgresError(.connection, String(cString: PQerrorMessage(handle)).trimmingTrailingNewlines())
        }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return
        default:
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let message = String(cString: PQresultErrorMessage(result)).trimmingTrailingNewlines()
            let code: PostgresError.Code = PQstatus(handle) == CONNECTION_OK ? .query : .connection
            throw PostgresError(code, message, sqlState: state)
        }
    }

    private func rows(of result: OpaquePointer?) -> PostgresRows {
        guard let result else { return PostgresRows(columns: [], values: [], affected: 0) }
        let columnCount = PQnfields(result)
        let rowCount = PQntuples(result)
        let columns = (0..<columnCount).map { String(cString: PQfname(result, $0)) }
        var values: [[String?]] = []
        values.reserveCapacity(Int(rowCount))
        for row in 0..<rowCount {
            values.append(
                (0..<columnCount).map { column in
                    PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
                })
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return PostgresRows(columns: columns, values: values, affected: affected)
    }
}

private func withCStrings<R>(_ strings: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let copies: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0) } }
    defer { copies.forEach { free($0) } }
    return body(copies.map { $0.map { UnsafePointer($0) } })
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var text = self
        while text.last == "\n" { text.removeLast() }
        return text
    }
}

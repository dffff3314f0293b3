import Foundation
import Postgres
import Schema

/// The tests' PostgreSQL server is missing: run them with scripts/test.
public struct NoTestDatabase: Error, CustomStringConvertible {
    public var description: String {
        "run the tests with scripts/test, which starts PostgreSQL and sets WRITEBACK_TEST_POSTGRES"
    }
}

/// A new, migrated control database on the tests' PostgreSQL server (`WRITEBACK_TEST_POSTGRES`, set by
/// scripts/test); throws (failing the test) when there is none.
public func freshControlDatabase(_ prefix: String, connections: Int = 1) async throws -> PostgresPool {
    try await freshDatabase(prefix, migrations: ControlSchema.migrations, connections: connections)
}

/// A new database on the tests' PostgreSQL server with `migrations` applied (the control or the
/// destination schema).
public func freshDatabase(_ prefix: String, migrations: [Migration], connections: Int = 1) async throws -> PostgresPool {
    guard let postgres = ProcessInfo.processInfo.environment["WRITEBACK_TEST_POSTGRES"] else { throw NoTestDatabase() }
    let name = "\(prefix)_\(UInt32.random(in: 0...UInt32.max))"
    try PostgresConnection.connect("\(postgres) dbname=postgres").exec("CREATE DATABASE \(name)")
    let database = PostgresPool(url: "\(postgres) dbname=\(name)", size: connections, name: prefix)
    try await database.migrate(migrations)
    return database
}

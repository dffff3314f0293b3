import Schema
import Foundation
import Postgres
import Shared
import Testing

/// A new, migrated control database on the tests' PostgreSQL server (`WRITEBACK_TEST_POSTGRES`, set by
/// scripts/test); nil, with the test failed, when there is none.
func freshControlDatabase(_ prefix: String) async throws -> PostgresPool? {
    guard let postgres = ProcessInfo.processInfo.environment["WRITEBACK_TEST_POSTGRES"] else {
        Issue.record("run the tests with scripts/test, which starts PostgreSQL and sets WRITEBACK_TEST_POSTGRES")
        return nil
    }
    let name = "\(prefix)_\(UInt32.random(in: 0...UInt32.max))"
    try PostgresConnection.connect("\(postgres) dbname=postgres").exec("CREATE DATABASE \(name)")
    let database = PostgresPool(url: "\(postgres) dbname=\(name)", size: 1, name: prefix)
    try await database.migrate(ControlSchema.migrations)
    return database
}

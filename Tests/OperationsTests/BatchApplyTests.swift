import Foundation
import Logging
import Pipeline
import Postgres
import Synchronization
import TestSupport
import Testing

/// Many statements in one round trip and one transaction, and a batch the database refuses split until
/// only the refused item is left out.
@Suite("Batches in one transaction")
struct BatchApplyTests {
    static let table = "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)"
    static func insert(_ id: Int, _ name: String?) -> (sql: String, parameters: [String?]) {
        ("INSERT INTO items (id, name) VALUES ($1::int, $2) RETURNING id", [String(id), name])
    }

    @Test("a pipeline answers each statement's rows; when one fails none applies, and the connection goes on")
    func pipeline() async throws {
        let database = try await freshControlDatabase("pipeline")
        defer { database.shutdown() }
        try await database.withConnection { _ = try $0.exec(Self.table) }

        let rows = try await database.pipeline([Self.insert(1, "a"), Self.insert(2, "b"), ("SELECT count(*) AS n FROM items", [])])
        #expect(rows.map { $0.first?["id"] } == ["1", "2", nil])
        #expect(rows[2].first?["n"] == "2", "the third statement sees the first two")

        // The second refuses (a name is required): the first and third are not kept either.
        await #expect(throws: PostgresError.self) {
            try await database.pipeline([Self.insert(3, "c"), Self.insert(4, nil), Self.insert(5, "e")])
        }
        // A statement never prepared before, refused at its preparation, is prepared again later.
        await #expect(throws: PostgresError.self) { try await database.pipeline([("SELECT nosuchcolumn FROM items", [])]) }
        let after = try await database.pipeline([Self.insert(3, "c"), ("SELECT count(*) AS n FROM items", [])])
        #expect(after[1].first?["n"] == "3")
        try await database.withConnection { _ = try $0.exec("ALTER TABLE items ADD COLUMN nosuchcolumn int") }
        #expect(try await database.pipeline([("SELECT nosuchcolumn FROM items", [])])[0].count == 3)
    }

    @Test("a batch with a refused item is split: every other item applies, the refused one is reported once")
    func split() async throws {
        let database = try await freshControlDatabase("split")
        defer { database.shutdown() }
        try await database.withConnection { _ = try $0.exec(Self.table) }

        let items = (1...9).map { ($0, $0 == 6 ? nil : "item-\($0)") }
        let refused = Mutex<[Int]>([])
        let answers = try await database.apply(items, statements: { [Self.insert($0.0, $0.1)] }, logger: Logger(label: "test")) {
            item, error in
            #expect(error.sqlState == "23502", "\(error)")
            refused.withLock { $0.append(item.0) }
        }
        #expect(refused.withLock { $0 } == [6])
        #expect(answers.map { $0?.first?.first?["id"] } == items.map { $0.0 == 6 ? nil : String($0.0) })
        let kept = try await database.query("SELECT id FROM items ORDER BY id").values.compactMap { $0[0] }
        #expect(kept == ["1", "2", "3", "4", "5", "7", "8", "9"])
    }
}

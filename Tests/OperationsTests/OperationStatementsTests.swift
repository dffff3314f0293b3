import Testing

@testable import Operations

@Suite("Operation statements")
struct OperationStatementsTests {
    @Test("statements combine into one, their placeholders numbered in order")
    func combined() {
        let (sql, parameters) = OperationStatements.combined([
            ("INSERT INTO a VALUES ($1, $2::int)", ["x", "1"]),
            ("INSERT INTO b VALUES ($1, $2, $1)", ["y", nil]),
        ])
        #expect(sql == "WITH s0 AS (INSERT INTO a VALUES ($1, $2::int)), s1 AS (INSERT INTO b VALUES ($3, $4, $3)) SELECT 1")
        #expect(parameters == ["x", "1", "y", nil])
    }
}

/// The rows a statement returned, as text (libpq's text format), copied out of the PGresult.
public struct PostgresRows: Sendable {
    public let columns: [String]
    public let values: [[String?]]
    /// The number of rows an INSERT, UPDATE or DELETE touched.
    public let affected: Int

    public var count: Int { values.count }
    public var isEmpty: Bool { values.isEmpty }

    public subscript(row: Int) -> PostgresRow {
        PostgresRow(columns: columns, values: values[row])
    }

    public var first: PostgresRow? { values.isEmpty ? nil : self[0] }

    public var rows: [PostgresRow] { values.map { PostgresRow(columns: columns, values: $0) } }
}

public struct PostgresRow: Sendable {
    public let columns: [String]
    public let values: [String?]

    public subscript(_ name: String) -> String? {
        guard let index = columns.firstIndex(of: name) else { return nil }
        return values[index]
    }

    public func string(_ name: String) throws -> String {
        guard let value = self[name] else { throw PostgresError(.decoding, "column \(name) is null or missing") }
        return value
    }

    public func int(_ name: String) -> Int? { self[name].flatMap { Int($0) } }
    public func int64(_ name: String) -> Int64? { self[name].flatMap { Int64($0) } }
    public func bool(_ name: String) -> Bool? { self[name].map { $0 == "t" } }
}

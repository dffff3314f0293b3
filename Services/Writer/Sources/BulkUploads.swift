import CSV
import Connectors
import CMalloc
import Foundation
import HTTPClient
import Logging
import Metrics
import Pipeline
import Postgres
import ProviderAccess
import Shared

/// The CSVs of bulk writes sent as `recordsCSV`, held in the control database until their write ends.
struct BulkUploads: Sendable {
    let database: PostgresPool
    /// Bytes read at a time.
    static let piece = 1 << 20

    /// The stored CSV's bytes from `offset` (0-based), at most `piece` of them; nil when nothing is held
    /// for the operation; empty past the end.
    func piece(_ operationId: String, from offset: Int) async throws -> [UInt8]? {
        let row = try await database.query(
            "SELECT encode(substring(csv FROM $2::int FOR $3::int), 'hex') AS part FROM bulk_uploads WHERE operation_id = $1::uuid",
            [operationId, String(offset + 1), String(Self.piece)]
        ).first
        guard let row else { return nil }
        return Self.unhex(row["part"] ?? "")
    }

    func remove(_ operationId: String) async throws {
        try await database.query("DELETE FROM bulk_uploads WHERE operation_id = $1::uuid", [operationId])
    }

    static func unhex(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count / 2)
        var high: UInt8?
        for character in text.utf8 {
            let value: UInt8
            switch character {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = character - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = character - UInt8(ascii: "a") + 10
            default: continue
            }
            if let first = high {
                bytes.append(first << 4 | value)
                high = nil
            } else {
                high = value
            }
        }
        return bytes
    }
}

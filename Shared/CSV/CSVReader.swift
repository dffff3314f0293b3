import Foundation

/// Reads RFC 4180 CSV incrementally: bytes go in in chunks of any size (a file, an HTTP body as it
/// streams) and each record comes out as soon as it is complete, so memory holds one record at a time
/// whatever the size of the input. Quoted fields may hold delimiters, doubled quotes and line breaks.
/// Problems are reported with the line they are on.
public struct CSVReader: Sendable {
    public enum LineEndings: Sendable {
        /// `\n` only; a `\r` outside quotes is an error (Ampersand's bulk write format).
        case lf
        /// `\n` or `\r\n`; a `\r` outside quotes is dropped.
        case lfOrCRLF
    }

    private enum State {
        case fieldStart, unquoted, quoted, quoteInQuoted, afterQuote
    }

    public let delimiter: UInt8
    public let lineEndings: LineEndings
    /// The line being read, from 1.
    public private(set) var line = 1
    /// Records read so far.
    public private(set) var records = 0
    private var state = State.fieldStart
    private var field: [UInt8] = []
    private var record: [String] = []
    private var quoteLine = 1
    /// The line the record being read began on.
    private var recordLine = 1

    public init(delimiter: UInt8 = UInt8(ascii: ","), lineEndings: LineEndings = .lf) {
        self.delimiter = delimiter
        self.lineEndings = lineEndings
    }

    /// Reads `bytes`, handing each complete record to `emit` with the line it began on.
    public mutating func feed(_ bytes: some Sequence<UInt8>, emit: (_ record: [String], _ line: Int) throws -> Void) throws {
        // Read from contiguous memory: a byte at a time through a generic sequence costs several calls a byte.
        if let done = try bytes.withContiguousStorageIfAvailable({ try feed(buffer: $0, emit: emit) }) { return done }
        try Array(bytes).withUnsafeBufferPointer { try feed(buffer: $0, emit: emit) }
    }

    private mutating func feed(buffer bytes: UnsafeBufferPointer<UInt8>, emit: (_ record: [String], _ line: Int) throws -> Void) throws {
        let quote = UInt8(ascii: "\""), newline = UInt8(ascii: "\n"), carriageReturn = UInt8(ascii: "\r")
        var index = 0
        while index < bytes.count {
            switch state {
            case .quoted:
                // Everything up to the next quote is the field's, line breaks too.
                var end = index
                while end < bytes.count && bytes[end] != quote {
                    if bytes[end] == newline { line += 1 }
                    end += 1
                }
                field.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[index..<end]))
                index = end
                if index < bytes.count {
                    state = .quoteInQuoted
                    index += 1
                }
            case .quoteInQuoted:
                let byte = bytes[index]
                index += 1
                if byte == quote {
                    field.append(byte)
                    state = .quoted
                } else {
                    state = .afterQuote
                    try outside(byte, emit: emit)
                }
            case .fieldStart, .unquoted:
                // A run of ordinary bytes is the field's, taken at once; what ends it goes through `outside`.
                var end = index
                while end < bytes.count {
                    let byte = bytes[end]
                    if byte == delimiter || byte == newline || byte == carriageReturn || byte == quote { break }
                    end += 1
                }
                if end > index {
                    field.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[index..<end]))
                    state = .unquoted
                    index = end
                }
                if index < bytes.count {
                    try outside(bytes[index], emit: emit)
                    index += 1
                }
            case .afterQuote:
                try outside(bytes[index], emit: emit)
                index += 1
            }
        }
    }

    /// Ends the input: hands over the last record if the input did not end with a line break.
    public mutating func finish(emit: (_ record: [String], _ line: Int) throws -> Void) throws {
        switch state {
        case .quoted:
            throw CSVError(line: quoteLine, message: "a quote opened on line \(quoteLine) is never closed")
        case .fieldStart where field.isEmpty && record.isEmpty:
            return
        default:
            endField()
            try endRecord(emit: emit)
        }
    }

    private mutating func outside(_ byte: UInt8, emit: (_ record: [String], _ line: Int) throws -> Void) throws {
        switch byte {
        case delimiter:
            endField()
        case UInt8(ascii: "\n"):
            endField()
            try endRecord(emit: emit)
            line += 1
            recordLine = line
        case UInt8(ascii: "\r"):
            if lineEndings == .lf {
                throw CSVError(line: line, message: "line \(line) ends with CRLF (or holds a carriage return); use LF line endings")
            }
        case UInt8(ascii: "\""):
            guard state == .fieldStart else {
                throw CSVError(line: line, message: "line \(line) has a quote inside an unquoted field; quote the whole field and double its quotes")
            }
            state = .quoted
            quoteLine = line
        default:
            guard state != .afterQuote else {
                throw CSVError(line: line, message: "line \(line) has characters after a closing quote")
            }
            field.append(byte)
            state = .unquoted
        }
    }

    private mutating func endField() {
        record.append(String(decoding: field, as: UTF8.self))
        field.removeAll(keepingCapacity: true)
        state = .fieldStart
    }

    private mutating func endRecord(emit: (_ record: [String], _ line: Int) throws -> Void) throws {
        let done = record
        record.removeAll(keepingCapacity: true)
        records += 1
        try emit(done, recordLine)
    }
}

public struct CSVError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The line of the input, from 1.
    public let line: Int
    public let message: String

    public init(line: Int, message: String) {
        self.line = line
        self.message = message
    }

    public var description: String { message }
}

/// The checks a bulk write's CSV passes before it is accepted: a header of distinct, non-empty column
/// names that holds the primary key, and every row with as many fields as the header.
public struct CSVTableCheck {
    public private(set) var header: [String] = []
    public private(set) var rows = 0
    private var reader = CSVReader()
    private let primaryKey: String?

    public init(primaryKey: String?) {
        self.primaryKey = primaryKey
    }

    /// Reads more of the CSV.
    public mutating func feed(_ bytes: some Sequence<UInt8>) throws {
        var header = self.header
        var rows = self.rows
        let primaryKey = self.primaryKey
        try reader.feed(bytes) { record, line in
            try Self.take(record, header: &header, rows: &rows, primaryKey: primaryKey, line: line)
        }
        self.header = header
        self.rows = rows
    }

    /// Ends the CSV; it must have had a header and at least one row.
    public mutating func finish() throws {
        var header = self.header
        var rows = self.rows
        let primaryKey = self.primaryKey
        try reader.finish { record, line in try Self.take(record, header: &header, rows: &rows, primaryKey: primaryKey, line: line) }
        self.header = header
        self.rows = rows
        guard !header.isEmpty else { throw CSVError(line: 1, message: "the CSV is empty; its first line names the columns") }
        guard rows > 0 else { throw CSVError(line: 2, message: "the CSV has a header but no rows") }
    }

    /// A header's checks: named, distinct columns, the primary key among them.
    public static func checkHeader(_ record: [String], primaryKey: String?) throws(CSVError) {
        if let blank = record.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) {
            throw CSVError(line: 1, message: "column \(blank + 1) of the header has no name")
        }
        var seen: Set<String> = []
        for name in record where !seen.insert(name).inserted {
            throw CSVError(line: 1, message: "column \(name) appears twice in the header")
        }
        if let primaryKey, !record.contains(primaryKey) {
            throw CSVError(line: 1, message: "primaryKey \(primaryKey) is not one of the columns (\(record.joined(separator: ", ")))")
        }
    }

    private static func take(_ record: [String], header: inout [String], rows: inout Int, primaryKey: String?, line: Int) throws {
        guard !header.isEmpty else {
            try checkHeader(record, primaryKey: primaryKey)
            header = record
            return
        }
        guard record.count == header.count else {
            throw CSVError(line: line, message: "line \(line) has \(record.count) fields; the header has \(header.count)")
        }
        rows += 1
    }
}

/// Writes CSV rows: fields holding a delimiter, quote or line break are quoted (`quoteAll`: every
/// field is, as Salesforce writes its result files), quotes doubled; each row ends with LF.
public enum CSVFormat {
    public static func row(_ fields: [String], quoteAll: Bool = false) -> String {
        var bytes: [UInt8] = []
        for (index, field) in fields.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            let quoted = quoteAll || field.utf8.contains { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0A || $0 == 0x0D }
            guard quoted else {
                bytes += field.utf8
                continue
            }
            bytes.append(UInt8(ascii: "\""))
            for byte in field.utf8 {
                if byte == UInt8(ascii: "\"") { bytes.append(byte) }
                bytes.append(byte)
            }
            bytes.append(UInt8(ascii: "\""))
        }
        bytes.append(0x0A)
        return String(decoding: bytes, as: UTF8.self)
    }
}

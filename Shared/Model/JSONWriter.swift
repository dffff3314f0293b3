#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
/// Writes JSON into bytes as `JSONEncoder` with sorted keys and unescaped slashes does (the same bytes),
/// without Codable's machinery: the messages every write sends write themselves through it.
public struct JSONWriter: Sendable {
    public internal(set) var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// A byte of JSON's structure (`{`, `,`, `:`…), as it is: the caller answers for the form.
    public mutating func raw(byte: UInt8) {
        bytes.append(byte)
    }

    public mutating func null() {
        bytes += "null".utf8
    }

    public mutating func bool(_ value: Bool) {
        bytes += value ? "true".utf8 : "false".utf8
    }

    public mutating func integer<T: BinaryInteger>(_ value: T) {
        bytes += String(value).utf8
    }

    /// A number as `JSONEncoder` writes a `Double`: its shortest form, without a `.0` on whole numbers.
    public mutating func number(_ value: Double) {
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        bytes += text.utf8
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    public mutating func string(_ value: String) {
        var value = value
        value.withUTF8 { text in
            bytes.append(UInt8(ascii: "\""))
            defer { bytes.append(UInt8(ascii: "\"")) }
            // Most strings need no escape: they go in whole.
            var clean = true
            for byte in text where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                clean = false
                break
            }
            if clean {
                bytes.append(contentsOf: text)
                return
            }
            for byte in text {
                switch byte {
                case UInt8(ascii: "\""): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
                case UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
                case 0x0A: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
                case 0x0D: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
                case 0x09: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
                case 0x08: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
                case 0x0C: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
                case 0..<0x20:
                    bytes += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), Self.hex[Int(byte >> 4)],
                              Self.hex[Int(byte & 0xF)]]
                default: bytes.append(byte)
                }
            }
        }
    }

    public mutating func value(_ value: JSONValue) {
        switch value {
        case .null: null()
        case .bool(let flag): bool(flag)
        // As `JSONValue` encodes itself: a whole number within a double's exact range as an integer.
        case .number(let number) where number.rounded() == number && abs(number) < 9_007_199_254_740_992: integer(Int64(number))
        case .number(let number): self.number(number)
        case .string(let text): string(text)
        case .array(let items): array(items) { $0.value($1) }
        case .object(let fields): object(fields)
        }
    }

    public mutating func object(_ fields: [String: JSONValue]) {
        bytes.append(UInt8(ascii: "{"))
        var first = true
        for (key, value) in fields.sorted(by: { Self.before($0.key, $1.key) }) {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            string(key)
            bytes.append(UInt8(ascii: ":"))
            self.value(value)
        }
        bytes.append(UInt8(ascii: "}"))
    }

    public mutating func array<Item>(_ items: [Item], _ each: (inout JSONWriter, Item) -> Void) {
        bytes.append(UInt8(ascii: "["))
        for (index, item) in items.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            each(&self, item)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// An object whose fields `build` names in any order: they are written sorted by key.
    public mutating func object(_ build: (inout JSONFields) -> Void) {
        // The fields write into this writer's own bytes, handed over and back without a copy.
        bytes.append(UInt8(ascii: "{"))
        var fields = JSONFields(self)
        bytes = []
        build(&fields)
        fields.close(into: &self)
    }

    /// Keys in the order `JSONEncoder`'s sorted keys puts them: by their UTF-8 bytes.
    public static func before(_ left: String, _ right: String) -> Bool {
        var (left, right) = (left, right)
        return left.withUTF8 { left in
            right.withUTF8 { right in
                let common = min(left.count, right.count)
                if common > 0, let base = left.baseAddress, let other = right.baseAddress {
                    let order = memcmp(base, other, common)
                    if order != 0 { return order < 0 }
                }
                return left.count < right.count
            }
        }
    }
}

/// The fields of one object being written, each written in place as it is named; when the object is
/// closed, fields named out of key order are put in order. An absent optional field is left out, as
/// `encodeIfPresent` does.
public struct JSONFields {
    private var values: JSONWriter
    /// Where the object's `{` is in `values`.
    private let start: Int
    /// Each field's key and the bytes of its value in `values`.
    private var fields: [(key: String, range: Range<Int>)] = []
    private var inOrder = true

    /// `writer`'s bytes end with the object's `{`.
    fileprivate init(_ writer: JSONWriter) {
        values = writer
        start = values.bytes.count - 1
    }

    public mutating func field(_ key: String, _ write: (inout JSONWriter) -> Void) {
        if fields.isEmpty { fields.reserveCapacity(16) }
        if let last = fields.last {
            values.bytes.append(UInt8(ascii: ","))
            if inOrder && !JSONWriter.before(last.key, key) { inOrder = false }
        }
        values.string(key)
        values.bytes.append(UInt8(ascii: ":"))
        let start = values.bytes.count
        write(&values)
        fields.append((key, start..<values.bytes.count))
    }

    public mutating func field(_ key: String, _ value: String?) {
        guard let value else { return }
        field(key) { $0.string(value) }
    }

    public mutating func field(_ key: String, _ value: Bool?) {
        guard let value else { return }
        field(key) { $0.bool(value) }
    }

    public mutating func field<T: BinaryInteger>(_ key: String, _ value: T?) {
        guard let value else { return }
        field(key) { $0.integer(value) }
    }

    public mutating func field(_ key: String, _ value: Double?) {
        guard let value else { return }
        field(key) { $0.number(value) }
    }

    public mutating func field(_ key: String, _ value: JSONValue?) {
        guard let value else { return }
        field(key) { $0.value(value) }
    }

    public mutating func field(_ key: String, _ value: [String: JSONValue]?) {
        guard let value else { return }
        field(key) { $0.object(value) }
    }

    public mutating func field(_ key: String, object value: (some JSONWritable)?) {
        guard let value else { return }
        field(key) { writer in writer.object { value.writeFields(into: &$0) } }
    }

    /// Ends the object and hands the bytes back to `writer`.
    fileprivate mutating func close(into writer: inout JSONWriter) {
        // Fields named in key order (as the busiest messages name theirs) are in place already.
        if !inOrder {
            // This object's bytes alone are set apart (the buffer holds all that came before it).
            let base = start + 1
            let written = Array(values.bytes[base...])
            values.bytes.removeSubrange(base...)
            for (index, field) in fields.sorted(by: { JSONWriter.before($0.key, $1.key) }).enumerated() {
                if index > 0 { values.bytes.append(UInt8(ascii: ",")) }
                values.string(field.key)
                values.bytes.append(UInt8(ascii: ":"))
                values.bytes += written[(field.range.lowerBound - base)..<(field.range.upperBound - base)]
            }
        }
        values.bytes.append(UInt8(ascii: "}"))
        writer.bytes = values.bytes
        values.bytes = []
    }
}

/// A value that writes itself as the fields of a JSON object (several may share one object, as an
/// operation message's identity and content do), for `JSONCoding.encode`.
public protocol JSONWritable {
    func writeFields(into fields: inout JSONFields)
}

extension JSONWritable {
    /// The value as a JSON object, as `JSONCoding.encode` writes it.
    public func jsonBytes() -> [UInt8] {
        // Room for most messages at once.
        var writer = JSONWriter(capacity: 1024)
        writer.object { writeFields(into: &$0) }
        return writer.bytes
    }
}

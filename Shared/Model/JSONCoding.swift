import Foundation

/// One place for the wire format of every message and stored document: sorted keys so that equal
/// values give equal bytes (idempotency hashes and tests rely on it). The messages of every write, and
/// any JSON value, are read and written by `JSONReader` and `JSONWriter` (the same bytes, a fraction of
/// the work); everything else by Foundation's coders.
public enum JSONCoding {
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        if let message = value as? any JSONWritable { return message.jsonBytes() }
        if let list = value as? [any JSONWritable] {
            var writer = JSONWriter(capacity: 1024)
            writer.array(list) { writer, item in writer.object { item.writeFields(into: &$0) } }
            return writer.bytes
        }
        if let value = value as? JSONValue {
            var writer = JSONWriter()
            writer.value(value)
            return writer.bytes
        }
        if let fields = value as? [String: JSONValue] {
            var writer = JSONWriter()
            writer.object(fields)
            return writer.bytes
        }
        if let fields = value as? [String: String] {
            var writer = JSONWriter()
            writer.object(fields.mapValues(JSONValue.string))
            return writer.bytes
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(value))
    }

    public static func encodeString<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encode(value), as: UTF8.self)
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: some Collection<UInt8>) throws -> T {
        if let readable = T.self as? any JSONReadable.Type {
            return try readable.init(json: JSONFieldReader(JSONReader.read(bytes), type: "\(T.self)")) as! T
        }
        if T.self == JSONValue.self { return try JSONReader.read(bytes) as! T }
        if T.self == [String: JSONValue].self {
            guard case .object(let fields) = try JSONReader.read(bytes) else {
                throw JSONFieldError(type: "\(T.self)", key: "(value)", problem: "is not an object")
            }
            return fields as! T
        }
        return try JSONDecoder().decode(type, from: Data(bytes))
    }

    public static func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        try decode(type, from: text.utf8)
    }
}

/// Timestamps on the wire: RFC 3339 with microseconds, UTC.
public enum Timestamp {
    public static func now() -> String { format(Date()) }

    public static func format(_ date: Date) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded())
        var seconds = micros / 1_000_000
        var fraction = micros % 1_000_000
        if fraction < 0 {
            seconds -= 1
            fraction += 1_000_000
        }
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        // Digits placed by hand: `String(format:)` costs several microseconds, and every write takes a few.
        var bytes = [UInt8](repeating: 0, count: 27)
        func put(_ value: Int, at start: Int, digits: Int) {
            var value = value
            for index in stride(from: start + digits - 1, through: start, by: -1) {
                bytes[index] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
            }
        }
        put(Int(parts.tm_year) + 1900, at: 0, digits: 4)
        put(Int(parts.tm_mon) + 1, at: 5, digits: 2)
        put(Int(parts.tm_mday), at: 8, digits: 2)
        put(Int(parts.tm_hour), at: 11, digits: 2)
        put(Int(parts.tm_min), at: 14, digits: 2)
        put(Int(parts.tm_sec), at: 17, digits: 2)
        put(Int(fraction), at: 20, digits: 6)
        for (index, separator) in [(4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "."), (26, "Z")] as [(Int, Unicode.Scalar)] {
            bytes[index] = UInt8(ascii: separator)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Reads a timestamp written by `format` (`2026-11-26T12:00:00.123456Z`, fraction optional); nil when
    /// it is not one.
    public static func parse(_ text: String) -> Date? {
        let characters = Array(text.utf8)
        guard characters.count >= 20, characters.last == UInt8(ascii: "Z") else { return nil }
        func number(_ from: Int, _ count: Int) -> Int32? {
            Int32(String(decoding: characters[from..<(from + count)], as: UTF8.self))
        }
        guard let year = number(0, 4), let month = number(5, 2), let day = number(8, 2), let hour = number(11, 2),
            let minute = number(14, 2), let second = number(17, 2)
        else { return nil }
        var parts = tm()
        parts.tm_year = year - 1900
        parts.tm_mon = month - 1
        parts.tm_mday = day
        parts.tm_hour = hour
        parts.tm_min = minute
        parts.tm_sec = second
        let fraction = characters.count > 21 && characters[19] == UInt8(ascii: ".")
            ? Double("0" + String(decoding: characters[19..<(characters.count - 1)], as: UTF8.self)) ?? 0 : 0
        return Date(timeIntervalSince1970: Double(timegm(&parts)) + fraction)
    }

    /// Microseconds since the epoch: the version a change event carries so that an older event never
    /// overwrites a newer one.
    public static func microsNow() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1_000_000).rounded())
    }
}

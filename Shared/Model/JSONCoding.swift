import Foundation

/// One place for the wire format of every message and stored document: sorted keys so that equal
/// values give equal bytes (idempotency hashes and tests rely on it). The messages of every write, and
/// any JSON value, are read and written by `JSONReader` and `JSONWriter` (the same bytes, a fraction of
/// the work); everything else by Foundation's coders.
public enum JSONCoding {
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        if let message = value as? any JSONWritable { return message.jsonBytes() }
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
        let seconds = micros / 1_000_000
        let fraction = micros % 1_000_000
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
            Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), Int(fraction))
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

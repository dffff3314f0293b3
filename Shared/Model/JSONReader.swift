/// Reads JSON text into a `JSONValue` in one pass over its bytes (RFC 8259: any value at the top, no
/// trailing text but whitespace; like Foundation's reader it lets a comma end an object or an array),
/// without Codable's machinery: the messages every write sends are read through it.
public struct JSONReader {
    public struct Failure: Error, CustomStringConvertible {
        public var message: String
        public var offset: Int
        public var description: String { "the data is not valid JSON: \(message) at byte \(offset)" }
    }

    /// Nesting deeper than this is refused rather than read.
    static let maxDepth = 512

    public static func read(_ bytes: some Collection<UInt8>) throws -> JSONValue {
        try read(bytes, setAside: []).value
    }

    /// Reads the value, except the member at `path` (keys from the top, e.g. `["data", "fields"]`): it is
    /// checked to be well-formed JSON and its text answered as it is, and stands as an empty object in
    /// the value. For a consumer that passes that member on (to a jsonb column) without looking into it.
    public static func read(_ bytes: some Collection<UInt8>, setAside path: [String]) throws -> (value: JSONValue, setAside: String?) {
        let read = bytes.withContiguousStorageIfAvailable { try? parse($0, setAside: path) }
        if let read, let value = read { return value }
        return try Array(bytes).withUnsafeBufferPointer { try parse($0, setAside: path) }
    }

    private static func parse(_ buffer: UnsafeBufferPointer<UInt8>, setAside path: [String]) throws -> (value: JSONValue, setAside: String?) {
        var reader = Cursor(buffer: buffer, path: path)
        // A byte order mark is allowed before the value, as Foundation's reader allows it.
        if buffer.count >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF { reader.position = 3 }
        reader.skipSpace()
        let value = try reader.value(depth: 0, onPath: !path.isEmpty)
        reader.skipSpace()
        guard reader.position == buffer.count else { throw reader.failure("unexpected text after the value") }
        return (value, reader.setAside)
    }

    private struct Cursor {
        let buffer: UnsafeBufferPointer<UInt8>
        var position = 0
        /// The member to set aside, and its text once read.
        let path: [String]
        var setAside: String?

        init(buffer: UnsafeBufferPointer<UInt8>, path: [String]) {
            self.buffer = buffer
            self.path = path
        }

        func failure(_ message: String) -> Failure { Failure(message: message, offset: position) }

        var current: UInt8? { position < buffer.count ? buffer[position] : nil }

        mutating func skipSpace() {
            while position < buffer.count {
                switch buffer[position] {
                case 0x20, 0x0A, 0x0D, 0x09: position += 1
                default: return
                }
            }
        }

        mutating func expect(_ word: String, _ value: JSONValue) throws -> JSONValue {
            for byte in word.utf8 {
                guard current == byte else { throw failure("unexpected character") }
                position += 1
            }
            return value
        }

        /// `onPath`: the value is where `path[..<depth]` leads.
        mutating func value(depth: Int, onPath: Bool = false) throws -> JSONValue {
            guard depth < JSONReader.maxDepth else { throw failure("nested too deeply") }
            guard let byte = current else { throw failure("unexpected end") }
            switch byte {
            case UInt8(ascii: "{"): return try object(depth: depth, onPath: onPath)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): return try expect("true", .bool(true))
            case UInt8(ascii: "f"): return try expect("false", .bool(false))
            case UInt8(ascii: "n"): return try expect("null", .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
            default: throw failure("unexpected character")
            }
        }

        mutating func object(depth: Int, onPath: Bool) throws -> JSONValue {
            position += 1
            var fields: [String: JSONValue] = [:]
            skipSpace()
            if current == UInt8(ascii: "}") {
                position += 1
                return .object(fields)
            }
            // Room for a message's fields at once: growing a dictionary one doubling at a time rehashes
            // what it holds each time.
            fields.reserveCapacity(8)
            while true {
                skipSpace()
                if current == UInt8(ascii: "}") && !fields.isEmpty {
                    position += 1
                    return .object(fields)
                }
                guard current == UInt8(ascii: "\"") else { throw failure("expected a key") }
                let key = try string()
                skipSpace()
                guard current == UInt8(ascii: ":") else { throw failure("expected ':'") }
                position += 1
                skipSpace()
                if onPath && key == path[depth] {
                    if depth + 1 == path.count {
                        let start = position
                        try skip(depth: depth + 1)
                        setAside = String(decoding: UnsafeBufferPointer(rebasing: buffer[start..<position]), as: UTF8.self)
                        fields[key] = .object([:])
                    } else {
                        fields[key] = try value(depth: depth + 1, onPath: true)
                    }
                } else {
                    fields[key] = try value(depth: depth + 1)
                }
                skipSpace()
                switch current {
                case UInt8(ascii: ","): position += 1
                case UInt8(ascii: "}"):
                    position += 1
                    return .object(fields)
                default: throw failure("expected ',' or '}'")
                }
            }
        }

        mutating func array(depth: Int) throws -> JSONValue {
            position += 1
            var items: [JSONValue] = []
            skipSpace()
            if current == UInt8(ascii: "]") {
                position += 1
                return .array(items)
            }
            while true {
                skipSpace()
                if current == UInt8(ascii: "]") && !items.isEmpty {
                    position += 1
                    return .array(items)
                }
                items.append(try value(depth: depth + 1))
                skipSpace()
                switch current {
                case UInt8(ascii: ","): position += 1
                case UInt8(ascii: "]"):
                    position += 1
                    return .array(items)
                default: throw failure("expected ',' or ']'")
                }
            }
        }

        mutating func string() throws -> String {
            position += 1
            let start = position
            // Bits set in any byte: below 0x80, the string is ASCII and needs no UTF-8 validation (which
            // `String(validating:)` does through unspecialized generic code, costing more than the parse).
            var bits: UInt8 = 0
            // Most strings have no escapes: they are taken as they are.
            while position < buffer.count {
                let byte = buffer[position]
                if byte == UInt8(ascii: "\"") {
                    let slice = UnsafeBufferPointer(rebasing: buffer[start..<position])
                    let text = bits < 0x80 ? String(decoding: slice, as: UTF8.self) : String(validating: slice, as: UTF8.self)
                    guard let text else { throw failure("a string that is not UTF-8") }
                    position += 1
                    return text
                }
                bits |= byte
                if byte == UInt8(ascii: "\\") { break }
                guard byte >= 0x20 else { throw failure("a control character in a string") }
                position += 1
            }
            var bytes = Array(buffer[start..<position])
            while position < buffer.count {
                let byte = buffer[position]
                position += 1
                switch byte {
                case UInt8(ascii: "\""):
                    guard let text = String(validating: bytes, as: UTF8.self) else { throw failure("a string that is not UTF-8") }
                    return text
                case UInt8(ascii: "\\"):
                    guard let escaped = current else { throw failure("unexpected end") }
                    position += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): bytes.append(escaped)
                    case UInt8(ascii: "b"): bytes.append(0x08)
                    case UInt8(ascii: "f"): bytes.append(0x0C)
                    case UInt8(ascii: "n"): bytes.append(0x0A)
                    case UInt8(ascii: "r"): bytes.append(0x0D)
                    case UInt8(ascii: "t"): bytes.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try hex4()
                        if (0xD800..<0xDC00).contains(scalar) {
                            // A high surrogate pairs with the low one that follows.
                            guard current == UInt8(ascii: "\\"), position + 1 < buffer.count, buffer[position + 1] == UInt8(ascii: "u")
                            else { throw failure("a lone surrogate") }
                            position += 2
                            let low = try hex4()
                            guard (0xDC00..<0xE000).contains(low) else { throw failure("a lone surrogate") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00..<0xE000).contains(scalar) {
                            throw failure("a lone surrogate")
                        }
                        guard let unicode = Unicode.Scalar(scalar) else { throw failure("an invalid escape") }
                        bytes += Array(String(Character(unicode)).utf8)
                    default:
                        throw failure("an invalid escape")
                    }
                default:
                    guard byte >= 0x20 else { throw failure("a control character in a string") }
                    bytes.append(byte)
                }
            }
            throw failure("an unterminated string")
        }

        /// Passes over a value, checking its form as `value` does but building nothing (its strings'
        /// escapes are checked for form, not decoded).
        mutating func skip(depth: Int) throws {
            guard depth < JSONReader.maxDepth else { throw failure("nested too deeply") }
            guard let byte = current else { throw failure("unexpected end") }
            switch byte {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let object = byte == UInt8(ascii: "{")
                let close = object ? UInt8(ascii: "}") : UInt8(ascii: "]")
                position += 1
                skipSpace()
                if current == close {
                    position += 1
                    return
                }
                while true {
                    skipSpace()
                    if object {
                        guard current == UInt8(ascii: "\"") else { throw failure("expected a key") }
                        try skipString()
                        skipSpace()
                        guard current == UInt8(ascii: ":") else { throw failure("expected ':'") }
                        position += 1
                        skipSpace()
                    }
                    try skip(depth: depth + 1)
                    skipSpace()
                    switch current {
                    case UInt8(ascii: ","):
                        position += 1
                        skipSpace()
                        // A comma may end an object or an array, as `object` and `array` allow it.
                        if current == close {
                            position += 1
                            return
                        }
                    case close:
                        position += 1
                        return
                    default: throw failure(object ? "expected ',' or '}'" : "expected ',' or ']'")
                    }
                }
            case UInt8(ascii: "\""): try skipString()
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try number()
            default: _ = try value(depth: depth)
            }
        }

        mutating func skipString() throws {
            position += 1
            var bits: UInt8 = 0
            let start = position
            while position < buffer.count {
                let byte = buffer[position]
                position += 1
                switch byte {
                case UInt8(ascii: "\""):
                    if bits >= 0x80 {
                        guard String(validating: UnsafeBufferPointer(rebasing: buffer[start..<position - 1]), as: UTF8.self) != nil
                        else { throw failure("a string that is not UTF-8") }
                    }
                    return
                case UInt8(ascii: "\\"):
                    guard let escaped = current else { throw failure("unexpected end") }
                    position += 1
                    switch escaped {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
                         UInt8(ascii: "r"), UInt8(ascii: "t"):
                        break
                    case UInt8(ascii: "u"): _ = try hex4()
                    default: throw failure("an invalid escape")
                    }
                default:
                    guard byte >= 0x20 else { throw failure("a control character in a string") }
                    bits |= byte
                }
            }
            throw failure("an unterminated string")
        }

        mutating func hex4() throws -> UInt32 {
            guard position + 4 <= buffer.count else { throw failure("unexpected end") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = buffer[position]
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw failure("an invalid escape")
                }
                value = value << 4 | UInt32(digit)
                position += 1
            }
            return value
        }

        mutating func number() throws -> Double {
            let start = position
            if current == UInt8(ascii: "-") { position += 1 }
            guard let first = current, first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9") else { throw failure("an invalid number") }
            position += 1
            if first != UInt8(ascii: "0") { digits() }
            var integral = true
            if current == UInt8(ascii: ".") {
                integral = false
                position += 1
                guard digits() > 0 else { throw failure("an invalid number") }
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                integral = false
                position += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
                guard digits() > 0 else { throw failure("an invalid number") }
            }
            let text = UnsafeBufferPointer(rebasing: buffer[start..<position])
            // Whole numbers of up to 15 digits are exact as they are summed; others go through the parser.
            if integral && text.count <= 16 {
                var value: Int64 = 0
                var negative = false
                for byte in text {
                    if byte == UInt8(ascii: "-") { negative = true } else { value = value * 10 + Int64(byte - UInt8(ascii: "0")) }
                }
                return negative ? (value == 0 ? -0.0 : -Double(value)) : Double(value)
            }
            guard let value = Double(String(decoding: text, as: UTF8.self)), value.isFinite else { throw failure("an invalid number") }
            return value
        }

        @discardableResult
        mutating func digits() -> Int {
            let start = position
            while let byte = current, byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") { position += 1 }
            return position - start
        }
    }
}

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
        let read = bytes.withContiguousStorageIfAvailable { try? parse($0) }
        if let read, let value = read { return value }
        return try Array(bytes).withUnsafeBufferPointer { try parse($0) }
    }

    private static func parse(_ buffer: UnsafeBufferPointer<UInt8>) throws -> JSONValue {
        var reader = Cursor(buffer: buffer)
        // A byte order mark is allowed before the value, as Foundation's reader allows it.
        if buffer.count >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF { reader.position = 3 }
        reader.skipSpace()
        let value = try reader.value(depth: 0)
        reader.skipSpace()
        guard reader.position == buffer.count else { throw reader.failure("unexpected text after the value") }
        return value
    }

    fileprivate struct Cursor {
        let buffer: UnsafeBufferPointer<UInt8>
        var position = 0
        /// What was read holds what a strict reader (PostgreSQL's jsonb) refuses though this one lets it
        /// go: a comma ending an object or a list, a number whose exponent has more than three digits.
        var loose = false

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

        mutating func value(depth: Int) throws -> JSONValue {
            guard depth < JSONReader.maxDepth else { throw failure("nested too deeply") }
            guard let byte = current else { throw failure("unexpected end") }
            switch byte {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): return try expect("true", .bool(true))
            case UInt8(ascii: "f"): return try expect("false", .bool(false))
            case UInt8(ascii: "n"): return try expect("null", .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
            default: throw failure("unexpected character")
            }
        }

        mutating func object(depth: Int) throws -> JSONValue {
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
                fields[key] = try value(depth: depth + 1)
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
                        let scalar = try unicodeEscape()
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
                            loose = true
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
                // Eight plain characters at a time, the common case of a string's text.
                if position + 8 <= buffer.count,
                   Self.plain(UnsafeRawPointer(buffer.baseAddress! + position).loadUnaligned(as: UInt64.self)) {
                    position += 8
                    continue
                }
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
                    case UInt8(ascii: "u"): _ = try unicodeEscape()
                    default: throw failure("an invalid escape")
                    }
                default:
                    guard byte >= 0x20 else { throw failure("a control character in a string") }
                    bits |= byte
                }
            }
            throw failure("an unterminated string")
        }

        /// Whether none of a word's eight bytes ends a string, starts an escape, is a control character or
        /// is part of a multi-byte UTF-8 sequence (each is printable ASCII other than `"` and `\`).
        @inline(__always)
        static func plain(_ word: UInt64) -> Bool {
            let ones: UInt64 = 0x0101_0101_0101_0101
            let highs: UInt64 = 0x8080_8080_8080_8080
            // A lane below `n` (n <= 128) sets its high bit in `(w - n) & ~w`; a lane equal to a byte is a
            // zero lane of `w ^ byte`.
            func below(_ w: UInt64, _ n: UInt64) -> Bool { (w &- ones &* n) & ~w & highs != 0 }
            return word & highs == 0 && !below(word, 0x20)
                && !below(word ^ (ones &* 0x22), 1) && !below(word ^ (ones &* 0x5C), 1)
        }

        /// The scalar of a `\u` escape whose four digits come next: a high surrogate only with the low
        /// one that follows it.
        mutating func unicodeEscape() throws -> UInt32 {
            let scalar = try hex4()
            if (0xD800..<0xDC00).contains(scalar) {
                guard current == UInt8(ascii: "\\"), position + 1 < buffer.count, buffer[position + 1] == UInt8(ascii: "u")
                else { throw failure("a lone surrogate") }
                position += 2
                let low = try hex4()
                guard (0xDC00..<0xE000).contains(low) else { throw failure("a lone surrogate") }
                return 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            }
            guard !(0xDC00..<0xE000).contains(scalar) else { throw failure("a lone surrogate") }
            return scalar
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
                let exponent = digits()
                guard exponent > 0 else { throw failure("an invalid number") }
                if exponent > 3 { loose = true }
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

/// Reads a JSON object a member at a time, straight from its bytes, for a reader that knows the shape it
/// expects: each member's value is read as what the reader asks of it (or passed over when not asked),
/// and nothing is built that the reader does not keep. A scanner is valid only inside the closure it is
/// given to.
public struct JSONScanner {
    fileprivate var cursor: JSONReader.Cursor
    /// The member being read, and the type its object is read as, for the errors.
    public fileprivate(set) var key: String
    let type: String

    /// Reads the object `bytes` hold: `member` is called with each key and the scanner at its value.
    public static func members(of bytes: [UInt8], type: String, _ member: (inout JSONScanner) throws -> Void) throws {
        try bytes.withUnsafeBufferPointer { buffer in
            var scanner = JSONScanner(cursor: JSONReader.Cursor(buffer: buffer), key: "(value)", type: type)
            if buffer.count >= 3 && buffer[0] == 0xEF && buffer[1] == 0xBB && buffer[2] == 0xBF { scanner.cursor.position = 3 }
            scanner.cursor.skipSpace()
            try scanner.members(type: type, member)
            scanner.cursor.skipSpace()
            guard scanner.cursor.position == buffer.count else { throw scanner.cursor.failure("unexpected text after the value") }
        }
    }

    public func wrong(_ problem: String) -> JSONFieldError { JSONFieldError(type: type, key: key, problem: problem) }

    /// The value is an object: `member` is called with the scanner at each of its members in turn.
    public mutating func members(type: String, _ member: (inout JSONScanner) throws -> Void) throws {
        guard cursor.current == UInt8(ascii: "{") else { throw wrong("is not an object") }
        cursor.position += 1
        cursor.skipSpace()
        if cursor.current == UInt8(ascii: "}") {
            cursor.position += 1
            return
        }
        var inner = JSONScanner(cursor: cursor, key: "", type: type)
        var count = 0
        while true {
            inner.cursor.skipSpace()
            if inner.cursor.current == UInt8(ascii: "}") && count > 0 {
                inner.cursor.position += 1
                inner.cursor.loose = true
                break
            }
            guard inner.cursor.current == UInt8(ascii: "\"") else { throw inner.cursor.failure("expected a key") }
            inner.key = try inner.cursor.string()
            inner.cursor.skipSpace()
            guard inner.cursor.current == UInt8(ascii: ":") else { throw inner.cursor.failure("expected ':'") }
            inner.cursor.position += 1
            inner.cursor.skipSpace()
            let start = inner.cursor.position
            try member(&inner)
            // A value not asked for is passed over.
            if inner.cursor.position == start { try inner.cursor.skip(depth: 1) }
            count += 1
            inner.cursor.skipSpace()
            switch inner.cursor.current {
            case UInt8(ascii: ","): inner.cursor.position += 1
            case UInt8(ascii: "}"):
                inner.cursor.position += 1
                cursor = inner.cursor
                return
            default: throw inner.cursor.failure("expected ',' or '}'")
            }
        }
        cursor = inner.cursor
    }

    /// The value `read` reads, or nil when it is `null`, which is as good as absent (and passed over).
    public mutating func orNil<T>(_ read: (inout JSONScanner) throws -> T) throws -> T? {
        try null() ? nil : read(&self)
    }

    /// Whether the value is `null` (which is then passed over).
    public mutating func null() throws -> Bool {
        guard cursor.current == UInt8(ascii: "n") else { return false }
        _ = try cursor.expect("null", .null)
        return true
    }

    public mutating func string() throws -> String {
        guard cursor.current == UInt8(ascii: "\"") else { throw wrong(cursor.current == UInt8(ascii: "n") ? "is missing" : "is not a string") }
        return try cursor.string()
    }

    public mutating func bool() throws -> Bool {
        switch cursor.current {
        case UInt8(ascii: "t"): _ = try cursor.expect("true", .null); return true
        case UInt8(ascii: "f"): _ = try cursor.expect("false", .null); return false
        default: throw wrong("is not a boolean")
        }
    }

    /// A whole number that `T` holds exactly.
    public mutating func integer<T: FixedWidthInteger>(as: T.Type = T.self) throws -> T {
        guard let byte = cursor.current, byte == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else {
            throw wrong("is not a whole number")
        }
        let number = try cursor.number()
        guard number.rounded() == number, let exact = T(exactly: number) else { throw wrong("is not a whole number") }
        return exact
    }

    /// A string that is one of `T`'s values.
    public mutating func raw<T: RawRepresentable>(_ type: T.Type) throws -> T where T.RawValue == String {
        guard let value = T(rawValue: try string()) else { throw wrong("is not one of its values") }
        return value
    }

    /// The value is an object: its JSON text, checked for form but not read.
    public mutating func object() throws -> String {
        guard cursor.current == UInt8(ascii: "{") else { throw wrong("is not an object") }
        return try verbatim()
    }

    /// The value read as `T` (an object), the whole way.
    public mutating func nested<T: JSONReadable>(_ type: T.Type) throws -> T {
        let text = try object()
        return try T(json: JSONFieldReader(JSONCoding.decode(JSONValue.self, from: Array(text.utf8)), type: "\(T.self)"))
    }

    /// The value is a list: `element` is called with the scanner at each of its values in turn (a value
    /// it does not read is passed over). Answers the list's JSON text.
    public mutating func elements(_ element: (inout JSONScanner) throws -> Void) throws -> String {
        guard cursor.current == UInt8(ascii: "[") else { throw wrong("is not an array") }
        return try strictText { scanner in
            scanner.cursor.position += 1
            scanner.cursor.skipSpace()
            if scanner.cursor.current == UInt8(ascii: "]") {
                scanner.cursor.position += 1
                return
            }
            var inner = JSONScanner(cursor: scanner.cursor, key: scanner.key, type: scanner.type)
            list: while true {
                inner.cursor.skipSpace()
                let at = inner.cursor.position
                try element(&inner)
                if inner.cursor.position == at { try inner.cursor.skip(depth: 2) }
                inner.cursor.skipSpace()
                switch inner.cursor.current {
                case UInt8(ascii: ","):
                    inner.cursor.position += 1
                    inner.cursor.skipSpace()
                    // A comma may end the list, as the whole read allows it.
                    if inner.cursor.current == UInt8(ascii: "]") {
                        inner.cursor.position += 1
                        inner.cursor.loose = true
                        break list
                    }
                case UInt8(ascii: "]"):
                    inner.cursor.position += 1
                    break list
                default: throw inner.cursor.failure("expected ',' or ']'")
                }
            }
            scanner.cursor = inner.cursor
        }
    }

    /// The value is a list of objects: how many it holds (each checked for form, not read).
    public mutating func countObjects() throws -> Int {
        var count = 0
        _ = try elements { element in
            guard element.cursor.current == UInt8(ascii: "{") else { throw element.wrong("holds a value that is not an object") }
            count += 1
        }
        return count
    }

    /// The value as its JSON text, checked for form but not read.
    public mutating func verbatim() throws -> String {
        try strictText { try $0.cursor.skip(depth: 1) }
    }

    /// The JSON text of the value `read` passes over: as it is, or, when it holds what a strict reader
    /// refuses (a comma ending an object or list, an exponent of more than three digits), written
    /// again from its value, so that a database's jsonb takes what this reader took.
    private mutating func strictText(_ read: (inout JSONScanner) throws -> Void) throws -> String {
        let start = cursor.position
        let wasLoose = cursor.loose
        cursor.loose = false
        try read(&self)
        let text = String(decoding: UnsafeBufferPointer(rebasing: cursor.buffer[start..<cursor.position]), as: UTF8.self)
        defer { cursor.loose = cursor.loose || wasLoose }
        guard cursor.loose else { return text }
        return try JSONCoding.encodeString(JSONCoding.decode(JSONValue.self, from: Array(text.utf8)))
    }
}

/// The string members a message must have, read by name as a `JSONScanner` meets them.
public struct JSONRequiredStrings {
    public let names: [String]
    let type: String
    private var values: [String?]

    public init(_ names: [String], type: String) {
        self.names = names
        self.type = type
        values = Array(repeating: nil, count: names.count)
    }

    /// Reads `member` when its key is one of the names (a null, as good as absent, forgets an earlier
    /// value; repeated, the last counts): whether it was one.
    public mutating func read(_ member: inout JSONScanner) throws -> Bool {
        guard let index = names.firstIndex(of: member.key) else { return false }
        values[index] = try member.orNil { try $0.string() }
        return true
    }

    /// Every value, in the order of the names; throws naming the first one missing.
    public func all() throws -> [String] {
        try zip(names, values).map { name, value in
            guard let value else { throw JSONFieldError(type: type, key: name, problem: "is missing") }
            return value
        }
    }
}

extension OperationIdentity {
    /// The members of an identity but its type, in the order `init(strings:type:)` takes them.
    public static let stringMembers = ["operationId", "projectId", "integrationId", "installationId", "groupRef", "objectName"]

    /// An identity from the values of `stringMembers`, in their order (more may follow).
    public init(strings values: [String], type: WriteType) {
        self.init(operationId: values[0], projectId: values[1], integrationId: values[2], installationId: values[3], groupRef: values[4],
                  objectName: values[5], type: type)
    }
}

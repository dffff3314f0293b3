/// Array literals for statement parameters, so that one statement takes many rows
/// (`INSERT … SELECT … FROM unnest($1::uuid[], $2::text[], …)`) instead of one statement per row.
public enum PostgresArray {
    /// `{"a","b \"c\"",NULL}`: every element double-quoted with its quotes and backslashes escaped; nil
    /// is NULL.
    public static func literal(_ values: [String?]) -> String {
        var size = 2
        for value in values { size += (value?.utf8.count ?? 4) + 3 }
        var bytes: [UInt8] = []
        // Room for the elements and a few escapes at once.
        bytes.reserveCapacity(size + size / 16)
        bytes.append(UInt8(ascii: "{"))
        for (index, value) in values.enumerated() {
            if index > 0 { bytes.append(UInt8(ascii: ",")) }
            guard var value else {
                bytes += "NULL".utf8
                continue
            }
            bytes.append(UInt8(ascii: "\""))
            value.withUTF8 { text in
                var run = 0
                for (offset, byte) in text.enumerated() where byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                    bytes += UnsafeBufferPointer(rebasing: text[run..<offset])
                    bytes.append(UInt8(ascii: "\\"))
                    run = offset
                }
                bytes += UnsafeBufferPointer(rebasing: text[run...])
            }
            bytes.append(UInt8(ascii: "\""))
        }
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func literal(_ values: some Sequence<String?>) -> String {
        literal(Array(values))
    }

    public static func literal(_ values: some Sequence<String>) -> String {
        literal(values.map { Optional($0) })
    }
}

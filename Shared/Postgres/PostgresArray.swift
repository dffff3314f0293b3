/// Array literals for statement parameters, so that one statement takes many rows
/// (`INSERT … SELECT … FROM unnest($1::uuid[], $2::text[], …)`) instead of one statement per row.
public enum PostgresArray {
    /// `{"a","b \"c\"",NULL}`: every element double-quoted with its quotes and backslashes escaped; nil
    /// is NULL.
    public static func literal(_ values: some Sequence<String?>) -> String {
        var bytes: [UInt8] = [UInt8(ascii: "{")]
        var first = true
        for value in values {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            guard let value else {
                bytes += "NULL".utf8
                continue
            }
            bytes.append(UInt8(ascii: "\""))
            for byte in value.utf8 {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { bytes.append(UInt8(ascii: "\\")) }
                bytes.append(byte)
            }
            bytes.append(UInt8(ascii: "\""))
        }
        bytes.append(UInt8(ascii: "}"))
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func literal(_ values: some Sequence<String>) -> String {
        literal(values.lazy.map { Optional($0) })
    }
}

import CSV
import Foundation
import Testing

@Suite("CSV reading")
struct CSVTests {
    func read(_ text: String, chunk: Int = .max, lineEndings: CSVReader.LineEndings = .lf) throws -> [[String]] {
        var reader = CSVReader(lineEndings: lineEndings)
        var rows: [[String]] = []
        let bytes = Array(text.utf8)
        var start = 0
        while start < bytes.count {
            let end = min(bytes.count, start + chunk)
            try reader.feed(bytes[start..<end]) { record, _ in rows.append(record) }
            start = end
        }
        try reader.finish { record, _ in rows.append(record) }
        return rows
    }

    @Test("quoted fields hold delimiters, doubled quotes, line breaks and any UTF-8, whatever the chunks the bytes come in")
    func quoting() throws {
        let text = "id,name,note\n1,\"Lovelace, Ada\",\"said \"\"hi\"\"\"\n2,Bäbbage,\"two\nlines\"\n3,,émoji 🚀"
        let expected = [["id", "name", "note"], ["1", "Lovelace, Ada", "said \"hi\""], ["2", "Bäbbage", "two\nlines"], ["3", "", "émoji 🚀"]]
        #expect(try read(text) == expected)
        for chunk in 1...7 { #expect(try read(text, chunk: chunk) == expected, "chunks of \(chunk)") }
        #expect(try read("a,b\n1,2\n") == [["a", "b"], ["1", "2"]])
        #expect(try read("a,b\r\n1,2\r\n", lineEndings: .lfOrCRLF) == [["a", "b"], ["1", "2"]])
        #expect(try read("") == [])
    }

    @Test("rows written quote only what needs it (or every field when asked) and read back as they were")
    func writing() throws {
        let fields = ["1", "Lovelace, Ada", "said \"hi\"", "two\nlines", "", "émoji 🚀", "cr\r"]
        let row = CSVFormat.row(fields)
        #expect(row == "1,\"Lovelace, Ada\",\"said \"\"hi\"\"\",\"two\nlines\",,émoji 🚀,\"cr\r\"\n")
        #expect(CSVFormat.row(["a", "b"], quoteAll: true) == "\"a\",\"b\"\n")
        #expect(try read(row, lineEndings: .lfOrCRLF) == [fields])
    }

    @Test("CRLF, stray and unclosed quotes are refused with their line, whatever the chunks the bytes come in")
    func refused() {
        for chunk in [Int.max, 1, 2, 3, 5] {
            func error(_ text: String) -> CSVError? {
                do {
                    _ = try read(text, chunk: chunk)
                    return nil
                } catch {
                    return error as? CSVError
                }
            }
            #expect(error("a,b\r\n1,2\r\n")?.line == 1)
            #expect(error("a,b\r\n1,2\r\n")?.message.contains("use LF") == true)
            #expect(error("a,b\n1,x\"y\n")?.line == 2)
            #expect(error("a,b\n1,\"x\"y\n")?.message.contains("after a closing quote") == true)
            #expect(error("a,b\n1,2\n3,\"open\nstill open")?.line == 3)
            #expect(error("a,b\n\"two\nlines\",x\"y\n")?.line == 3, "chunks of \(chunk)")
        }
    }

    @Test("a bulk CSV needs named, distinct columns holding the primary key, and rows as wide as the header")
    func tableChecks() throws {
        func problem(_ text: String, primaryKey: String? = "id") -> CSVError? {
            var check = CSVTableCheck(primaryKey: primaryKey)
            do {
                try check.feed(Array(text.utf8))
                try check.finish()
                return nil
            } catch {
                return error as? CSVError
            }
        }
        #expect(problem("id,name\n1,a\n2,b\n") == nil)
        #expect(problem("name,email\nx,y\n")?.message.contains("primaryKey id is not one of the columns") == true)
        #expect(problem("id,name,name\n1,a,b\n")?.message.contains("appears twice") == true)
        #expect(problem("id,,x\n1,2,3\n")?.message == "column 2 of the header has no name")
        #expect(problem("id,name\n1,a\n2\n3,c\n")?.line == 3)
        #expect(problem("id,name\n")?.message == "the CSV has a header but no rows")
        #expect(problem("")?.message.hasPrefix("the CSV is empty") == true)
        var check = CSVTableCheck(primaryKey: "id")
        for row in 0..<10_000 { try check.feed(Array("\(row == 0 ? "id,name\n" : "")\(row),name \(row)\n".utf8)) }
        try check.finish()
        #expect(check.rows == 10_000 && check.header == ["id", "name"])
    }
}

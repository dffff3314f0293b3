import Shared
import Testing

@Suite("JSON scanner")
struct JSONScannerTests {
    /// The text of member `key` of `json`, read with `read`.
    static func member(_ json: String, _ key: String, _ read: (inout JSONScanner) throws -> String) throws -> String? {
        var found: String?
        try JSONScanner.members(of: Array(json.utf8), type: "Test") { member in
            if member.key == key { found = try read(&member) }
        }
        return found
    }

    @Test("a list's elements are each handed over in order, nested or not, and its text answered as it came")
    func elements() throws {
        let json = #"{"before": 1, "list" : [ {"a": 1} , {"b": [1, {"c": "x, ]"}]} ,{}] , "after": [2]}"#
        var seen: [String] = []
        let text = try Self.member(json, "list") { member in
            try member.elements { element in seen.append(try element.verbatim()) }
        }
        #expect(text == #"[ {"a": 1} , {"b": [1, {"c": "x, ]"}]} ,{}]"#)
        #expect(seen == [#"{"a": 1}"#, #"{"b": [1, {"c": "x, ]"}]}"#, "{}"])
        #expect(try Self.member(#"{"list": []}"#, "list") { try $0.elements { _ in Issue.record("an empty list has no element") } } == "[]")
        #expect(try Self.member(#"{"list": [ {}, {"a": [{}]}, {} ]}"#, "list") { String(try $0.countObjects()) } == "3")
        #expect(try Self.member(#"{"list": [ ]}"#, "list") { String(try $0.countObjects()) } == "0")
        let notObjects = #expect(throws: JSONFieldError.self) { try Self.member(#"{"list": [{}, 2]}"#, "list") { String(try $0.countObjects()) } }
        #expect(notObjects?.key == "list")
        let notList = #expect(throws: JSONFieldError.self) { try Self.member(#"{"list": {}}"#, "list") { try $0.elements { _ in } } }
        #expect(notList?.key == "list")
        #expect(throws: (any Error).self) { try Self.member(#"{"list": [1 2]}"#, "list") { try $0.elements { _ in } } }
        #expect(throws: (any Error).self) { try Self.member(#"{"list": [1,"#, "list") { try $0.elements { _ in } } }
    }

    @Test("a string passed over ends where a full read ends it, and is refused where a full read refuses it, at every place of what it holds")
    func skippedStrings() throws {
        // Escapes, multi-byte characters, a control character, a bare quote and a byte that is not UTF-8,
        // each at every place in text of every length around the eight bytes taken at a time.
        let pieces: [[UInt8]] = [
            Array(#"\""#.utf8), Array(#"\\"#.utf8), Array(#"\n"#.utf8), Array(#"\u00e9"#.utf8), Array(#"\ud83d\ude00"#.utf8),
            Array("é".utf8), Array("😀".utf8), [0x01], [0x1F], [0x7F], Array(#"""#.utf8), [0xFF], Array(#"\x"#.utf8), [],
        ]
        var checked = 0
        for length in 0...19 {
            for piece in pieces {
                for place in 0...length {
                    let filler = Array(repeating: UInt8(ascii: "a"), count: length)
                    let text = Array(filler[..<place]) + piece + Array(filler[place...])
                    let json = Array(#"{"s": ""#.utf8) + text + Array(#"", "b": 7}"#.utf8)
                    let whole = Result { try JSONReader.read(json) }
                    var found: String?
                    let passed = Result {
                        try JSONScanner.members(of: json, type: "Test") { member in
                            if member.key == "b" { found = try member.verbatim() }
                        }
                    }
                    switch (whole, passed) {
                    case (.success, .success): #expect(found == "7", "\(String(decoding: text, as: UTF8.self))")
                    case (.failure, .failure): break
                    default: Issue.record("read and passed over disagree on \(text)")
                    }
                    checked += 1
                }
            }
        }
        #expect(checked == 14 * 210)
    }

    @Test("what only a lenient reader takes (a comma ending a list or object, a huge exponent) is answered as strict JSON text")
    func strictText() throws {
        // Taken, as the whole read takes it, and written again without the commas.
        #expect(try Self.member(#"{"list": [{"a": 1},]}"#, "list") { String(try $0.countObjects()) } == "1")
        #expect(try Self.member(#"{"list": [{"a": 1}, ]}"#, "list") { try $0.elements { _ in } } == #"[{"a":1}]"#)
        #expect(try Self.member(#"{"o": {"b": [1, 2,], "a": {"d": 1,},}}"#, "o") { try $0.object() } == #"{"a":{"d":1},"b":[1,2]}"#)
        #expect(try Self.member(#"{"o": {"n": 1e-20000}}"#, "o") { try $0.object() } == #"{"n":0}"#)
        // Inside an element read member by member, the list's text is still strict.
        let results = try Self.member(#"{"r": [{"success": true, "data": {"x": 1,},}]}"#, "r") { member in
            try member.elements { element in try element.members(type: "Item") { field in _ = try field.verbatim() } }
        }
        #expect(results == #"[{"data":{"x":1},"success":true}]"#)
        // Strict text is answered as it came, spacing and order kept; the flag of one value does not spill
        // into the next.
        let json = #"{"loose": [1,], "strict": { "b" : 1 , "a" : [ ] }}"#
        var texts: [String: String] = [:]
        try JSONScanner.members(of: Array(json.utf8), type: "Test") { member in texts[member.key] = try member.verbatim() }
        #expect(texts == ["loose": "[1]", "strict": #"{ "b" : 1 , "a" : [ ] }"#])
        #expect(try Self.member(#"{"o": {"n": 1e300}}"#, "o") { try $0.object() } == #"{"n": 1e300}"#)
        #expect(throws: (any Error).self) { try Self.member(#"{"o": {"n": 1e400}}"#, "o") { try $0.object() } }
    }
}

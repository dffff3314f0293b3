import HTTPClient
import Testing

@Suite("recordsURL guard")
struct URLGuardTests {
    func refusal(_ url: String, allow: [String] = []) -> String? {
        do {
            _ = try URLGuard(allow: allow).check(url)
            return nil
        } catch {
            return error.message
        }
    }

    @Test("only http(s) to public addresses; loopback, private, link-local, metadata and the like are refused")
    func refused() {
        #expect(refusal("ftp://example.com/a.csv")?.contains("http or https") == true)
        #expect(refusal("file:///etc/passwd")?.contains("http or https") == true)
        #expect(refusal("https://user:pw@93.184.216.34/a.csv")?.contains("user or password") == true)
        #expect(refusal("not a url") != nil)
        let blocked = [
            "http://127.0.0.1/a.csv": "loopback", "http://localhost:8080/a.csv": "loopback", "http://[::1]/a.csv": "loopback",
            "http://10.1.2.3/a.csv": "private", "http://172.20.0.5/a.csv": "private", "http://192.168.1.1/a.csv": "private",
            "http://169.254.169.254/latest/meta-data": "link-local", "http://[fe80::1]/a.csv": "link-local",
            "http://[fd00:ec2::254]/a.csv": "private", "http://100.64.0.1/a.csv": "carrier-grade NAT",
            "http://0.0.0.0/a.csv": "unspecified", "http://[::ffff:127.0.0.1]/a.csv": "loopback",
            "http://224.0.0.1/a.csv": "multicast",
        ]
        for (url, kind) in blocked { #expect(refusal(url)?.contains(kind) == true, "\(url): \(refusal(url) ?? "allowed")") }
        #expect(refusal("https://93.184.216.34/data.csv") == nil)
        #expect(refusal("https://[2606:2800:220:1:248:1893:25c8:1946]/data.csv") == nil)
    }

    @Test("the operator's allow-list lets named hosts and networks through, and nothing more")
    func allowList() throws {
        #expect(refusal("http://127.0.0.1:9000/a.csv", allow: ["127.0.0.0/8"]) == nil)
        #expect(refusal("http://localhost:9000/a.csv", allow: ["localhost"]) == nil)
        #expect(refusal("http://10.9.8.7/a.csv", allow: ["10.1.0.0/16"])?.contains("private") == true)
        #expect(refusal("http://10.1.200.7/a.csv", allow: ["10.1.0.0/16"]) == nil)
        let answer = try URLGuard(allow: ["127.0.0.1/32"]).check("http://127.0.0.1:9000/x.csv")
        #expect(answer.host == "127.0.0.1" && answer.port == 9000 && answer.addresses == ["127.0.0.1"])
    }
}

import Foundation
import Shared
import Testing

/// The operations console in a real browser (headless Chromium through chromedriver): signing in with a
/// project key, finding a failed write and reading its error, sending a dead-lettered write again and
/// seeing it succeed, watching a bulk write's progress move, and the connections, installations and
/// integrations pages. Every page is kept as a screenshot in the stack's log folder (`screenshots/`).
@Suite("Console", .serialized, .stack("console", environment: [
    "WRITER_PROVIDER_TIMEOUT_SECONDS": "1", "WRITER_RETRY_BACKOFF_SECONDS": "0.1", "WRITER_RETRY_DEADLINE_SECONDS": "3",
]))
struct ConsoleTests {
    var console: String { get throws { "\(try TestStack.stack.apiURL)/console" } }

    /// A browser signed in with the test project's key, on the operations page, for `body`.
    func signedIn(_ body: (Browser) async throws -> Void) async throws {
        let console = try console
        try await Browser.using(try TestStack.stack) { browser in
            try await browser.open("\(console)/sign-in")
            try await browser.type("#key", TestStack.apiKey)
            try await browser.click("#sign-in")
            try await browser.wait("the operations page") { try await browser.url.hasSuffix("/console/operations") }
            try await body(browser)
        }
    }

    /// A Salesforce contact written synchronously: its operation id.
    func writeContact(_ record: JSONValue, mode: String = "synchronous") async throws -> String {
        let answer = try await TestStack.stack.write("write-to-salesforce", "contact", [
            "groupRef": .string(TestStack.groupRef), "mode": .string(mode), "record": record,
        ])
        return try #require(answer.body["operationId"]?.stringValue, "\(answer.status) \(answer.body)")
    }

    @Test("signing in takes a project key and keeps it in an HttpOnly, SameSite=Strict cookie; a wrong key is refused on the page")
    func signIn() async throws {
        try await Browser.using(try TestStack.stack) { browser in
            try await browser.open(try console)
            #expect(try await browser.url.hasSuffix("/console/sign-in"), "without a session the console asks to sign in")
            try await browser.screenshot("sign-in")
            try await browser.type("#key", "not-a-key")
            try await browser.click("#sign-in")
            try await browser.wait("the refusal") { try await browser.elements("#sign-in-error").count == 1 }
            #expect(try await browser.text("#sign-in-error").contains("not one of a project"))
            #expect(try await browser.cookie("writeback_console") == nil)
            try await browser.type("#key", TestStack.apiKey)
            try await browser.click("#sign-in")
            try await browser.wait("the operations page") { try await browser.url.hasSuffix("/console/operations") }
            #expect(try await browser.text("#project") == TestStack.project)
            let cookie = try #require(try await browser.cookie("writeback_console"), "no session cookie")
            #expect(cookie["httpOnly"] == true && cookie["sameSite"] == "Strict" && cookie["path"] == "/console", "\(cookie)")
            #expect(cookie["value"]?.stringValue?.contains(TestStack.apiKey) == false, "the cookie holds the key sealed, not as it is")
            #expect(!(try await browser.source).contains(TestStack.apiKey))
            try await browser.screenshot("operations")

            try await browser.click("#sign-out")
            try await browser.wait("the sign-in page") { try await browser.url.hasSuffix("/console/sign-in") }
            try await browser.open("\(try console)/operations")
            #expect(try await browser.url.hasSuffix("/console/sign-in"), "signed out, the pages ask to sign in again")
        }
    }

    @Test("a failed write is found by its status and shows the provider's error, its request and its logs")
    func failedWrite() async throws {
        let failed = try await writeContact(["FirstName": "No-Last-Name"])
        let succeeded = try await writeContact(["LastName": "Console-Fine"])
        try await signedIn { browser in
            try await browser.choose("#filter-status", "failure")
            try await browser.click("#apply-filters")
            try await browser.wait("the failed writes") { try await browser.url.contains("status=failure") }
            let listed = try await browser.elements("tr[data-operation='\(failed)']")
            #expect(listed.count == 1, "the failed write is listed")
            #expect(try await browser.elements("tr[data-operation='\(succeeded)']").isEmpty, "a write that succeeded is not")
            #expect(try await browser.texts("tr[data-operation] td.status").allSatisfy { $0 == "failed" || $0 == "dead-lettered" })
            try await browser.screenshot("operations-failed")
            try await browser.click("tr[data-operation='\(failed)'] a")
            try await browser.wait("the operation page") { try await browser.url.hasSuffix("/console/operations/\(failed)") }
            #expect(try await browser.text("#status") == "failed")
            #expect(try await browser.text("[data-error]").contains("Required fields are missing: [LastName]"))
            #expect(try await browser.text("#request").contains("No-Last-Name"), "the request as it was sent")
            #expect(try await browser.texts("#logs tbody tr").count >= 2, "accepted and answered, at least")
            try await browser.screenshot("operation-failed")
        }
    }

    @Test("a dead-lettered write sent again from its page is a new operation, linked both ways, that succeeds")
    func resendDeadLetter() async throws {
        let stack = try TestStack.stack
        try await stack.queueFaults("salesforce", Array(repeating: ["kind": "error", "status": 503], count: 60))
        let dead = try await writeContact(["LastName": "Console-Resent"], mode: "asynchronous")
        let operation = try await stack.finalOperation(dead)
        try await stack.clearFaults()
        try #require(operation.at("metadata.errors.0.deadLettered") == true, "\(operation)")

        try await signedIn { browser in
            try await browser.click("nav a[href*='dead_lettered']")
            try await browser.wait("the dead letters") { try await browser.url.contains("status=dead_lettered") }
            try await browser.click("tr[data-operation='\(dead)'] a")
            try await browser.wait("the operation page") { try await browser.url.hasSuffix("/console/operations/\(dead)") }
            #expect(try await browser.text("#status") == "dead-lettered")
            try await browser.screenshot("operation-dead-lettered")
            // A create answered 503 may have been applied: sending it again asks the user to confirm.
            if operation.at("metadata.possiblyDuplicated") == true {
                let session = try #require(try await browser.cookie("writeback_console")?["value"]?.stringValue)
                let token = try #require(try await browser.attribute("input[name=csrf]", "value"))
                let unconfirmed = try await stack.call("POST", "\(try console)/operations/\(dead)/resend", body: "csrf=\(token)",
                    headers: [("Cookie", "writeback_console=\(session)"), ("Content-Type", "application/x-www-form-urlencoded")])
                #expect(unconfirmed.status == 409, "not sent again without the confirmation")
                try await browser.click("#confirm-duplicate")
            } else {
                #expect(try await browser.elements("#confirm-duplicate").isEmpty)
            }
            try await browser.click("#resend")
            var resent = ""
            try await browser.wait("the new operation to succeed", timeout: .seconds(45)) {
                let url = try await browser.url
                resent = String(url.split(separator: "/").last?.split(separator: "?").first ?? "")
                guard resent != dead else { return false }
                return try await browser.text("#status") == "succeeded"
            }
            #expect(try await browser.text("#resent-from") == dead)
            try await browser.screenshot("operation-resent")
            try await browser.open("\(try console)/operations/\(dead)")
            #expect(try await browser.text("#resent-as") == resent)
            #expect(try await browser.elements("#resend").isEmpty, "an operation is sent again once")
            let written = try await stack.salesforceQuery("SELECT Id FROM Contact WHERE LastName = 'Console-Resent'")
            #expect(written.count == 1, "written once, by the new operation: \(written)")
            let new = try await stack.finalOperation(resent)
            #expect(new["status"] == "success" && new.at("metadata.groupRef") == .string(TestStack.groupRef))
        }
    }

    @Test("a bulk write's page shows its progress moving until every row is written")
    func bulkProgress() async throws {
        let stack = try TestStack.stack
        var csv = "email,firstname,lastname\n"
        for index in 1...1500 { csv += "console-\(index)@example.com,First\(index),Bulk\(index)\n" }
        try await stack.setOrg("hubspot", "default", ["latencyMilliseconds": 400])
        defer { Task { try? await stack.setOrg("hubspot", "default", ["latencyMilliseconds": 0]) } }
        let answer = try await stack.call(
            "PUT", "\(stack.apiURL)/v1/projects/\(TestStack.project)/integrations/write-to-hubspot/objects/contact:async",
            body: try JSONCoding.encodeString(["groupRef": .string(TestStack.groupRef), "type": "upsert", "primaryKey": "email",
                                               "recordsCSV": .string(csv)] as JSONValue),
            headers: [("X-Api-Key", TestStack.apiKey), ("Content-Type", "application/json")])
        let operationId = try #require(answer.body["operationId"]?.stringValue, "\(answer.body)")
        try await signedIn { browser in
            try await browser.open("\(try console)/operations/\(operationId)")
            var seen: [Int] = []
            try await browser.wait("the bulk write to end", timeout: .seconds(60)) {
                if let processed = try await browser.attribute("#progress", "data-processed").flatMap({ Int($0) }), seen.last != processed {
                    seen.append(processed)
                    if seen.count == 2 { try await browser.screenshot("bulk-progress") }
                }
                return try await browser.text("#status") == "succeeded"
            }
            if let processed = try await browser.attribute("#progress", "data-processed").flatMap({ Int($0) }), seen.last != processed {
                seen.append(processed)
            }
            #expect(seen.last == 1500, "every row read: \(seen)")
            #expect(seen.filter { $0 > 0 && $0 < 1500 }.count >= 2, "the page showed the progress moving: \(seen)")
            #expect(seen == seen.sorted(), "progress only moves forward: \(seen)")
            #expect(try await browser.text("#progress").contains("1500 of 1500 rows read"))
            try await browser.screenshot("bulk-done")
        }
    }

    @Test("connections show their health, installations the last hour's counts and latencies with a chart, integrations their revisions; no page shows a secret")
    func otherPages() async throws {
        let counted = try await writeContact(["LastName": "Console-Counted"])
        try await signedIn { browser in
            var pages: [String] = [try await browser.source]
            try await browser.open("\(try console)/operations/\(counted)")
            pages.append(try await browser.source)
            try await browser.open("\(try console)/operations")

            try await browser.click("nav a[href='/console/connections']")
            try await browser.wait("the connections page") { try await browser.url.hasSuffix("/console/connections") }
            let providers = Set(try await browser.texts("#connections tbody tr td:first-child"))
            #expect(providers.isSuperset(of: ["salesforce", "hubspot", "pipedrive"]), "\(providers)")
            #expect(try await browser.texts("#connections td.status").allSatisfy { !$0.isEmpty })
            pages.append(try await browser.source)
            try await browser.screenshot("connections")

            try await browser.click("nav a[href='/console/installations']")
            try await browser.wait("the installations page") { try await browser.url.hasSuffix("/console/installations") }
            let row = "#installations tr:has(a[href*='integration=write-to-salesforce'])"
            let total = Int(try await browser.text("\(row) td[data-count=total]")) ?? 0
            #expect(total >= 1, "the salesforce installation's writes of the last hour are counted")
            for latency in ["p50", "p99"] {
                let text = try await browser.text("\(row) td[data-latency=\(latency)]")
                #expect(text.hasSuffix(" ms") || text.hasSuffix(" s"), "\(latency) is \(text)")
            }
            #expect(try await browser.elements("\(row) svg.chart rect").count >= 2, "a chart with a bar")
            pages.append(try await browser.source)
            try await browser.screenshot("installations")

            try await browser.click("nav a[href='/console/integrations']")
            try await browser.wait("the integrations page") { try await browser.url.hasSuffix("/console/integrations") }
            for name in ["write-to-salesforce", "write-to-hubspot", "write-to-pipedrive"] {
                #expect(try await browser.elements("section[data-integration='\(name)'] .revisions tbody tr").count >= 1, "\(name) has its revisions")
            }
            pages.append(try await browser.source)
            try await browser.screenshot("integrations")

            for page in pages {
                for secret in [TestStack.apiKey, "sandbox-salesforce-token", "sandbox-hubspot-token", "sandbox-pipedrive-token",
                               "refresh-token", "whsec_"] {
                    #expect(!page.contains(secret), "a page shows \(secret)")
                }
            }
        }
    }

    @Test("the operations are paged newest first and filtered by integration, groupRef, type and time")
    func filtersAndPaging() async throws {
        var made: [String] = []
        for index in 0..<27 { made.append(try await writeContact(["LastName": .string("Paged-\(index)")], mode: "asynchronous")) }
        try await signedIn { browser in
            try await browser.open("\(try console)/operations?integration=write-to-salesforce&limit=25")
            let first = try await browser.elements("tr[data-operation]").count
            let ids = try await browser.source.matches(of: /data-operation="([0-9a-f-]+)"/).map { String($0.1) }
            #expect(first == 25 && ids.count == 25)
            #expect(Array(ids.prefix(5)) == Array(made.reversed().prefix(5)), "newest first")
            try await browser.click("#older")
            try await browser.wait("the older page") { try await browser.url.contains("before=") }
            let older = try await browser.source.matches(of: /data-operation="([0-9a-f-]+)"/).map { String($0.1) }
            #expect(!older.isEmpty && Set(older).isDisjoint(with: ids), "the next page starts after the last one")
            #expect(older.first == made[1] && older.contains(made[0]), "\(older.prefix(3)) after \(ids.suffix(2))")

            try await browser.open("\(try console)/operations?groupRef=someone-else")
            #expect(try await browser.elements("#no-operations").count == 1)
            try await browser.open("\(try console)/operations?type=delete&integration=write-to-salesforce")
            #expect(try await browser.elements("tr[data-operation]").isEmpty)
            try await browser.open("\(try console)/operations?from=2099-01-01T00:00")
            #expect(try await browser.elements("#no-operations").count == 1)
            try await browser.open("\(try console)/operations?from=2000-01-01T00:00&to=2099-01-01T00:00&type=create&limit=25")
            #expect(try await browser.elements("tr[data-operation]").count == 25)
            try await browser.open("\(try console)/operations?status=sideways")
            #expect(try await browser.text("#error-detail").contains("status must be one of"))
        }
    }

    @Test("forms need the session's token and the console's own origin; a forged or missing cookie signs nobody in")
    func forms() async throws {
        let stack = try TestStack.stack
        let failed = try await writeContact(["FirstName": "Forged"])
        // Signing in through HTTP, as a script would: the cookie, then a page's form token.
        let signIn = try await stack.call("POST", "\(try console)/sign-in", body: "key=\(TestStack.apiKey)",
                                          headers: [("Content-Type", "application/x-www-form-urlencoded")])
        #expect(signIn.status == 303)
        let cookie = try #require(signIn.headers["set-cookie"]?.split(separator: ";").first.map(String.init))
        let page = try await stack.call("GET", "\(try console)/operations/\(failed)", headers: [("Cookie", cookie)])
        let html = page.body.stringValue ?? ""
        let token = try #require(html.firstMatch(of: /name="csrf" value="([^"]+)"/).map { String($0.1) })
        let form = [("Cookie", cookie), ("Content-Type", "application/x-www-form-urlencoded")]
        let resend = "\(try console)/operations/\(failed)/resend"
        #expect(try await stack.call("POST", resend, body: "csrf=wrong", headers: form).status == 403)
        #expect(try await stack.call("POST", resend, body: "", headers: form).status == 403)
        #expect(try await stack.call("POST", resend, body: "csrf=\(token)", headers: form + [("Origin", "http://elsewhere.example")]).status == 403)
        let forged = try await stack.call("GET", "\(try console)/operations", headers: [("Cookie", "writeback_console=wb1.forged.value")])
        #expect(forged.status == 303 && forged.headers["location"] == "/console/sign-in")
        #expect(try await stack.call("GET", "\(try console)/operations/\(failed)").status == 303, "no cookie, no page")
        #expect(try await stack.call("POST", resend, body: "csrf=\(token)", headers: form + [("Origin", "null")]).status == 403)
        #expect(try await stack.call("POST", resend, body: "csrf=\(token)", headers: form + [("Sec-Fetch-Site", "cross-site")]).status == 403)
        func resent() throws -> Int {
            try stack.controlQuery("SELECT count(*) AS n FROM operations WHERE resent_from = $1::uuid", [failed]).first?.int("n") ?? -1
        }
        // Nothing was sent again by the refused forms: no operation names it, once the pipeline had time to record one.
        _ = try await writeContact(["LastName": "Console-After-Refusals"])
        #expect(try resent() == 0)
        let sent = try await stack.call("POST", resend, body: "csrf=\(token)", headers: form)
        #expect(sent.status == 303 && sent.headers["location"]?.hasPrefix("/console/operations/") == true)
        let twice = try await stack.call("POST", resend, body: "csrf=\(token)", headers: form)
        #expect(twice.headers["location"]?.hasPrefix(String(sent.headers["location"]?.split(separator: "?").first ?? "-")) == true,
                "sending it again twice makes one new operation")
        let newId = String(sent.headers["location"]?.split(separator: "/").last?.split(separator: "?").first ?? "")
        _ = try await stack.finalOperation(newId)
        #expect(try resent() == 1, "one new operation names the old one")
    }

    @Test("a failed batch sent again sends only its records that failed; the others are not written twice")
    func batchResend() async throws {
        let stack = try TestStack.stack
        let answer = try await stack.write("write-to-salesforce", "contact", [
            "groupRef": .string(TestStack.groupRef),
            "batch": [["record": ["LastName": "Console-Batch-Written"]], ["record": ["FirstName": "Console-Batch-Refused"]]],
        ])
        let failed = try #require(answer.body["operationId"]?.stringValue, "\(answer.body)")
        #expect(try await stack.finalOperation(failed)["status"] == "failure")
        try await signedIn { browser in
            try await browser.open("\(try console)/operations/\(failed)")
            try await browser.click("#resend")
            try await browser.wait("the new operation") { try await browser.elements("#resent-from").count == 1 }
            let request = try await browser.text("#request")
            #expect(request.contains("Console-Batch-Refused") && !request.contains("Console-Batch-Written"), "\(request)")
            try await browser.wait("the new operation to end") { try await browser.text("#status") != "in progress" }
        }
        let written = try await stack.salesforceQuery("SELECT Id FROM Contact WHERE LastName = 'Console-Batch-Written'")
        #expect(written.count == 1, "the record that was written is not written again: \(written)")
    }

    @Test("a session of another project sees none of this project's operations, and cannot send them again")
    func otherProject() async throws {
        let stack = try TestStack.stack
        let seeded = try stack.output("writeback-dev", ["seed"], environment: ["SEED_PROJECT": "console-other", "SEED_API_KEY": "console-other-key"])
        try #require(seeded.status == 0, "\(seeded.text)")
        let ours = try await writeContact(["FirstName": "Only-Ours"])
        let signIn = try await stack.call("POST", "\(try console)/sign-in", body: "key=console-other-key",
                                          headers: [("Content-Type", "application/x-www-form-urlencoded")])
        let cookie = try #require(signIn.headers["set-cookie"]?.split(separator: ";").first.map(String.init), "\(signIn.status)")
        let list = try await stack.call("GET", "\(try console)/operations", headers: [("Cookie", cookie)])
        #expect(list.status == 200 && !(list.body.stringValue ?? "").contains(ours))
        #expect((list.body.stringValue ?? "").contains("console-other"), "the page is the other project's")
        let token = try #require((list.body.stringValue ?? "").firstMatch(of: /name="csrf" value="([^"]+)"/).map { String($0.1) })
        for path in ["/operations/\(ours)", "/operations/\(ours)/failed-records", "/operations?before=\(ours)"] {
            let answer = try await stack.call("GET", "\(try console)\(path)", headers: [("Cookie", cookie)])
            #expect(answer.status == (path.contains("before") ? 200 : 404), "\(path): \(answer.status)")
            #expect(!(answer.body.stringValue ?? "").contains("Only-Ours"))
        }
        let resend = try await stack.call("POST", "\(try console)/operations/\(ours)/resend", body: "csrf=\(token)",
                                          headers: [("Cookie", cookie), ("Content-Type", "application/x-www-form-urlencoded")])
        #expect(resend.status == 404)
    }
}

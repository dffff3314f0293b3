import Foundation
import Shared
import Testing

/// Bulk CSV writes: `PUT …/objects/{object}:async` (or `POST` with `mode: bulk`) with `recordsCSV` or
/// `recordsURL`; Salesforce through Bulk API 2.0 jobs (split when a file passes the job size), HubSpot
/// through batch upsert/archive calls of 100; the operation shows progress, the provider's jobs, each
/// refused row in its logs and in a failed-records CSV.
@Suite("Bulk CSV writes", .serialized, .stack("bulk", environment: [
    "WRITER_BULK_JOB_MAX_BYTES": "200", "SANDBOX_BULK_MAX_UPLOAD_BYTES": "300",
    "WRITEBACK_RECORDS_URL_ALLOW": "127.0.0.1/32", "WRITEBACK_RECORDS_URL_MAX_BYTES": "200000",
    "WRITEBACK_RECORDS_URL_TIMEOUT_SECONDS": "3", "WRITEBACK_RECORDS_URL_STALL_SECONDS": "2",
    // A stop waits a second for running writes, then cancels them.
    "SHUTDOWN_GRACE_SECONDS": "1",
]))
struct BulkCSVTests {
    let spec = try! OpenAPISchema(oracle: "ampersand/write-2024-08-bulk-csv.yaml")

    func bulk(_ integration: String, _ object: String, _ body: JSONValue) async throws -> TestStack.Answer {
        let stack = try TestStack.stack
        return try await stack.call(
            "PUT", "\(stack.apiURL)/v1/projects/\(TestStack.project)/integrations/\(integration)/objects/\(object):async",
            body: try JSONCoding.encodeString(body), headers: [("X-Api-Key", TestStack.apiKey), ("Content-Type", "application/json")])
    }

    func accepted(_ answer: TestStack.Answer) throws -> String {
        try #require(answer.status == 200, "\(answer.status) \(answer.body)")
        return try #require(answer.body["operationId"]?.stringValue)
    }

    func failedRecords(_ operationId: String) async throws -> (status: Int, text: String) {
        let stack = try TestStack.stack
        let answer = try await stack.call(
            "GET", "\(stack.apiURL)/v1/projects/\(TestStack.project)/operations/\(operationId)/failed-records",
            headers: [("X-Api-Key", TestStack.apiKey)])
        return (answer.status, answer.body.stringValue ?? "")
    }

    func putFile(_ name: String, _ text: String) async throws -> String {
        let stack = try TestStack.stack
        let answer = try await stack.call("PUT", "\(stack.sandboxURL)/_sandbox/files/\(name)", body: text)
        try #require(answer.status == 200)
        return "\(stack.sandboxURL)/_sandbox/files/\(name)"
    }

    @Test("a Salesforce upsert from recordsCSV creates and updates by external id in several jobs; a refused row is logged with its key and downloadable")
    func salesforceUpsert() async throws {
        let stack = try TestStack.stack
        let existing = try await stack.call(
            "POST", "\(stack.sandboxURL)/services/data/v60.0/sobjects/Contact/",
            body: #"{"LastName": "Before", "External_Id__c": "bulk-sf-2"}"#,
            headers: [("Authorization", "Bearer sandbox-salesforce-token"), ("Content-Type", "application/json")])
        let existingId = try #require(existing.body["id"]?.stringValue)
        let csv = """
            External_Id__c,LastName,Email,Title
            bulk-sf-1,Ada,ada@example.com,"Wrote the first program, in 1843"
            bulk-sf-2,After,after@example.com,"Said ""hello""
            over two lines"
            bulk-sf-3,,nolastname@example.com,refused: no last name
            bulk-sf-4,Grace,grace@example.com,
            bulk-sf-5,Alan,alan@example.com,
            bulk-sf-6,Edsger,edsger@example.com,

            """
        let operationId = try accepted(try await bulk("write-to-salesforce", "contact", [
            "groupRef": .string(TestStack.groupRef), "primaryKey": "External_Id__c", "recordsCSV": .string(csv),
        ]))
        let operation = try await stack.finalOperation(operationId)
        #expect(operation["status"] == "failure", "one row was refused: \(operation)")
        #expect(operation.at("metadata.mode") == "bulk")
        #expect(operation.at("metadata.progress") == ["processed": 6, "succeeded": 5, "failed": 1, "total": 6], "\(operation)")
        let jobs = operation.at("metadata.providerJobIds")?.arrayValue ?? []
        #expect(jobs.count >= 2, "a CSV larger than the job size goes in several jobs: \(operation)")
        let jobCalls = try await stack.providerCalls().filter { $0["method"] == "PUT" && $0["path"]?.stringValue?.hasSuffix("/batches") == true }
        #expect(jobCalls.count == jobs.count)

        let updated = try await stack.salesforceRecord("Contact", existingId)
        #expect(updated.body["LastName"] == "After")
        #expect(updated.body["Title"] == "Said \"hello\"\nover two lines")
        let created = try await stack.salesforceQuery("SELECT Id, LastName, Title FROM Contact WHERE External_Id__c = 'bulk-sf-1'")
        #expect(created.count == 1 && created.first?["Title"] == "Wrote the first program, in 1843", "\(created)")
        #expect(try await stack.salesforceQuery("SELECT Id FROM Contact WHERE External_Id__c = 'bulk-sf-3'").isEmpty)

        // The refused row: in the logs with its line, primary key and Salesforce's error, and in the CSV to fix.
        let logs = try await stack.operationLogs(operationId)
        let refused = try #require(logs.first { $0.at("message.details.primaryKey") == "bulk-sf-3" }, "\(logs)")
        #expect(refused["severity"] == "ERROR" && refused.at("message.details.line") == "5")
        #expect(refused.at("message.error")?.stringValue?.contains("REQUIRED_FIELD_MISSING") == true, "\(refused)")
        #expect(logs.contains { $0.at("message.details.processed") != nil }, "progress is logged")
        let download = try await failedRecords(operationId)
        #expect(download.status == 200)
        let lines = download.text.split(separator: "\n")
        #expect(lines.first == "error,line,External_Id__c,LastName,Email,Title")
        #expect(lines.count == 2 && lines.last?.contains(",5,bulk-sf-3,,nolastname@example.com,refused: no last name") == true,
                "\(download.text)")

        // Each written row is a change event (with its line) and reaches the destination.
        let events = try stack.kcat(Topics.recordChanges).filter { $0.at("data.operationId") == .string(operationId) }
        #expect(events.count == 5)
        #expect(events.first { $0.at("data.recordId") == .string(existingId) }?["type"] == "com.writeback.record.updated")
        #expect(events.first { $0.at("data.line") == 2 }?["type"] == "com.writeback.record.created")
        #expect(events.first { $0.at("data.line") == 2 }?.at("data.fields")
                == ["External_Id__c": "bulk-sf-1", "LastName": "Ada", "Email": "ada@example.com", "Title": "Wrote the first program, in 1843"])
        #expect(events.first { $0.at("data.line") == 6 }?.at("data.fields")
                == ["External_Id__c": "bulk-sf-4", "LastName": "Grace", "Email": "grace@example.com"], "an empty cell leaves its field as it is")
        var row = try stack.destinationRow(provider: "salesforce", object: "contact", recordId: existingId)
        for _ in 0..<100 where row == nil {
            try await Task.sleep(for: .milliseconds(100))
            row = try stack.destinationRow(provider: "salesforce", object: "contact", recordId: existingId)
        }
        #expect(row?["fields"]?.contains("After") == true)
    }

    @Test("a Salesforce delete from recordsURL (through a redirect) removes the records; POST with mode bulk is the same write")
    func salesforceDeleteFromURL() async throws {
        let stack = try TestStack.stack
        var ids: [String] = []
        for name in ["Gone-1", "Gone-2"] {
            let created = try await stack.call(
                "POST", "\(stack.sandboxURL)/services/data/v60.0/sobjects/Contact/", body: #"{"LastName": "\#(name)"}"#,
                headers: [("Authorization", "Bearer sandbox-salesforce-token"), ("Content-Type", "application/json")])
            ids.append(try #require(created.body["id"]?.stringValue))
        }
        let file = try await putFile("delete.csv", "Id\n" + ids.joined(separator: "\n") + "\n003000000000000ZZZ\n")
        let redirect = "\(stack.sandboxURL)/_sandbox/redirect?to=" + (file.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? file)
        let answer = try await stack.write("write-to-salesforce", "contact", [
            "groupRef": .string(TestStack.groupRef), "type": "delete", "mode": "bulk", "primaryKey": "Id", "recordsURL": .string(redirect),
        ])
        let problems = spec.problems(answer.body, path: "/projects/{projectIdOrName}/integrations/{integrationId}/objects/{objectName}",
                                     method: "POST", status: answer.status)
        #expect(problems.isEmpty, "\(answer.status) \(answer.body): \(problems)")
        let operationId = try accepted(answer)
        let operation = try await stack.finalOperation(operationId)
        #expect(operation.at("metadata.progress") == ["processed": 3, "succeeded": 2, "failed": 1, "total": 3], "\(operation)")
        for id in ids { #expect(try await stack.salesforceRecord("Contact", id).status == 404) }
        let download = try await failedRecords(operationId)
        #expect(download.text.contains("003000000000000ZZZ"), "\(download.text)")
        let events = try stack.kcat(Topics.recordChanges).filter { $0.at("data.operationId") == .string(operationId) }
        #expect(Set(events.compactMap { $0.at("data.recordId")?.stringValue }) == Set(ids))
        #expect(events.allSatisfy { $0["type"] == "com.writeback.record.deleted" && $0.at("data.deleted") == true })
    }

    @Test("a HubSpot upsert goes in batch upserts of 100 by its idProperty; a delete archives by record id")
    func hubspotUpsertAndDelete() async throws {
        let stack = try TestStack.stack
        var csv = "email,firstname,lastname\n"
        for index in 1...150 { csv += "bulk-hs-\(index)@example.com,First\(index),Last\(index)\n" }
        let operationId = try accepted(try await bulk("write-to-hubspot", "contact", [
            "groupRef": .string(TestStack.groupRef), "type": "upsert", "primaryKey": "email", "recordsCSV": .string(csv),
        ]))
        let operation = try await stack.finalOperation(operationId)
        #expect(operation["status"] == "success", "\(operation)")
        #expect(operation.at("metadata.progress") == ["processed": 150, "succeeded": 150, "failed": 0, "total": 150])
        let upserts = try await stack.providerCalls().filter { $0["path"]?.stringValue?.hasSuffix("/contacts/batch/upsert") == true }
        #expect(upserts.count == 2, "150 rows are two batch calls")
        #expect(upserts.first?.at("body.inputs.0.idProperty") == "email")
        #expect((try await failedRecords(operationId)).text.split(separator: "\n").count == 1, "only the header")

        // Upserting again updates the same contacts.
        let again = try accepted(try await bulk("write-to-hubspot", "contact", [
            "groupRef": .string(TestStack.groupRef), "primaryKey": "email",
            "recordsCSV": "email,lastname\nbulk-hs-1@example.com,Renamed\n",
        ]))
        #expect(try await stack.finalOperation(again)["status"] == "success")
        let events = try stack.kcat(Topics.recordChanges).filter { $0.at("data.operationId") == .string(again) }
        let id = try #require(events.first?.at("data.recordId")?.stringValue)
        #expect(events.first?["type"] == "com.writeback.record.updated")
        #expect(try await stack.hubspotObject("contacts", id).body.at("properties.lastname") == "Renamed")

        let deleted = try accepted(try await bulk("write-to-hubspot", "contact", [
            "groupRef": .string(TestStack.groupRef), "type": "delete", "primaryKey": "hs_object_id",
            "recordsCSV": .string("hs_object_id\n\(id)\n"),
        ]))
        #expect(try await stack.finalOperation(deleted)["status"] == "success")
        #expect(try await stack.hubspotObject("contacts", id).status == 404)
    }

    @Test("a bulk write cancelled in the middle of its file (a stop past its grace) stops at its next chunk; after the restart every row is written in the same operation")
    func cancelledMidFile() async throws {
        try await TestStack.stack.bulkWriteStoppedMidFile()
    }

    @Test("each problem with the request or its CSV is a 400 (413 when too large) saying what and where; nothing is written")
    func validation() async throws {
        let stack = try TestStack.stack
        let before = try stack.controlQuery("SELECT count(*) AS n FROM operations").first?["n"]
        let group = JSONValue.string(TestStack.groupRef)
        let cases: [(JSONValue, Int, String, String)] = [
            (["groupRef": group, "recordsCSV": "External_Id__c\nx\n"], 400, "primaryKey", "primaryKey is required"),
            (["groupRef": group, "primaryKey": "External_Id__c"], 400, "recordsCSV", "recordsCSV"),
            (["groupRef": group, "primaryKey": "Id", "recordsCSV": "Id\nx\n", "recordsURL": "https://example.com/a.csv"], 400,
             "recordsURL", "not both"),
            (["groupRef": group, "type": "create", "primaryKey": "Id", "recordsCSV": "Id\nx\n"], 400, "type", "upsert or delete"),
            (["groupRef": group, "type": "delete", "primaryKey": "Id", "recordsCSV": "Id\nx\n", "retryPolicy": ["deadlineHours": 72]], 400,
             "retryPolicy.deadlineHours", "from 1 to 48"),
            (["groupRef": group, "type": "delete", "primaryKey": "Email", "recordsCSV": "Email\nx\n"], 400, "primaryKey", "must be Id"),
            (["groupRef": group, "primaryKey": "External_Id__c", "recordsCSV": "LastName\nx\n"], 400, "recordsCSV",
             "primaryKey External_Id__c is not one of the columns"),
            (["groupRef": group, "primaryKey": "External_Id__c", "recordsCSV": "External_Id__c,LastName\r\na,b\r\n"], 400, "recordsCSV",
             "line 1 ends with CRLF"),
            (["groupRef": group, "primaryKey": "External_Id__c", "recordsCSV": "External_Id__c,LastName\na,b\nc,d\"e\n"], 400,
             "recordsCSV", "line 3 has a quote inside an unquoted field"),
            (["groupRef": group, "primaryKey": "External_Id__c", "recordsCSV": "External_Id__c,LastName\na,\"b\n"], 400,
             "recordsCSV", "never closed"),
            (["groupRef": group, "primaryKey": "External_Id__c", "recordsCSV": "External_Id__c,LastName\na,b,c\n"], 400,
             "recordsCSV", "line 2 has 3 fields"),
            (["groupRef": group, "primaryKey": "External_Id__c", "recordsCSV": "External_Id__c,LastName,Shoe_Size,Hat__c\na,b,c,d\n"], 400,
             "header", "Shoe_Size, Hat__c"),
            (["groupRef": group, "primaryKey": "External_Id__c",
              "recordsCSV": .string("External_Id__c\n" + String(repeating: "x\n", count: 5_300_000))], 413, "", "10 MiB"),
        ]
        for (body, status, name, detail) in cases {
            let answer = try await bulk("write-to-salesforce", "contact", body)
            #expect(answer.status == status, "\(detail): \(answer.status) \(answer.body)")
            let text = (try? JSONCoding.encodeString(answer.body)) ?? ""
            #expect(text.contains(detail), "\(detail): \(text)")
            if !name.isEmpty { #expect(answer.body.at("issues.0.name") == .string(name), "\(name): \(text)") }
        }
        let unknownCustomer = try await bulk("write-to-salesforce", "contact", [
            "groupRef": "nobody", "primaryKey": "Id", "recordsCSV": "Id\nx\n", "type": "delete",
        ])
        #expect(unknownCustomer.status == 404)
        #expect(try stack.controlQuery("SELECT count(*) AS n FROM operations").first?["n"] == before, "nothing was accepted")
        #expect(try stack.controlQuery("SELECT count(*) AS n FROM bulk_uploads WHERE true").first?["n"] == "0")
    }

    @Test("each recordsURL that may not or cannot be fetched is refused at once, saying why")
    func refusedURLs() async throws {
        let stack = try TestStack.stack
        let port = URLComponents(string: stack.sandboxURL)?.port ?? 0
        let good = try await putFile("good.csv", "External_Id__c,LastName\nurl-1,Url\n")
        let big = try await putFile("big.csv", "External_Id__c,LastName\n" + String(repeating: "url-big,Big\n", count: 20_000))
        let toPrivate = "\(stack.sandboxURL)/_sandbox/redirect?to=" + ("http://10.1.2.3/a.csv".addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        let cases: [(String, String)] = [
            ("ftp://127.0.0.1:\(port)/a.csv", "must be http or https"),
            ("http://127.0.0.2:\(port)/_sandbox/files/good.csv", "loopback"),
            ("http://[::1]:\(port)/_sandbox/files/good.csv", "loopback"),
            ("http://10.0.0.7/records.csv", "private"),
            ("http://192.168.1.20/records.csv", "private"),
            ("http://169.254.169.254/latest/meta-data/", "link-local"),
            ("http://user:secret@127.0.0.1:\(port)/_sandbox/files/good.csv", "user or password"),
            (toPrivate, "redirect to http://10.1.2.3/a.csv refused"),
            (big, "larger than the limit of 200000 bytes"),
            ("\(good)?stallSeconds=6", "took longer than 3 s"),
            ("\(stack.sandboxURL)/_sandbox/files/missing.csv", "answered HTTP 404"),
            ("not a url at all", "recordsURL"),
        ]
        for (url, reason) in cases {
            let answer = try await bulk("write-to-salesforce", "contact", [
                "groupRef": .string(TestStack.groupRef), "primaryKey": "External_Id__c", "recordsURL": .string(url),
            ])
            #expect(answer.status == 400, "\(url): \(answer.status) \(answer.body)")
            #expect(answer.body.at("issues.0.name") == "recordsURL", "\(url): \(answer.body)")
            let text = (try? JSONCoding.encodeString(answer.body)) ?? ""
            #expect(text.contains(reason), "\(url) → \(text)")
            #expect(!text.contains("secret"), "no secret is echoed")
        }
        // The allowed file is fetched and written.
        let operationId = try accepted(try await bulk("write-to-salesforce", "contact", [
            "groupRef": .string(TestStack.groupRef), "primaryKey": "External_Id__c", "recordsURL": .string(good),
        ]))
        #expect(try await stack.finalOperation(operationId)["status"] == "success")
        #expect(try await stack.salesforceQuery("SELECT Id FROM Contact WHERE External_Id__c = 'url-1'").count == 1)
    }

    @Test("a recordsURL that breaks off into bad CSV writes the rows before and fails the operation at the line")
    func brokenFile() async throws {
        let stack = try TestStack.stack
        let url = try await putFile("broken.csv", "External_Id__c,LastName\nbroken-1,One\nbroken-2,Two\nbroken-3,Th\"ree\n")
        let operationId = try accepted(try await bulk("write-to-salesforce", "contact", [
            "groupRef": .string(TestStack.groupRef), "primaryKey": "External_Id__c", "recordsURL": .string(url),
        ]))
        let operation = try await stack.finalOperation(operationId)
        #expect(operation["status"] == "failure")
        #expect(operation.at("metadata.errors.0.message")?.stringValue?.contains("line 4") == true, "\(operation)")
        #expect(operation.at("metadata.progress.succeeded") == 2)
        #expect(try await stack.salesforceQuery("SELECT Id FROM Contact WHERE External_Id__c = 'broken-2'").count == 1)
    }
}

@testable import Connectors
import Foundation
import Shared
import Testing

@Suite("Shared model")
struct ModelTests {
    @Test("standard object names map to each provider's object; custom names pass through")
    func objectNames() {
        #expect(Provider.salesforce.profile.objectName(for: "contact") == "Contact")
        #expect(Provider.salesforce.profile.objectName(for: "Account") == "Account")
        #expect(Provider.hubspot.profile.objectName(for: "CONTACT") == "contacts")
        #expect(Provider.hubspot.profile.objectName(for: "account") == "companies")
        #expect(Provider.salesforce.profile.objectName(for: "touchpoints__c") == "touchpoints__c")
        #expect(Provider.hubspot.profile.objectName(for: "p_widgets") == "p_widgets")
    }

    @Test("JSON values keep integers exact, including microsecond versions")
    func jsonNumbers() throws {
        let value: JSONValue = ["version": .number(1_795_687_846_542_535), "ratio": .number(0.25), "name": "x"]
        let text = try JSONCoding.encodeString(value)
        #expect(text == #"{"name":"x","ratio":0.25,"version":1795687846542535}"#)
        #expect(try JSONCoding.decode(JSONValue.self, from: text) == value)
    }

    @Test("write requests are keyed by their connection, whatever they write; a record's changes share a key")
    func routingKeys() {
        func request(_ type: WriteType, id: String?, operation: String, installation: String = "n") -> WriteRequestMessage {
            WriteRequestMessage(
                operationId: operation, projectId: "p", integrationId: "i", installationId: installation, groupRef: "g",
                provider: .salesforce, objectName: "Contact", type: type, mode: .asynchronous, record: [:], recordId: id,
                associations: nil, replyTo: nil, acceptedAt: Timestamp.now())
        }
        #expect(request(.update, id: "003A", operation: "1").routingKey == request(.create, id: nil, operation: "2").routingKey)
        #expect(request(.update, id: "003A", operation: "1").routingKey != request(.update, id: "003A", operation: "1", installation: "m").routingKey)
        let update = request(.update, id: "003A", operation: "1")
        #expect(update.recordRoutingKey(recordId: "003A") == request(.delete, id: "003A", operation: "2").recordRoutingKey(recordId: "003A"))
        #expect(update.recordRoutingKey(recordId: "003A") != update.recordRoutingKey(recordId: "003B"))
    }

    @Test("a write's messages carry its identity among their own fields: flat on the wire, read back whole")
    func identityOnTheWire() throws {
        let request = WriteRequestMessage(
            operationId: "op-1", projectId: "p", integrationId: "i", installationId: "inst", groupRef: "g", provider: .hubspot,
            objectName: "contact", type: .update, mode: .asynchronous, record: ["firstname": "Ada"], recordId: "42", associations: nil,
            replyTo: nil, acceptedAt: "2026-12-01T00:00:00.000000Z")
        let wire = try JSONCoding.decode(JSONValue.self, from: try JSONCoding.encode(request))
        #expect(wire["operationId"] == "op-1" && wire["installationId"] == "inst" && wire["type"] == "update")
        #expect(wire["provider"] == "hubspot" && wire["recordId"] == "42" && wire["identity"] == nil && wire["content"] == nil)
        #expect(try JSONCoding.decode(WriteRequestMessage.self, from: try JSONCoding.encode(request)) == request)

        var result = WriteResultMessage(request: request, success: true, recordId: "42", data: nil, error: nil, providerStatus: 200,
                                        possiblyDuplicated: false, attempts: 1, completedAt: "2026-12-01T00:00:01.000000Z", version: 7)
        result.results = [BatchItemResult(success: true, recordId: "42", data: nil, error: nil)]
        #expect(result.identity == request.identity && result.operationId == "op-1" && result.mode == .asynchronous)
        #expect(try JSONCoding.decode(WriteResultMessage.self, from: try JSONCoding.encode(result)) == result)

        // A result as the writer published it before, field by field, reads the same.
        let earlier = #"{"operationId":"op-1","projectId":"p","integrationId":"i","installationId":"inst","groupRef":"g","#
            + #""provider":"hubspot","objectName":"contact","type":"update","mode":"asynchronous","success":true,"recordId":"42","#
            + #""providerStatus":200,"possiblyDuplicated":false,"attempts":1,"completedAt":"2026-12-01T00:00:01.000000Z","version":7,"#
            + #""results":[{"success":true,"recordId":"42"}]}"#
        #expect(try JSONCoding.decode(WriteResultMessage.self, from: earlier) == result)
    }

    @Test("a write request's payload is one record, a batch or a bulk file, each read back as it was sent")
    func payloadOnTheWire() throws {
        func request(batch: [BatchRecord]? = nil, allOrNone: Bool? = nil, bulk: BulkWrite? = nil) -> WriteRequestMessage {
            WriteRequestMessage(
                operationId: "op-2", projectId: "p", integrationId: "i", installationId: "inst", groupRef: "g", provider: .salesforce,
                objectName: "contact", type: .create, mode: .asynchronous, record: batch == nil && bulk == nil ? ["LastName": "Potter"] : [:],
                recordId: nil, associations: nil, replyTo: nil, acceptedAt: "2026-12-01T00:00:00.000000Z", batch: batch,
                allOrNone: allOrNone, bulk: bulk)
        }
        let single = request()
        let batch = request(batch: [BatchRecord(record: ["LastName": "A"], recordId: nil, associations: nil)], allOrNone: true)
        let bulk = request(bulk: BulkWrite(primaryKey: "Email", header: ["Email"], recordsURL: nil, bytes: 10))
        #expect(single.payload == .single(record: ["LastName": "Potter"], recordId: nil, associations: nil))
        #expect(batch.payload == .batch([BatchRecord(record: ["LastName": "A"], recordId: nil, associations: nil)], allOrNone: true))
        #expect(bulk.bulk?.primaryKey == "Email" && bulk.batch == nil && bulk.record.isEmpty)
        for message in [single, batch, bulk] {
            #expect(try JSONCoding.decode(WriteRequestMessage.self, from: try JSONCoding.encode(message)) == message)
            // Every kind keeps `record` on the wire, as readers of the earlier shape need it.
            #expect(try JSONCoding.decode(JSONValue.self, from: try JSONCoding.encode(message))["record"] != nil)
        }
    }

    @Test("a change event is a CloudEvent keyed like the record's writes")
    func changeEvent() throws {
        let request = WriteRequestMessage(
            operationId: "op", projectId: "p", integrationId: "i", installationId: "n", groupRef: "g", provider: .hubspot,
            objectName: "contact", type: .update, mode: .synchronous, record: ["email": "a@b.c"], recordId: "42",
            associations: nil, replyTo: nil, acceptedAt: Timestamp.now())
        let result = WriteResultMessage(
            request: request, success: true, recordId: "42", data: ["email": "a@b.c"], error: nil, providerStatus: 200,
            possiblyDuplicated: false, attempts: 1, completedAt: "2026-01-01T00:00:00.000000Z", version: 7)
        let event = ChangeEvent(result: result, recordId: "42", fields: ["email": "a@b.c"])
        #expect(event.type == "com.writeback.record.updated")
        #expect(event.subject == "contact/42")
        #expect(event.routingKey == request.recordRoutingKey(recordId: "42"))
        let json = try JSONCoding.decode(JSONValue.self, from: try JSONCoding.encode(event))
        #expect(json["specversion"] == "1.0")
        #expect(json.objectValue?["data"]?["fields"]?["email"] == "a@b.c")
    }

    @Test("timestamps are RFC 3339 UTC with microseconds")
    func timestamps() {
        let text = Timestamp.now()
        #expect(text.count == 27)
        #expect(text.hasSuffix("Z"))
        #expect(text.dropFirst(10).first == "T")
        let date = Date(timeIntervalSince1970: 1_795_000_000.123456)
        #expect(abs((Timestamp.parse(Timestamp.format(date))?.timeIntervalSince1970 ?? 0) - 1_795_000_000.123456) < 0.000_01)
        #expect(Timestamp.parse("2026-11-26T12:00:00Z")?.timeIntervalSince1970 == 1_795_694_400)
        #expect(Timestamp.format(Date(timeIntervalSince1970: 1_796_496_509.651234)) == "2026-12-05T18:48:29.651234Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: 0.000_001)) == "1970-01-01T00:00:00.000001Z")
        #expect(Timestamp.format(Date(timeIntervalSince1970: -0.5)) == "1969-12-31T23:59:59.500000Z")
        #expect(Timestamp.parse("yesterday") == nil)
    }

    @Test("service settings come from the environment with their defaults")
    func environment() {
        let environment = ServiceEnvironment(["KAFKA_PROPERTY_SECURITY_PROTOCOL": "ssl", "KAFKA_SESSION_TIMEOUT_MS": "6000"])
        #expect(environment.kafkaBrokers == "127.0.0.1:9092")
        #expect(environment.kafkaProperties == ["security.protocol": "ssl"])
        #expect(environment.kafkaConsumerProperties["session.timeout.ms"] == "6000")
        #expect(environment.int("WRITER_MAX_IN_FLIGHT", default: 32) == 32)
    }
}

@Suite("Backoff")
struct BackoffTests {
    @Test("waits double from the first up to the ceiling; jittered waits stay in the upper half of each")
    func doubling() {
        let plain = Backoff(initial: 0.5, ceiling: 30)
        #expect((1...8).map { plain.delay(after: $0) } == [0.5, 1, 2, 4, 8, 16, 30, 30])
        let jittered = Backoff(initial: 0.5, ceiling: 30, jittered: true)
        for attempt in 1...8 {
            let wait = jittered.delay(after: attempt)
            #expect(wait >= plain.delay(after: attempt) / 2 && wait <= plain.delay(after: attempt))
        }
    }

    @Test("a new operation id is a lowercase UUID of version 7: its time first, so later ids sort after earlier ones; never two alike")
    func operationIds() throws {
        // Half a millisecond into each millisecond, so that the seconds' binary fractions round to it.
        let at = { (step: Int) in Date(timeIntervalSince1970: (Double(1_796_480_000_123 + step) + 0.5) / 1000) }
        let start = at(0)
        var previous = ""
        var seen = Set<String>()
        for step in 0..<200 {
            let id = OperationIdentity.newOperationId(at: at(step))
            let uuid = try #require(UUID(uuidString: id))
            #expect(id == id.lowercased() && id.count == 36)
            #expect(uuid.uuid.6 >> 4 == 7, "version 7")
            #expect(uuid.uuid.8 >> 6 == 2, "RFC 9562 variant")
            let hex = id.replacingOccurrences(of: "-", with: "").prefix(12)
            #expect(UInt64(hex, radix: 16) == 1_796_480_000_123 + UInt64(step), "milliseconds since the epoch first")
            #expect(id > previous)
            previous = id
            seen.insert(id)
        }
        for _ in 0..<1000 { seen.insert(OperationIdentity.newOperationId(at: start)) }
        #expect(seen.count == 1200, "ids of the same millisecond differ in their random bits")
    }

    @Test("random bytes are written as UUID writes them, and a pool read over its refills never hands a byte out twice")
    func randomBytes() throws {
        for _ in 0..<200 {
            let uuid = UUID().uuid
            #expect(RandomBytes.lowercaseText(uuid) == UUID(uuid: uuid).uuidString.lowercased())
        }
        // 16-byte draws across 40 refills of the 4 KiB pool, and draws of odd sizes across its ends.
        var seen = Set<String>()
        for _ in 0..<10_240 { seen.insert(RandomBytes.lowercaseText(RandomBytes.shared.uuid())) }
        #expect(seen.count == 10_240)
        var chunks = Set<[UInt8]>(), drawn = 0
        for size in [1_000, 3_000, 4_095, 4_097, 9_000] {
            var bytes = [UInt8](repeating: 0, count: size)
            bytes.withUnsafeMutableBytes { RandomBytes.shared.fill($0) }
            for start in stride(from: 0, to: size - 15, by: 16) { chunks.insert(Array(bytes[start..<start + 16])); drawn += 1 }
            #expect(Set(bytes).count > 200, "\(size) bytes spread over the byte values")
        }
        #expect(chunks.count == drawn, "no 16 bytes drawn twice")
    }

    @Test("Salesforce's Sforce-Limit-Info is read for its api-usage wherever it stands, and nothing else is taken for it")
    func salesforceUsage() {
        let read = { (info: String) in SalesforceConnector.apiUsage(info).map { [$0.dailyMax ?? -1, $0.dailyRemaining ?? -1] } }
        #expect(read("api-usage=18/5000") == [5000, 4982])
        #expect(read("per-app-api-usage=2/100(appName=x), api-usage=99/100") == [100, 1])
        #expect(read("api-usage=120/100") == [100, 0], "more used than allowed leaves nothing")
        #expect(read("api-usage=7/15000;x") == [15000, 14993])
        for refused in ["", "api-usage=", "api-usage=5", "api-usage=/5", "api-usage=5/", "api-usage=5/6/7", "api-usage=a/5",
                        "api-usage=5/b", "api-usage=-1/5", "usage=1/5", "api-usage=99999999999999999999/5"] {
            #expect(read(refused) == nil, "\(refused)")
        }
    }
}

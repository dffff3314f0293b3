import Foundation
import Secrets
import Shared
import Testing

@Suite("Webhook signing and notification events")
struct WebhookSigningTests {
    @Test("signatures match Standard Webhooks' published example, and change with any part of the message")
    func signature() throws {
        // The example of the Standard Webhooks specification and its reference libraries.
        let key = try #require(StandardWebhooks.key(of: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))
        let body = Array(#"{"test": 2432232314}"#.utf8)
        #expect(StandardWebhooks.signature(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1614265330, body: body, key: key)
            == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        #expect(StandardWebhooks.signature(id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1614265331, body: body, key: key)
            != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        #expect(StandardWebhooks.signature(id: "msg_other", timestamp: 1614265330, body: body, key: key)
            != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        let headers = StandardWebhooks.headers(id: "evt", timestamp: 7, body: body, key: key)
        #expect(headers.map(\.0) == ["webhook-id", "webhook-timestamp", "webhook-signature"])
        #expect(headers[1].1 == "7")
    }

    @Test("new secrets are whsec_ and 32 random bytes, each different")
    func secrets() throws {
        let first = StandardWebhooks.newSecret(), second = StandardWebhooks.newSecret()
        #expect(first.hasPrefix("whsec_") && first != second)
        #expect(try #require(StandardWebhooks.key(of: first)).count == 32)
        #expect(StandardWebhooks.key(of: "whsec_not base64!") == nil)
    }

    @Test("an event reads back as it was written, with its type checked")
    func events() throws {
        let event = NotificationEvent(type: .installationUpdated, projectId: "p", data: ["installation": ["id": "i"]])
        let bytes = try event.encoded()
        #expect(String(decoding: bytes, as: UTF8.self).hasPrefix(#"{"createTime":"#), "keys are sorted")
        #expect(try NotificationEvent(json: bytes) == event)
        #expect(throws: (any Error).self) {
            try NotificationEvent(json: Array(#"{"id":"1","notificationType":"read.backfill.done","projectId":"p","createTime":"t"}"#.utf8))
        }
        #expect(throws: (any Error).self) { try NotificationEvent(json: Array(#"{"id":"1"}"#.utf8)) }
    }
}

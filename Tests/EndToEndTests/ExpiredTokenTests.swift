import Foundation
import ProviderAccess
import Secrets
import Shared
import Testing

/// Access tokens that expire while writes stream, and refresh tokens that stop working.
@Suite("Expired tokens", .serialized, .stack("tokens"))
struct ExpiredTokenTests {
    @Test("tokens expiring mid-stream are renewed once and no write is lost; a refused renewal asks to reconnect")
    func expiredTokens() async throws {
        let stack = try TestStack.stack
        for (integration, record) in [("write-to-salesforce", ["LastName": JSONValue.string("warm-up")]),
                                      ("write-to-hubspot", ["name": JSONValue.string("warm-up")])] {
            let object = integration == "write-to-salesforce" ? "contact" : "company"
            let answer = try await stack.write(integration, object, ["groupRef": .string(TestStack.groupRef), "record": .object(record)])
            #expect(answer.status == 200, "\(answer.body)")
        }
        try await stack.setProviderLatency(milliseconds: 30)
        let baseline = try await stack.providerCalls().count

        // Two customers' streams of creates; the tokens expire while they run.
        let sent = try await withThrowingTaskGroup(of: [(String, String)].self) { group in
            for (integration, object, field) in [("write-to-salesforce", "contact", "LastName"), ("write-to-hubspot", "company", "name")] {
                group.addTask {
                    var sent: [(String, String)] = []
                    for number in 0..<20 {
                        let marker = "\(integration)-token-\(number)"
                        let answer = try await stack.write(integration, object, [
                            "groupRef": .string(TestStack.groupRef), "mode": "asynchronous",
                            "record": [field: .string(marker)],
                        ])
                        try #require(answer.status == 200, "\(answer.body)")
                        sent.append((marker, answer.body["operationId"]!.stringValue!))
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    return sent
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(250))
                _ = try await stack.call("PUT", "\(stack.sandboxURL)/_sandbox/tokens/expire")
                return []
            }
            var all: [(String, String)] = []
            for try await part in group { all += part }
            return all
        }
        for (marker, operationId) in sent {
            let operation = try await stack.finalOperation(operationId)
            #expect(operation["status"] == "success", "\(marker): \(operation)")
        }
        let calls = Array(try await stack.providerCalls().dropFirst(baseline))
        for (marker, _) in sent {
            let created = calls.filter {
                $0["status"] == 201 && ($0.at("body.LastName")?.stringValue == marker || $0.at("body.properties.name")?.stringValue == marker)
            }
            #expect(created.count == 1, "\(marker) was created \(created.count) times")
        }
        for provider in ["salesforce", "hubspot"] {
            let refused = calls.filter { $0["provider"]?.stringValue == provider && $0["status"] == 401 }.count
            let renewals = calls.filter { $0["provider"]?.stringValue == provider && $0["object"] == "oauth" }
            #expect(refused >= 1, "the \(provider) token did not expire mid-stream")
            #expect(renewals.count == 1, "\(provider) tokens renewed \(renewals.count) times")
            #expect(renewals.allSatisfy { $0["status"] == 200 })
        }
        // The renewed tokens are stored sealed: they open with the stack's key, and only with it.
        let stored = try stack.controlQuery(
            "SELECT c.id::text AS id, c.secrets FROM connections c JOIN installations i ON i.connection_id = c.id WHERE i.group_ref = $1 "
                + "AND c.provider IN ('salesforce', 'hubspot')",
            [TestStack.groupRef])
        let box = SecretBox(current: try SecretBox.Key(base64: stack.encryptionKey))
        #expect(stored.count == 2)
        for row in stored.rows {
            let sealed = try #require(row["secrets"])
            #expect(!sealed.contains("-access-"), "a token is stored in clear: \(sealed)")
            let credentials = try StoredCredentials.opened(sealed, by: box, connectionId: try row.string("id"))
            #expect(credentials.accessToken?.contains("-access-") == true, "the renewed token was not stored")
        }

        // The customer revoked the app: renewing fails, and the write says to reconnect.
        _ = try await stack.call("PUT", "\(stack.sandboxURL)/_sandbox/tokens/revoke")
        _ = try await stack.call("PUT", "\(stack.sandboxURL)/_sandbox/tokens/expire")
        let refused = try await stack.write("write-to-hubspot", "company", [
            "groupRef": .string(TestStack.groupRef), "record": ["name": "After revocation"],
        ])
        #expect(refused.status == 422)
        #expect(refused.body.at("errors.0.message")?.stringValue?.hasPrefix("reconnect required:") == true, "\(refused.body)")
        let operation = try await stack.finalOperation(try #require(refused.body["operationId"]?.stringValue))
        #expect(operation["status"] == "failure")
        #expect(operation.at("metadata.errors.0.code") == "RECONNECT_REQUIRED")
    }
}

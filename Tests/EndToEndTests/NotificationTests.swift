import Foundation
import Shared
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Notifications: events routed through topics to webhook destinations, signed as Standard Webhooks has
/// it and checked by its reference verifier in a receiver process of its own; retried, kept through
/// restarts, isolated per destination, and sent only to addresses the operator allows.
@Suite("Notifications", .serialized, .stack("notifications", environment: [
    "WRITEBACK_WEBHOOK_URL_ALLOW": "127.0.0.1",
    "NOTIFIER_RETRY_SCHEDULE": "0.5,1,1,2,2,3,3,5,5,10,10,20,20",
    "NOTIFIER_POLL_MS": "100",
    "NOTIFIER_TIMEOUT_SECONDS": "3",
    "NOTIFIER_MAX_IN_FLIGHT_PER_DESTINATION": "4",
    "NOTIFIER_MAX_IN_FLIGHT_PER_PROJECT": "6",
    "NOTIFIER_MAX_IN_FLIGHT": "12",
    "WRITER_AUTO_BATCH_MAX_DELAY_SECONDS": "1",
    "SHUTDOWN_GRACE_SECONDS": "5",
]))
struct NotificationTests {
    let spec = try! OpenAPISchema(oracle: "ampersand/notifications.yaml")
    static let every = NotificationEventType.allCases.filter { $0 != .destinationWebhookDisabled }
    /// Told by the token renewals of `tokens` (the last test: it revokes the sandbox's tokens).
    static let tokenEvents: Set<NotificationEventType> = [.connectionRefreshed, .connectionError]

    /// A call to `/v1/projects/{project}…` with that project's key.
    func call(_ method: String, _ path: String, _ body: JSONValue? = nil, project: String = TestStack.project,
              key: String = TestStack.apiKey) async throws -> TestStack.Answer {
        let stack = try TestStack.stack
        return try await stack.call(method, "\(stack.apiURL)/v1/projects/\(project)\(path)", body: try body.map { try JSONCoding.encodeString($0) },
                                    headers: [("X-Api-Key", key), ("Content-Type", "application/json")])
    }

    struct Subscription {
        var destinationId: String
        var name: String
        var secret: String
        var path: String
    }

    /// A topic for `events`, a destination at the receiver's `path` and the routes between them; the
    /// receiver checks that path's signatures with the destination's secret.
    func subscribe(_ receiver: WebhookReceiver, path: String, events: [NotificationEventType], statuses: [Int] = [], status: Int = 200,
                   delay: Double = 0, project: String = TestStack.project, key: String = TestStack.apiKey) async throws -> Subscription {
        let name = "dest" + path.replacingOccurrences(of: "/", with: "-")
        let topic = try await call("POST", "/topics", ["name": .string("topic" + path.replacingOccurrences(of: "/", with: "-"))],
                                   project: project, key: key)
        try #require(topic.status == 201, "\(topic.body)")
        let topicId = try #require(topic.body["id"]?.stringValue)
        for event in events {
            let route = try await call("POST", "/notification-event-topic-routes", ["eventType": .string(event.rawValue), "topicId": .string(topicId)],
                                       project: project, key: key)
            try #require(route.status == 201, "\(route.body)")
        }
        let destination = try await call("POST", "/destinations", [
            "name": .string(name), "type": "webhook", "metadata": ["url": .string(receiver.url + path)],
        ], project: project, key: key)
        try #require(destination.status == 201, "\(destination.body)")
        let id = try #require(destination.body["id"]?.stringValue)
        let secret = try #require(destination.body.at("secrets.webhookSigningKey")?.stringValue)
        try await receiver.configure(path, secret: secret, statuses: statuses, status: status, delay: delay)
        let route = try await call("POST", "/topic-destination-routes", ["topicId": .string(topicId), "destinationId": .string(id)],
                                   project: project, key: key)
        try #require(route.status == 201, "\(route.body)")
        return Subscription(destinationId: id, name: name, secret: secret, path: path)
    }

    /// Removes the subscription's destination (and its routes), so that later tests do not send to a
    /// receiver that is gone.
    func unsubscribe(_ subscription: Subscription, project: String = TestStack.project, key: String = TestStack.apiKey) async throws {
        #expect(try await call("DELETE", "/destinations/\(subscription.destinationId)", project: project, key: key).status == 204)
    }

    func asyncWrite(_ name: String) async throws -> String {
        let answer = try await TestStack.stack.write("write-to-hubspot", "company", [
            "groupRef": .string(TestStack.groupRef), "mode": "asynchronous", "record": ["name": .string(name)],
        ])
        try #require(answer.status == 200, "\(answer.body)")
        return try #require(answer.body["operationId"]?.stringValue)
    }

    /// The requests a path received that carry event `id`.
    func arrivals(_ receiver: WebhookReceiver, _ path: String, event id: String) async throws -> [JSONValue] {
        try await receiver.received(path).filter { $0.at("headers.webhook-id")?.stringValue == id }
    }

    /// A received request is a signed delivery of its event that the reference verifier accepted.
    func expectSigned(_ request: JSONValue, _ comment: String = "") {
        let event = request.receivedEvent
        #expect(request["verified"] == true, "\(comment): the Standard Webhooks verifier refused it: \(request["error"] ?? .null)")
        #expect(request.at("headers.webhook-signature")?.stringValue?.hasPrefix("v1,") == true)
        #expect(request.at("headers.webhook-id") == event?["id"], "\(comment): webhook-id is not the event's id")
        #expect(request.at("headers.content-type") == "application/json")
        let timestamp = Double(request.at("headers.webhook-timestamp")?.stringValue ?? "") ?? 0
        #expect(abs(timestamp - Date().timeIntervalSince1970) < 120, "\(comment): webhook-timestamp \(timestamp) is not now")
        for member in ["id", "notificationType", "projectId", "createTime", "data"] {
            #expect(event?[member] != nil, "\(comment): the event has no \(member): \(event ?? .null)")
        }
    }

    @Test("destinations, topics and routes answer in Ampersand's shapes; secrets show once; bad input and private URLs are refused")
    func shapes() async throws {
        let stack = try TestStack.stack
        let topic = try await call("POST", "/topics", ["name": "shape-topic"])
        #expect(topic.status == 201)
        #expect(spec.problems(topic.body, path: "/projects/{projectIdOrName}/topics", method: "POST", status: 201).isEmpty, "\(topic.body)")
        let topicId = try #require(topic.body["id"]?.stringValue)
        #expect(try await call("POST", "/topics", ["name": "shape-topic"]).status == 409)
        #expect(try await call("POST", "/topics", ["name": "not a name!"]).status == 422)
        let renamed = try await call("PATCH", "/topics/\(topicId)", ["name": "shape-topic-2"])
        #expect(renamed.status == 200 && renamed.body["name"] == "shape-topic-2", "\(renamed.body)")
        #expect(spec.problems(renamed.body, path: "/projects/{projectIdOrName}/topics/{topicId}", method: "PATCH", status: 200).isEmpty)
        let topics = try await call("GET", "/topics")
        #expect(spec.problems(topics.body, path: "/projects/{projectIdOrName}/topics", method: "GET", status: 200).isEmpty)

        let created = try await call("POST", "/destinations", [
            "name": "shape-hook", "type": "webhook",
            "metadata": ["url": "http://127.0.0.1:9/hook", "headers": ["Authorization": "Bearer hook-secret-token"]],
        ])
        #expect(created.status == 201, "\(created.body)")
        #expect(spec.problems(created.body, path: "/projects/{projectIdOrName}/destinations", method: "POST", status: 201).isEmpty,
                "\(created.body)")
        let id = try #require(created.body["id"]?.stringValue)
        let secret = try #require(created.body.at("secrets.webhookSigningKey")?.stringValue)
        #expect(secret.hasPrefix("whsec_"))
        // Shown when made, and then only when asked for.
        let plain = try await call("GET", "/destinations/shape-hook")
        #expect(plain.status == 200 && plain.body["secrets"] == nil, "\(plain.body)")
        #expect(plain.body.at("metadata.headers.Authorization") == "********", "a header's value is shown: \(plain.body)")
        #expect(spec.problems(plain.body, path: "/projects/{projectIdOrName}/destinations/{destination}", method: "GET", status: 200).isEmpty)
        let listed = try await call("GET", "/destinations")
        #expect(spec.problems(listed.body, path: "/projects/{projectIdOrName}/destinations", method: "GET", status: 200).isEmpty)
        #expect(!"\(listed.body)".contains(secret) && !"\(listed.body)".contains("hook-secret-token"))
        let shown = try await call("GET", "/destinations/\(id)?includeSecrets=true")
        #expect(shown.body.at("secrets.webhookSigningKey")?.stringValue == secret)
        #expect(shown.body.at("metadata.headers.Authorization") == "Bearer hook-secret-token")
        let rotated = try await call("GET", "/destinations/\(id)?rotate=true")
        let newSecret = try #require(rotated.body.at("secrets.webhookSigningKey")?.stringValue)
        #expect(newSecret != secret && newSecret.hasPrefix("whsec_"))
        // Sealed at rest.
        let stored = try stack.controlQuery("SELECT signing_secret, coalesce(headers, '') AS headers FROM notification_destinations WHERE id = $1::uuid", [id])
        #expect(stored.count == 1)
        #expect(stored.rows.allSatisfy { !($0["signing_secret"] ?? "").contains("whsec_") && !($0["headers"] ?? "").contains("hook-secret") })

        let patched = try await call("PATCH", "/destinations/\(id)", [
            "updateMask": ["name", "metadata.url"], "destination": ["name": "shape-hook-2", "metadata": ["url": "http://127.0.0.1:9/other"]],
        ])
        #expect(patched.status == 200 && patched.body["name"] == "shape-hook-2" && patched.body.at("metadata.url") == "http://127.0.0.1:9/other",
                "\(patched.body)")
        #expect(spec.problems(patched.body, path: "/projects/{projectIdOrName}/destinations/{destination}", method: "PATCH", status: 200).isEmpty)
        #expect(try await call("PATCH", "/destinations/\(id)", ["updateMask": ["secrets.awsKeyId"], "destination": [:]]).status == 400)

        // Refused, with the field named, and nothing made.
        for (body, status, field) in [
            (["type": "webhook", "metadata": ["url": "http://127.0.0.1:9/x"]] as JSONValue, 400, "name"),
            (["name": "x", "type": "webhook", "metadata": [:]], 400, "metadata.url"),
            (["name": "x", "type": "kinesis", "metadata": ["url": "http://127.0.0.1:9/x"]], 422, "type"),
            (["name": "x", "type": "webhook", "metadata": ["url": "http://10.0.0.7/hook"]], 422, "metadata.url"),
            (["name": "x", "type": "webhook", "metadata": ["url": "http://169.254.169.254/latest/meta-data"]], 422, "metadata.url"),
            (["name": "x", "type": "webhook", "metadata": ["url": "http://[::1]:9/hook"]], 422, "metadata.url"),
            (["name": "x", "type": "webhook", "metadata": ["url": "http://localhost:9/hook"]], 422, "metadata.url"),
            (["name": "x", "type": "webhook", "metadata": ["url": "http://192.168.1.20/hook"]], 422, "metadata.url"),
            (["name": "x", "type": "webhook", "metadata": ["url": "ftp://example.com/hook"]], 422, "metadata.url"),
            (["name": "x", "type": "webhook", "metadata": ["url": "http://127.0.0.1:9/x", "headers": ["webhook-signature": "v1,forged"]]],
             422, "metadata.headers.webhook-signature"),
            (["name": "shape-hook-2", "type": "webhook", "metadata": ["url": "http://127.0.0.1:9/x"]], 409, "name"),
        ] {
            let answer = try await call("POST", "/destinations", body)
            #expect(answer.status == status, "\(body): \(answer.status) \(answer.body)")
            #expect(answer.body.at("issues.0.name")?.stringValue == field, "\(body): \(answer.body)")
        }
        #expect(try await call("GET", "/destinations").body.arrayValue?.count == 1)

        let route = try await call("POST", "/notification-event-topic-routes", ["eventType": "write.async.done", "topicId": .string(topicId)])
        #expect(route.status == 201, "\(route.body)")
        #expect(spec.problems(route.body, path: "/projects/{projectIdOrName}/notification-event-topic-routes", method: "POST", status: 201).isEmpty)
        #expect(try await call("POST", "/notification-event-topic-routes", ["eventType": "read.backfill.done", "topicId": .string(topicId)]).status == 422)
        #expect(try await call("POST", "/notification-event-topic-routes", ["eventType": "write.async.done",
                                                                            "topicId": .string(UUID().uuidString)]).status == 404)
        let routes = try await call("GET", "/notification-event-topic-routes?eventType=write.async.done")
        #expect(routes.body.arrayValue?.count == 1)
        #expect(spec.problems(routes.body, path: "/projects/{projectIdOrName}/notification-event-topic-routes", method: "GET", status: 200).isEmpty)
        let link = try await call("POST", "/topic-destination-routes", ["topicId": .string(topicId), "destinationId": .string(id)])
        #expect(link.status == 201)
        #expect(spec.problems(link.body, path: "/projects/{projectIdOrName}/topic-destination-routes", method: "POST", status: 201).isEmpty)
        #expect(try await call("POST", "/topic-destination-routes", ["topicId": .string(topicId), "destinationId": "nowhere"]).status == 404)
        let links = try await call("GET", "/topic-destination-routes?destinationId=\(id)")
        #expect(links.body.arrayValue?.count == 1)
        #expect(spec.problems(links.body, path: "/projects/{projectIdOrName}/topic-destination-routes", method: "GET", status: 200).isEmpty)
        // A readable name, as Ampersand's own example renames a topic.
        #expect(try await call("PATCH", "/topics/\(topicId)", ["name": "Updated System Alerts"]).body["name"] == "Updated System Alerts")
        #expect(try await call("DELETE", "/notification-event-topic-routes/\(try #require(route.body["id"]?.stringValue))").status == 204)
        #expect(try await call("DELETE", "/topic-destination-routes/\(try #require(link.body["id"]?.stringValue))").status == 204)
        #expect(try await call("DELETE", "/topics/\(topicId)").status == 204)
        #expect(try await call("DELETE", "/destinations/\(id)").status == 204)
        #expect(try await call("GET", "/destinations/\(id)").status == 404)
        #expect(try await call("DELETE", "/topics/\(topicId)").status == 404)
    }

    @Test("each event type reaches the destinations routed to it once, signed so that the Standard Webhooks verifier accepts it")
    func everyEvent() async throws {
        let stack = try TestStack.stack
        let receiver = try WebhookReceiver(stack: stack, name: "every")
        try await receiver.start()
        defer { receiver.stop() }
        let all = try await subscribe(receiver, path: "/all", events: Self.every)
        // A second destination routed only write.async.done gets nothing else.
        let writesOnly = try await subscribe(receiver, path: "/writes", events: [.writeAsyncDone])

        // Connections and installations, made, changed and removed through the api.
        let connection = try await call("POST", "/connections:generate", [
            "provider": "hubspot", "groupRef": "notified-group", "consumerRef": "notified-group",
            "providerMetadata": ["baseUrl": ["value": .string(stack.sandboxURL), "source": "input"]],
            "oauth2AuthorizationCode": ["accessToken": ["token": "sandbox-hubspot-token"]],
        ])
        try #require(connection.status == 201, "\(connection.body)")
        let connectionId = try #require(connection.body["id"]?.stringValue)
        #expect(try await call("PATCH", "/connections/\(connectionId)", [
            "updateMask": ["providerWorkspaceRef"], "connection": ["providerWorkspaceRef": "notified-portal"],
        ]).status == 200)
        let installation = try await call("POST", "/integrations/write-to-hubspot/installations", [
            "groupRef": "notified-group", "connectionId": .string(connectionId), "config": ["content": [:]],
        ])
        try #require(installation.status == 201, "\(installation.body)")
        let installationId = try #require(installation.body["id"]?.stringValue)
        #expect(try await call("PATCH", "/integrations/write-to-hubspot/installations/\(installationId)",
                               ["installation": ["config": ["content": [:]]]]).status == 200)
        #expect(try await call("DELETE", "/connections/\(connectionId)").status == 409, "a connection in use is not deleted")

        // Asynchronous writes of every kind: single, batch, auto-batched, bulk; and one synchronous.
        let single = try await asyncWrite("Notified single")
        let batch = try await stack.write("write-to-hubspot", "company", [
            "groupRef": .string(TestStack.groupRef), "type": "create", "mode": "asynchronous",
            "batch": [["record": ["name": "Notified batch 1"]], ["record": ["name": "Notified batch 2"]]],
        ])
        try #require(batch.status == 200, "\(batch.body)")
        let auto = try await stack.write("write-to-hubspot", "company", [
            "groupRef": .string(TestStack.groupRef), "mode": "asynchronous", "record": ["name": "Notified auto"],
            "autoBatchPolicy": ["maxDelayMinutes": 1],
        ])
        try #require(auto.status == 200, "\(auto.body)")
        let bulk = try await stack.call(
            "PUT", "\(stack.apiURL)/v1/projects/\(TestStack.project)/integrations/write-to-salesforce/objects/contact:async",
            body: try JSONCoding.encodeString(JSONValue.object([
                "groupRef": .string(TestStack.groupRef), "primaryKey": "External_Id__c",
                "recordsCSV": "External_Id__c,LastName\nnotified-1,Bulk\nnotified-2,\n",
            ])), headers: [("X-Api-Key", TestStack.apiKey), ("Content-Type", "application/json")])
        try #require(bulk.status == 200, "\(bulk.body)")
        let sync = try await stack.write("write-to-hubspot", "company", [
            "groupRef": .string(TestStack.groupRef), "record": ["name": "Notified sync"],
        ])
        #expect(sync.status == 200, "\(sync.body)")
        let operations = [single, try #require(batch.body["operationId"]?.stringValue), try #require(auto.body["operationId"]?.stringValue),
                          try #require(bulk.body["operationId"]?.stringValue)]
        for operation in operations { _ = try await stack.finalOperation(operation) }

        #expect(try await call("DELETE", "/integrations/write-to-hubspot/installations/\(installationId)").status == 204)
        #expect(try await call("DELETE", "/connections/\(connectionId)").status == 204)

        func types() async throws -> [String: [JSONValue]] {
            Dictionary(grouping: try await receiver.received("/all")) { $0.receivedEvent?["notificationType"]?.stringValue ?? "" }
        }
        let arrived = try await eventually(.seconds(60)) {
            let seen = try await types()
            return Self.every.allSatisfy { Self.tokenEvents.contains($0) || seen[$0.rawValue] != nil }
                && (seen["write.async.done"]?.count ?? 0) >= operations.count
        }
        let seen = try await types()
        #expect(arrived, "missing: \(Self.every.filter { !Self.tokenEvents.contains($0) }.map(\.rawValue).filter { seen[$0] == nil })")
        try await Task.sleep(for: .seconds(1))
        let requests = try await receiver.received("/all")
        for request in requests { expectSigned(request, request.receivedEvent?["notificationType"]?.stringValue ?? "?") }
        // Each event once: no id twice, every answer a 200.
        let ids = requests.compactMap { $0.at("headers.webhook-id")?.stringValue }
        #expect(Set(ids).count == ids.count, "an event was delivered twice: \(ids)")
        #expect(requests.allSatisfy { $0["answered"] == 200 })

        // write.async.done: the operation, final, under the operation's id; none for the synchronous write.
        let done = (seen["write.async.done"] ?? []).compactMap(\.receivedEvent)
        #expect(Set(done.compactMap { $0["id"]?.stringValue }) == Set(operations), "\(done.map { $0["id"] ?? .null })")
        #expect(!done.contains { $0["id"]?.stringValue == sync.body["operationId"]?.stringValue })
        for event in done {
            let operation = try #require(event.at("data.operation"))
            #expect(operation["id"] == event["id"] && ["success", "failure"].contains(operation["status"]?.stringValue ?? ""), "\(event)")
            #expect(event["projectId"] == operation["projectId"])
        }
        let bulkEvent = try #require(done.first { $0["id"]?.stringValue == operations[3] })
        #expect(bulkEvent.at("data.operation.metadata.progress.failed") == 1, "\(bulkEvent)")
        #expect(bulkEvent.at("data.operation.metadata.failedRecordsURL")?.stringValue?.hasSuffix("/failed-records") == true)
        let batchEvent = try #require(done.first { $0["id"]?.stringValue == operations[1] })
        #expect(batchEvent.at("data.operation.metadata.batchSize") == 2 && batchEvent.at("data.operation.status") == "success")

        let created = try #require(seen["connection.created"]?.first?.receivedEvent)
        #expect(created.at("data.connection.id")?.stringValue == connectionId, "\(created)")
        #expect(created.at("data.connection.secrets") == nil)
        #expect(seen["connection.updated"]?.first?.receivedEvent?.at("data.connection.providerWorkspaceRef") == "notified-portal")
        #expect(seen["connection.deleted"]?.first?.receivedEvent?.at("data.connection.id")?.stringValue == connectionId)
        for type in ["installation.created", "installation.updated", "installation.deleted"] {
            #expect(seen[type]?.first?.receivedEvent?.at("data.installation.id")?.stringValue == installationId, "\(type)")
        }
        #expect(!"\(requests)".contains("sandbox-hubspot"), "a token was sent in a notification")

        let writes = try await receiver.received("/writes").compactMap { $0.receivedEvent?["notificationType"]?.stringValue }
        #expect(Set(writes) == ["write.async.done"] && writes.count == operations.count, "\(writes)")
        for request in try await receiver.received("/writes") { expectSigned(request, "writes") }
        try await unsubscribe(all)
        try await unsubscribe(writesOnly)
    }

    @Test("a receiver answering 503 and then 200 gets the event once after it recovers; a 400 is not retried, and can be sent again")
    func retries() async throws {
        let stack = try TestStack.stack
        let receiver = try WebhookReceiver(stack: stack, name: "retries")
        try await receiver.start()
        defer { receiver.stop() }
        let flaky = try await subscribe(receiver, path: "/flaky", events: [.installationUpdated], statuses: [503, 503])
        let installation = try #require(try await call("GET", "/integrations/write-to-hubspot/installations?groupRef=\(TestStack.groupRef)")
            .body.arrayValue?.first?["id"]?.stringValue)
        let content = try await call("GET", "/integrations/write-to-hubspot/installations/\(installation)")
        let update = ["installation": ["config": ["content": try #require(content.body.at("config.content"))]]] as JSONValue
        #expect(try await call("PATCH", "/integrations/write-to-hubspot/installations/\(installation)", update).status == 200)
        #expect(try await eventually { try await receiver.received("/flaky").contains { $0["answered"] == 200 } })
        try await Task.sleep(for: .seconds(2))
        let requests = try await receiver.received("/flaky")
        #expect(requests.map { $0["answered"]?.numberValue ?? 0 } == [503, 503, 200], "\(requests.map { $0["answered"] ?? .null })")
        #expect(Set(requests.compactMap { $0.at("headers.webhook-id")?.stringValue }).count == 1, "one event, sent three times")
        for request in requests { expectSigned(request, "flaky") }
        let eventId = try #require(requests.first?.at("headers.webhook-id")?.stringValue)

        // Each attempt is readable per event and per destination, through the api and the CLI.
        let deliveries = try await call("GET", "/notification-events/\(eventId)/deliveries")
        let delivery = try #require(deliveries.body["deliveries"]?.arrayValue?.first { $0["destinationId"]?.stringValue == flaky.destinationId })
        #expect(delivery["state"] == "delivered")
        #expect(delivery["attempts"]?.arrayValue?.map { $0["status"]?.numberValue ?? 0 } == [503, 503, 200], "\(delivery)")
        #expect(delivery["attempts"]?.arrayValue?.allSatisfy { ($0["durationMs"]?.numberValue ?? -1) >= 0 } == true)
        #expect(delivery.at("attempts.0.error")?.stringValue?.hasPrefix("HTTP 503") == true, "\(delivery)")
        let perDestination = try await call("GET", "/destinations/\(flaky.name)/deliveries")
        #expect(perDestination.body["deliveries"]?.arrayValue?.first?["id"] == delivery["id"])
        let cli = try stack.output("writeback", ["deliveries", "--event", eventId], environment: [
            "WRITEBACK_API_URL": stack.apiURL, "WRITEBACK_API_KEY": TestStack.apiKey, "WRITEBACK_PROJECT": TestStack.project,
        ])
        #expect(cli.status == 0 && cli.text.contains("HTTP 503") && cli.text.contains("HTTP 200") && cli.text.contains("delivered"), "\(cli.text)")

        // A 400 is the receiver's final word: one attempt, failed; sent again on request, it arrives.
        try await receiver.configure("/flaky", secret: flaky.secret, status: 400)
        #expect(try await call("PATCH", "/integrations/write-to-hubspot/installations/\(installation)", update).status == 200)
        #expect(try await eventually { try await receiver.received("/flaky").count == 4 })
        let refusedId = try #require(try await receiver.received("/flaky").last?.at("headers.webhook-id")?.stringValue)
        var failed: JSONValue = .null
        #expect(try await eventually {
            failed = try await call("GET", "/notification-events/\(refusedId)/deliveries").body.at("deliveries.0") ?? .null
            return failed["state"] == "failed"
        }, "\(failed)")
        try await Task.sleep(for: .seconds(2))
        #expect(try await receiver.received("/flaky").count == 4, "a 400 was retried")
        #expect(failed["attempts"]?.arrayValue?.count == 1 && failed.at("attempts.0.status") == 400)
        try await receiver.configure("/flaky", secret: flaky.secret, status: 200)
        let resend = try stack.output("writeback", ["deliveries", "--resend", try #require(failed["id"]?.stringValue)], environment: [
            "WRITEBACK_API_URL": stack.apiURL, "WRITEBACK_API_KEY": TestStack.apiKey, "WRITEBACK_PROJECT": TestStack.project,
        ])
        #expect(resend.status == 0, "\(resend.text)")
        #expect(try await eventually { try await arrivals(receiver, "/flaky", event: refusedId).contains { $0["answered"] == 200 } })
        let after = try await call("GET", "/notification-deliveries/\(try #require(failed["id"]?.stringValue))")
        #expect(after.body["state"] == "delivered" && after.body["attempts"]?.arrayValue?.count == 2, "\(after.body)")
        try await unsubscribe(flaky)
    }

    @Test("a receiver that is down while the notifier is killed and restarted still gets every event, once")
    func downThroughRestart() async throws {
        let stack = try TestStack.stack
        let receiver = try WebhookReceiver(stack: stack, name: "down")
        try await receiver.start()
        defer { receiver.stop() }
        let down = try await subscribe(receiver, path: "/down", events: [.writeAsyncDone])
        receiver.kill()
        var operations: [String] = []
        for number in 0..<5 { operations.append(try await asyncWrite("Down \(number)")) }
        for operation in operations { _ = try await stack.finalOperation(operation) }
        try await Task.sleep(for: .seconds(1))
        stack.kill("notifier")
        for number in 5..<10 { operations.append(try await asyncWrite("Down \(number)")) }
        for operation in operations.suffix(5) { _ = try await stack.finalOperation(operation) }
        try stack.start("notifier")
        try await Task.sleep(for: .seconds(2))
        try await receiver.start()
        let all = try await eventually(.seconds(60)) {
            let ok = Set(try await receiver.received("/down").filter { $0["answered"] == 200 }.compactMap { $0.at("headers.webhook-id")?.stringValue })
            return Set(operations).isSubset(of: ok)
        }
        #expect(all, "not every event arrived")
        try await Task.sleep(for: .seconds(1))
        let requests = try await receiver.received("/down")
        for request in requests { expectSigned(request, "down") }
        let ids = requests.compactMap { $0.at("headers.webhook-id")?.stringValue }
        #expect(Set(ids) == Set(operations) && ids.count == operations.count, "\(ids.count) requests for \(operations.count) events")
        // The attempts made while it was down are on record.
        let delivery = try await call("GET", "/notification-events/\(operations[0])/deliveries").body["deliveries"]?.arrayValue?
            .first { $0["destinationId"]?.stringValue == down.destinationId }
        #expect(delivery?["state"] == "delivered" && (delivery?["attempts"]?.arrayValue?.count ?? 0) >= 2, "\(delivery ?? .null)")
        #expect(delivery?.at("attempts.0.status") == .null && delivery?.at("attempts.0.error")?.stringValue?.isEmpty == false,
                "\(delivery ?? .null)")
        try await unsubscribe(down)
    }

    @Test("a notifier stopped (SIGTERM) during an attempt lets it end and sends it once; a PostgreSQL restart loses no delivery")
    func stopAndRestart() async throws {
        let stack = try TestStack.stack
        let receiver = try WebhookReceiver(stack: stack, name: "stop")
        try await receiver.start()
        defer { receiver.stop() }
        let slow = try await subscribe(receiver, path: "/slow", events: [.writeAsyncDone], delay: 1.5)
        let operation = try await asyncWrite("Slow receiver")
        #expect(try await eventually { !(try await arrivals(receiver, "/slow", event: operation)).isEmpty })
        stack.kill("notifier", signal: SIGTERM)
        try stack.start("notifier")
        var delivery: JSONValue = .null
        #expect(try await eventually {
            delivery = try await call("GET", "/notification-events/\(operation)/deliveries").body["deliveries"]?.arrayValue?
                .first { $0["destinationId"]?.stringValue == slow.destinationId } ?? .null
            return delivery["state"] == "delivered"
        }, "\(delivery)")
        try await Task.sleep(for: .seconds(2))
        #expect(try await arrivals(receiver, "/slow", event: operation).count == 1, "the attempt under way at the stop was sent again")
        #expect(delivery["attempts"]?.arrayValue?.count == 1 && delivery.at("attempts.0.status") == 200, "\(delivery)")
        try await unsubscribe(slow)

        // Deliveries waiting for their retry while the database restarts.
        let flaky = try await subscribe(receiver, path: "/restart", events: [.writeAsyncDone], statuses: [503, 503, 503, 503, 503])
        var operations: [String] = []
        for number in 0..<5 { operations.append(try await asyncWrite("Restart \(number)")) }
        #expect(try await eventually { try await receiver.received("/restart").count >= 3 })
        try stack.restartPostgres()
        for number in 5..<8 { operations.append(try await asyncWrite("Restart \(number)")) }
        #expect(try await eventually(.seconds(60)) {
            Set(operations).isSubset(of: Set(try await receiver.received("/restart").filter { $0["answered"] == 200 }
                .compactMap { $0.at("headers.webhook-id")?.stringValue }))
        }, "not every event arrived after the restart")
        try await unsubscribe(flaky)
    }

    @Test("a dead destination of one project delays neither another project's deliveries nor any write")
    func deadDestination() async throws {
        let stack = try TestStack.stack
        let seeded = try stack.output("writeback-dev", ["seed"], environment: ["SEED_PROJECT": "other-project", "SEED_API_KEY": "other-key"])
        try #require(seeded.status == 0, "\(seeded.text)")
        let receiver = try WebhookReceiver(stack: stack, name: "dead")
        try await receiver.start()
        defer { receiver.stop() }
        // The other project's three endpoints answer nothing within the notifier's timeout: uncapped, their
        // 4 attempts each would hold all 12 of the notifier's; the project's share is 6.
        var deads: [Subscription] = []
        for number in 1...3 {
            deads.append(try await subscribe(receiver, path: "/dead\(number)", events: [.connectionCreated], delay: 20,
                                             project: "other-project", key: "other-key"))
        }
        let dead = deads[0]
        let alive = try await subscribe(receiver, path: "/alive", events: [.writeAsyncDone])
        for number in 0..<30 {
            let made = try await call("POST", "/connections:generate", [
                "provider": "hubspot", "groupRef": .string("other-\(number)"), "consumerRef": "other",
                "providerMetadata": ["baseUrl": ["value": .string(stack.sandboxURL), "source": "input"]],
                "apiKey": .string("other-key-\(number)"),
            ], project: "other-project", key: "other-key")
            try #require(made.status == 201, "\(made.body)")
        }
        #expect(try await eventually { try await receiver.received("/dead1").count >= 2 }, "the dead endpoints were not called")
        var operations: [String] = []
        let started = ContinuousClock.now
        for number in 0..<10 { operations.append(try await asyncWrite("Alive \(number)")) }
        for operation in operations { _ = try await stack.finalOperation(operation) }
        let writes = ContinuousClock.now - started
        #expect(writes < .seconds(10), "ten writes took \(writes)")
        #expect(try await eventually(.seconds(20)) {
            Set(operations).isSubset(of: Set(try await receiver.received("/alive").compactMap { $0.at("headers.webhook-id")?.stringValue }))
        })
        // From each operation's end to its webhook: well under the dead endpoint's 3-second timeouts.
        for request in try await receiver.received("/alive") {
            guard let event = request.receivedEvent, let id = event["id"]?.stringValue, operations.contains(id),
                  let ended = Timestamp.parse(event["createTime"]?.stringValue ?? ""), let at = request["time"]?.numberValue
            else { continue }
            let delay = at - ended.timeIntervalSince1970
            #expect(delay < 2.5, "\(id) arrived \(delay) s after its operation ended")
            expectSigned(request, "alive")
        }
        // The dead ones hold at most their share: never more than 4 attempts to one, nor 6 to all three,
        // begun within one timeout.
        func crowded(_ paths: [String]) async throws -> Int {
            var starts: [Double] = []
            for path in paths { starts += try await receiver.received(path).compactMap { $0["time"]?.numberValue } }
            return starts.map { start in starts.filter { $0 >= start && $0 < start + 2.5 }.count }.max() ?? 0
        }
        #expect(try await crowded(["/dead1"]) <= 4, "more than 4 attempts to one dead endpoint at once")
        let together = try await crowded(["/dead1", "/dead2", "/dead3"])
        #expect(together <= 6 && together >= 5, "\(together) attempts to the project's dead endpoints at once")
        var attempted: [JSONValue] = []
        #expect(try await eventually(.seconds(15)) {
            let deliveries = try await call("GET", "/destinations/\(dead.name)/deliveries?pageSize=100", project: "other-project", key: "other-key")
            attempted = (deliveries.body["deliveries"]?.arrayValue ?? []).flatMap { $0["attempts"]?.arrayValue ?? [] }
            return attempted.contains { $0["error"]?.stringValue?.contains("no answer within 3 s") == true }
        }, "\(attempted.prefix(3))")
        // One project cannot read another's.
        #expect(try await call("GET", "/destinations/\(dead.destinationId)").status == 404)
        #expect(try await call("GET", "/destinations/\(alive.destinationId)", project: "other-project", key: "other-key").status == 404)
        for subscription in deads { try await unsubscribe(subscription, project: "other-project", key: "other-key") }
        try await unsubscribe(alive)
    }

    @Test("a destination that keeps failing is disabled and says so; its events wait, are sent when it is enabled again, and then expire")
    func disabled() async throws {
        let stack = try TestStack.stack
        stack.kill("notifier", signal: SIGTERM)
        // Events are kept for 3 s once nothing of theirs is pending (30 days by default).
        try stack.start("notifier", environment: ["NOTIFIER_DISABLE_AFTER_SECONDS": "1", "NOTIFIER_RETENTION_DAYS": String(3.0 / 86_400)])
        defer {
            stack.kill("notifier", signal: SIGTERM)
            try? stack.start("notifier")
        }
        let receiver = try WebhookReceiver(stack: stack, name: "disabled")
        try await receiver.start()
        defer { receiver.stop() }
        let alerts = try await subscribe(receiver, path: "/alerts", events: [.destinationWebhookDisabled])
        let failing = try await subscribe(receiver, path: "/failing", events: [.writeAsyncDone], status: 503)
        var operations = [try await asyncWrite("Failing 0"), try await asyncWrite("Failing 1")]
        func alert() async throws -> JSONValue? {
            try await receiver.received("/alerts").first { $0.receivedEvent?.at("data.destination.id")?.stringValue == failing.destinationId }
        }
        #expect(try await eventually(.seconds(30)) { try await alert() != nil }, "no destination.webhook.disabled")
        let alert = try #require(try await alert())
        expectSigned(alert, "alerts")
        #expect(alert.receivedEvent?.at("data.destination.id")?.stringValue == failing.destinationId, "\(alert)")
        #expect(alert.receivedEvent?["notificationType"] == "destination.webhook.disabled")
        let shown = try await call("GET", "/destinations/\(failing.name)")
        #expect(shown.body["disabled"] == true && shown.body["disabledReason"] != nil, "\(shown.body)")

        // While it is disabled nothing is sent to it; its events wait.
        operations.append(try await asyncWrite("Failing 2"))
        for operation in operations { _ = try await stack.finalOperation(operation) }
        try await Task.sleep(for: .seconds(2))
        let before = try await receiver.received("/failing").count
        try await Task.sleep(for: .seconds(2))
        #expect(try await receiver.received("/failing").count == before, "a disabled destination was called")
        let pending = try await call("GET", "/destinations/\(failing.name)/deliveries?state=pending")
        #expect(Set(pending.body["deliveries"]?.arrayValue?.compactMap { $0["eventId"]?.stringValue } ?? []) == Set(operations), "\(pending.body)")

        // Enabled again (the CLI), it gets every event.
        try await receiver.configure("/failing", secret: failing.secret, status: 200)
        let enable = try stack.output("writeback", ["destinations", "--enable", failing.name], environment: [
            "WRITEBACK_API_URL": stack.apiURL, "WRITEBACK_API_KEY": TestStack.apiKey, "WRITEBACK_PROJECT": TestStack.project,
        ])
        #expect(enable.status == 0, "\(enable.text)")
        #expect(try await eventually {
            Set(operations).isSubset(of: Set(try await receiver.received("/failing").filter { $0["answered"] == 200 }
                .compactMap { $0.at("headers.webhook-id")?.stringValue }))
        })
        #expect(try await call("GET", "/destinations/\(failing.name)").body["disabled"] == false)
        // Delivered, they are removed once kept long enough (the waiting ones above were kept).
        #expect(try await eventually(.seconds(20)) {
            try await call("GET", "/notification-events/\(operations[0])").status == 404
        }, "a delivered event was kept past its retention")
        try await unsubscribe(alerts)
        try await unsubscribe(failing)
    }

    @Test("a 307 is followed to an allowed address; a redirect to a private address is refused at delivery, and not retried")
    func redirectRefused() async throws {
        let stack = try TestStack.stack
        let receiver = try WebhookReceiver(stack: stack, name: "redirect")
        try await receiver.start()
        defer { receiver.stop() }
        // A 307 to another path of the same allowed host is followed, with the same signed POST.
        let moved = try await subscribe(receiver, path: "/moved", events: [.writeAsyncDone], status: 307)
        try await receiver.configure("/moved", secret: moved.secret, status: 307, location: "/landed")
        try await receiver.configure("/landed", secret: moved.secret)
        let followed = try await asyncWrite("Followed")
        #expect(try await eventually { !(try await arrivals(receiver, "/landed", event: followed)).isEmpty })
        for request in try await arrivals(receiver, "/landed", event: followed) { expectSigned(request, "landed") }
        try await unsubscribe(moved)

        let hop = try await subscribe(receiver, path: "/hop", events: [.writeAsyncDone], status: 307)
        try await receiver.configure("/hop", secret: hop.secret, status: 307, location: "http://10.20.30.40/steal")
        let operation = try await asyncWrite("Redirected")
        var delivery: JSONValue = .null
        #expect(try await eventually {
            delivery = try await call("GET", "/notification-events/\(operation)/deliveries").body["deliveries"]?.arrayValue?
                .first { $0["destinationId"]?.stringValue == hop.destinationId } ?? .null
            return delivery["state"] == "failed"
        }, "\(delivery)")
        #expect(delivery["attempts"]?.arrayValue?.count == 1)
        #expect(delivery.at("attempts.0.error")?.stringValue?.contains("10.20.30.40") == true, "\(delivery)")
        #expect(delivery.at("attempts.0.error")?.stringValue?.contains("private") == true, "\(delivery)")
        try await unsubscribe(hop)
    }

    @Test("a renewed token is told as connection.refreshed; a refused renewal as connection.error, once per connection")
    func tokens() async throws {
        let stack = try TestStack.stack
        let receiver = try WebhookReceiver(stack: stack, name: "tokens")
        try await receiver.start()
        defer { receiver.stop() }
        let subscription = try await subscribe(receiver, path: "/tokens", events: Array(Self.tokenEvents))
        // Renewed tokens, then a refused renewal.
        _ = try await stack.call("PUT", "\(stack.sandboxURL)/_sandbox/tokens/expire")
        #expect(try await stack.write("write-to-hubspot", "company", ["groupRef": .string(TestStack.groupRef), "record": ["name": "Renewed"]])
            .status == 200)
        _ = try await stack.call("PUT", "\(stack.sandboxURL)/_sandbox/tokens/revoke")
        _ = try await stack.call("PUT", "\(stack.sandboxURL)/_sandbox/tokens/expire")
        for number in 0..<3 {
            let refused = try await stack.write("write-to-hubspot", "company", [
                "groupRef": .string(TestStack.groupRef), "record": ["name": .string("Refused \(number)")],
            ])
            #expect(refused.status == 422, "\(refused.body)")
        }

        func types() async throws -> [String: [JSONValue]] {
            Dictionary(grouping: try await receiver.received("/tokens")) { $0.receivedEvent?["notificationType"]?.stringValue ?? "" }
        }
        #expect(try await eventually {
            let seen = try await types()
            return seen["connection.refreshed"] != nil && seen["connection.error"] != nil
        })
        try await Task.sleep(for: .seconds(1))
        let seen = try await types()
        for request in try await receiver.received("/tokens") { expectSigned(request, "tokens") }
        let renewed = try #require(seen["connection.refreshed"]?.first?.receivedEvent)
        #expect(renewed.at("data.connection.status") == "created" && renewed.at("data.connection.provider") == "hubspot", "\(renewed)")
        // Three refused writes, one connection: told once.
        #expect(seen["connection.error"]?.count == 1, "\(seen["connection.error"]?.count ?? 0) connection.error events")
        let broken = try #require(seen["connection.error"]?.first?.receivedEvent)
        #expect(broken.at("data.error.code")?.stringValue?.isEmpty == false && broken.at("data.connection.status") == "bad_credentials",
                "\(broken)")
        #expect(!"\(try await receiver.received("/tokens"))".contains("sandbox-hubspot"), "a token was sent in a notification")
        try await unsubscribe(subscription)
    }
}

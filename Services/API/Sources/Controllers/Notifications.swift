import Foundation
import HTTPClient
import Hummingbird
import Postgres
import Secrets
import Shared
import Schema

/// Where a project's notifications go, in the Ampersand shapes: webhook destinations (`…/destinations`),
/// topics (`…/topics`), which event types go to which topic (`…/notification-event-topic-routes`) and
/// which topics to which destination (`…/topic-destination-routes`); and what became of each event
/// (`…/notification-events`, `…/notification-deliveries`), with a failed delivery sent again on request.
struct NotificationsController: Controller {
    let configuration: APIConfiguration
    let control: ControlData
    let database: PostgresPool

    func addRoutes(to projects: RouterGroup<APIContext>) {
        projects.post("destinations") { try await self.createDestination($0, $1) }
        projects.get("destinations") { try await self.listDestinations($0, $1) }
        projects.get("destinations/:destination") { try await self.getDestination($0, $1) }
        projects.patch("destinations/:destination") { try await self.updateDestination($0, $1) }
        projects.delete("destinations/:destination") { try await self.deleteDestination($0, $1) }
        projects.get("destinations/:destination/deliveries") { try await self.destinationDeliveries($0, $1) }

        projects.post("topics") { try await self.createTopic($0, $1) }
        projects.get("topics") { try await self.listTopics($0, $1) }
        projects.get("topics/:topic") { try await self.getTopic($0, $1) }
        projects.patch("topics/:topic") { try await self.updateTopic($0, $1) }
        projects.delete("topics/:topic") { try await self.deleteTopic($0, $1) }

        projects.post("notification-event-topic-routes") { try await self.createEventTopicRoute($0, $1) }
        projects.get("notification-event-topic-routes") { try await self.listEventTopicRoutes($0, $1) }
        projects.get("notification-event-topic-routes/:route") { try await self.getRoute(Self.eventRoutes, $1) }
        projects.delete("notification-event-topic-routes/:route") { try await self.deleteRoute(Self.eventRoutes, $1) }

        projects.post("topic-destination-routes") { try await self.createTopicDestinationRoute($0, $1) }
        projects.get("topic-destination-routes") { try await self.listTopicDestinationRoutes($0, $1) }
        projects.get("topic-destination-routes/:route") { try await self.getRoute(Self.destinationRoutes, $1) }
        projects.delete("topic-destination-routes/:route") { try await self.deleteRoute(Self.destinationRoutes, $1) }

        projects.get("notification-events") { try await self.listEvents($0, $1) }
        projects.get("notification-events/:event") { try await self.getEvent($0, $1) }
        projects.get("notification-events/:event/deliveries") { try await self.eventDeliveries($0, $1) }
        projects.get("notification-deliveries/:delivery") { try await self.getDelivery($0, $1) }
        projects.post("notification-deliveries/:delivery/resend") { try await self.resendDelivery($0, $1) }
    }

    /// Header names a destination may not set: the signature's and the body's own.
    static let reservedHeaders: Set<String> = [
        "webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "content-length", "host", "transfer-encoding",
        "connection", "expect",
    ]
    static let updateMasks = ["name", "metadata.url", "metadata.headers", "disabled"]
}

// MARK: - Destinations

extension NotificationsController {
    static let destinationColumns = """
        id::text AS id, project_id::text AS project_id, name, type, url, headers, signing_secret,
        \(timestamp("created_at")) AS create_time, \(timestamp("updated_at")) AS update_time,
        \(timestamp("disabled_at")) AS disable_time, disabled_reason, \(timestamp("failing_since")) AS failing_since
        """

    func createDestination(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let body = try await jsonObject(request)
        let name = try Self.resourceName(body["name"], field: "name")
        guard let type = body["type"]?.stringValue, !type.isEmpty else {
            throw Problem.badRequest("type is required; Writeback delivers to destinations of type webhook", name: "type")
        }
        guard type == "webhook" else {
            throw Problem.unprocessable("destinations of type \(type) are not supported; use webhook",
                                        issues: [.init(in: "body", name: "type", detail: "only webhook is supported")])
        }
        guard let metadata = body["metadata"]?.objectValue else {
            throw Problem.badRequest("metadata is required: {url, headers}", name: "metadata")
        }
        let url = try await checkedURL(metadata["url"])
        let headers = try Self.headers(metadata["headers"])
        let id = UUID().uuidString.lowercased()
        let secret = StandardWebhooks.newSecret()
        let row = try await insertOrConflict(
            """
            INSERT INTO notification_destinations (id, project_id, name, type, url, headers, signing_secret)
            VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7) ON CONFLICT (project_id, name) DO NOTHING RETURNING \(Self.destinationColumns)
            """, [id, project.id, name, type, url, try sealedHeaders(headers, id: id),
                  try configuration.secrets.seal(Array(secret.utf8), context: DestinationSeal.signingSecret(id))],
            conflict: "a destination named \(name) already exists in this project", field: "name")
        // The signing secret is shown now, and later only when asked for (includeSecrets=true).
        return jsonResponse(201, try JSONCoding.encode(try destinationJSON(row, secrets: true)))
    }

    func listDestinations(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let rows = try await database.query(
            "SELECT \(Self.destinationColumns) FROM notification_destinations WHERE project_id = $1::uuid ORDER BY created_at, id",
            [project.id])
        return jsonResponse(200, try JSONCoding.encode(JSONValue.array(try rows.rows.map { try destinationJSON($0, secrets: false) })))
    }

    /// `GET …/destinations/{destination}` (its id or name); `includeSecrets=true` shows the signing secret
    /// and the headers' values, `rotate=true` makes a new signing secret first (and shows it).
    func getDestination(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        var row = try await destinationRow(context.path("destination"), project: project.id)
        let rotate = try Self.flag(request, "rotate")
        let includeSecrets = try Self.flag(request, "includeSecrets")
        if rotate {
            let id = try row.string("id")
            let secret = StandardWebhooks.newSecret()
            row = try await database.query(
                """
                UPDATE notification_destinations SET signing_secret = $2, updated_at = now() WHERE id = $1::uuid
                RETURNING \(Self.destinationColumns)
                """, [id, try configuration.secrets.seal(Array(secret.utf8), context: DestinationSeal.signingSecret(id))]).first ?? row
        }
        return jsonResponse(200, try JSONCoding.encode(try destinationJSON(row, secrets: rotate || includeSecrets)))
    }

    /// `PATCH …/destinations/{destination}` with `{updateMask, destination}`: `name`, `metadata.url`,
    /// `metadata.headers`, and `disabled` (false enables a disabled destination: its waiting deliveries
    /// are sent at once; true disables it by hand).
    func updateDestination(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let row = try await destinationRow(context.path("destination"), project: project.id)
        let id = try row.string("id")
        let body = try await jsonObject(request)
        guard let mask = body["updateMask"]?.arrayValue, !mask.isEmpty else {
            throw Problem.badRequest("updateMask is required: the fields to change, of " + Self.updateMasks.joined(separator: ", "),
                                     name: "updateMask")
        }
        var fields: [String] = []
        for item in mask {
            guard let field = item.stringValue, Self.updateMasks.contains(field) else {
                throw Problem.badRequest("updateMask may name only " + Self.updateMasks.joined(separator: ", "), name: "updateMask")
            }
            if !fields.contains(field) { fields.append(field) }
        }
        let change = body["destination"]?.objectValue ?? [:]
        var sets: [String] = ["updated_at = now()"]
        var parameters: [String?] = [id]
        func set(_ column: String, _ value: String?) {
            parameters.append(value)
            sets.append("\(column) = $\(parameters.count)")
        }
        for field in fields {
            switch field {
            case "name": set("name", try Self.resourceName(change["name"], field: "destination.name"))
            case "metadata.url": set("url", try await checkedURL(change["metadata"]?["url"], field: "destination.metadata.url"))
            case "metadata.headers":
                set("headers", try sealedHeaders(try Self.headers(change["metadata"]?["headers"], field: "destination.metadata.headers"), id: id))
            default:
                guard case .bool(let disabled)? = change["disabled"] else {
                    throw Problem.badRequest("destination.disabled must be true or false", name: "destination.disabled")
                }
                if disabled {
                    sets.append("disabled_at = coalesce(disabled_at, now())")
                    sets.append("disabled_reason = coalesce(disabled_reason, 'disabled by request')")
                } else {
                    // Enabling ends the run of failures it was disabled for; an enabled one keeps its run.
                    sets += ["failing_since = CASE WHEN disabled_at IS NOT NULL THEN NULL ELSE failing_since END",
                             "disabled_at = NULL", "disabled_reason = NULL"]
                }
            }
        }
        let enabling = fields.contains("disabled") && change["disabled"] == .bool(false)
        var statements: [(sql: String, parameters: [String?])] = [(
            "UPDATE notification_destinations SET \(sets.joined(separator: ", ")) WHERE id = $1::uuid RETURNING \(Self.destinationColumns)",
            parameters)]
        if enabling {
            // What waited while it was disabled is due now and starts its retries over; so is what ran out
            // of retries since its attempts began failing (a destination is disabled only after days of
            // failures, longer than the retries last). First, while `failing_since` is still set.
            statements.insert(("""
                UPDATE notification_deliveries d SET state = 'pending', next_attempt_at = now(), resent_after = d.attempts,
                    finished_at = NULL, exhausted = false
                FROM notification_destinations w
                WHERE w.id = $1::uuid AND d.destination_id = w.id AND w.disabled_at IS NOT NULL
                  AND (d.leased_until IS NULL OR d.leased_until < now())
                  AND (d.state = 'pending'
                       OR (d.state = 'failed' AND d.exhausted AND w.failing_since IS NOT NULL AND d.finished_at >= w.failing_since))
                """, [id]), at: 0)
        }
        let rows: [PostgresRows]
        do {
            rows = try await database.pipeline(statements)
        } catch let error as PostgresError where error.sqlState == "23505" {
            throw Problem.conflict("a destination with that name already exists in this project", in: "body", name: "destination.name")
        }
        guard let updated = rows.last?.first else { throw Problem.notFound("destination was not found", name: "destination") }
        return jsonResponse(200, try JSONCoding.encode(try destinationJSON(updated, secrets: false)))
    }

    func deleteDestination(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let id = try await destinationRow(context.path("destination"), project: project.id).string("id")
        try await database.query("DELETE FROM notification_destinations WHERE id = $1::uuid", [id])
        return Response(status: .noContent)
    }

    /// The destination named by id or by name, or a 404.
    func destinationRow(_ reference: String, project: String) async throws -> PostgresRow {
        let row = try await database.query(
            """
            SELECT \(Self.destinationColumns) FROM notification_destinations
            WHERE project_id = $1::uuid AND (name = $2 OR id::text = lower($2)) LIMIT 1
            """, [project, reference]).first
        guard let row else { throw Problem.notFound("destination \(reference) was not found", name: "destination") }
        return row
    }

    /// A destination in the Ampersand shape (`Destination`, `DestinationWithSecrets` with `secrets`), with
    /// `disabled` (and when and why). Header values are shown only with the secrets.
    func destinationJSON(_ row: PostgresRow, secrets: Bool) throws -> JSONValue {
        let id = try row.string("id")
        var metadata: [String: JSONValue] = ["url": .string(try row.string("url"))]
        if let sealed = row["headers"] {
            let headers = try JSONReader.read(try configuration.secrets.open(sealed, context: DestinationSeal.headers(id))).objectValue ?? [:]
            metadata["headers"] = .object(secrets ? headers : headers.mapValues { _ in "********" })
        }
        var body: [String: JSONValue] = [
            "id": .string(id), "projectId": .string(try row.string("project_id")), "name": .string(try row.string("name")),
            "type": .string(try row.string("type")), "metadata": .object(metadata),
            "createTime": .string(try row.string("create_time")), "disabled": .bool(row["disable_time"] != nil),
        ]
        if let updated = row["update_time"] { body["updateTime"] = .string(updated) }
        if let disabled = row["disable_time"] { body["disableTime"] = .string(disabled) }
        if let reason = row["disabled_reason"] { body["disabledReason"] = .string(reason) }
        if let failing = row["failing_since"] { body["failingSince"] = .string(failing) }
        if secrets {
            let secret = try configuration.secrets.open(try row.string("signing_secret"), context: DestinationSeal.signingSecret(id))
            body["secrets"] = ["webhookSigningKey": .string(String(decoding: secret, as: UTF8.self))]
        }
        return .object(body)
    }

    /// The destination URL, checked as every delivery will check it: http or https, and public unless
    /// the operator allows it (`WRITEBACK_WEBHOOK_URL_ALLOW`).
    func checkedURL(_ value: JSONValue?, field: String = "metadata.url") async throws -> String {
        guard let url = value?.stringValue, !url.isEmpty else {
            throw Problem.badRequest("\(field) is required: the URL notifications are posted to", name: field)
        }
        guard !url.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
            throw Problem.unprocessable("\(field) must not contain control characters",
                                        issues: [.init(in: "body", name: field, detail: "control characters are not allowed in a URL")])
        }
        do {
            _ = try await configuration.webhookURLs.checkOffThread(url, subject: field)
        } catch {
            throw Problem.unprocessable(error.message, issues: [.init(in: "body", name: field, detail: error.message)])
        }
        return url
    }

    static func headers(_ value: JSONValue?, field: String = "metadata.headers") throws -> [String: JSONValue] {
        guard let value, value != .null else { return [:] }
        guard let object = value.objectValue else {
            throw Problem.badRequest("\(field) must be an object of header names and string values", name: field)
        }
        for (name, item) in object {
            guard item.stringValue != nil else { throw Problem.badRequest("\(field).\(name) must be a string", name: "\(field).\(name)") }
            let valid = !name.isEmpty && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }
            // No control character but tab (read as scalars: a CRLF is a single Character): a CR, LF or NUL would end the header.
            let value = (item.stringValue ?? "").unicodeScalars
            guard valid, !value.contains(where: { ($0.value < 0x20 && $0 != "\t") || $0.value == 0x7F }) else {
                throw Problem.badRequest("\(field).\(name) is not a valid header", name: "\(field).\(name)")
            }
            guard !reservedHeaders.contains(name.lowercased()) else {
                throw Problem.unprocessable("\(name) is set by Writeback on every delivery and cannot be changed",
                                            issues: [.init(in: "body", name: "\(field).\(name)", detail: "reserved header")])
            }
        }
        return object
    }

    func sealedHeaders(_ headers: [String: JSONValue], id: String) throws -> String? {
        guard !headers.isEmpty else { return nil }
        return try configuration.secrets.seal(try JSONCoding.encode(JSONValue.object(headers)), context: DestinationSeal.headers(id))
    }
}

// MARK: - Topics and routes

extension NotificationsController {
    static let topicColumns = """
        id::text AS id, name, project_id::text AS project_id, \(timestamp("created_at")) AS create_time,
        \(timestamp("updated_at")) AS update_time
        """

    func createTopic(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let name = try Self.resourceName(try await jsonObject(request)["name"], field: "name")
        let row = try await insertOrConflict(
            """
            INSERT INTO notification_topics (id, project_id, name) VALUES ($1::uuid, $2::uuid, $3)
            ON CONFLICT (project_id, name) DO NOTHING RETURNING \(Self.topicColumns)
            """, [UUID().uuidString.lowercased(), project.id, name],
            conflict: "a topic named \(name) already exists in this project", field: "name")
        return jsonResponse(201, try JSONCoding.encode(Self.topicJSON(row)))
    }

    func listTopics(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let rows = try await database.query(
            "SELECT \(Self.topicColumns) FROM notification_topics WHERE project_id = $1::uuid ORDER BY created_at, id", [project.id])
        return jsonResponse(200, try JSONCoding.encode(JSONValue.array(try rows.rows.map(Self.topicJSON))))
    }

    func getTopic(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        return jsonResponse(200, try JSONCoding.encode(try Self.topicJSON(try await topicRow(context.path("topic"), project: project.id))))
    }

    func updateTopic(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let id = try await topicRow(context.path("topic"), project: project.id).string("id")
        // A topic is made with a name of letters, numbers and dashes, and may be given a readable one.
        guard let name = try await jsonObject(request)["name"]?.stringValue?.trimmingCharacters(in: .whitespaces), !name.isEmpty,
              name.unicodeScalars.count <= 64, !name.contains(where: { $0.isNewline }),
              !name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else { throw Problem.badRequest("name is required: at most 64 characters on one line, without control characters", name: "name") }
        do {
            let row = try await database.query(
                "UPDATE notification_topics SET name = $2, updated_at = now() WHERE id = $1::uuid RETURNING \(Self.topicColumns)",
                [id, name]).first
            guard let row else { throw Problem.notFound("topic \(id) was not found", name: "topicId") }
            return jsonResponse(200, try JSONCoding.encode(try Self.topicJSON(row)))
        } catch let error as PostgresError where error.sqlState == "23505" {
            throw Problem.conflict("a topic named \(name) already exists in this project", in: "body", name: "name")
        }
    }

    func deleteTopic(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let id = try await topicRow(context.path("topic"), project: project.id).string("id")
        try await database.query("DELETE FROM notification_topics WHERE id = $1::uuid", [id])
        return Response(status: .noContent)
    }

    func topicRow(_ id: String, project: String, field: String = "topicId", in location: String = "path") async throws -> PostgresRow {
        guard let uuid = normalizedUUID(id), let row = try await database.query(
            "SELECT \(Self.topicColumns) FROM notification_topics WHERE id = $1::uuid AND project_id = $2::uuid", [uuid, project]).first
        else { throw Problem.notFound("topic \(id) was not found", name: field, in: location) }
        return row
    }

    static func topicJSON(_ row: PostgresRow) throws -> JSONValue {
        var body: [String: JSONValue] = [
            "id": .string(try row.string("id")), "name": .string(try row.string("name")),
            "projectId": .string(try row.string("project_id")), "createTime": .string(try row.string("create_time")),
        ]
        if let updated = row["update_time"] { body["updateTime"] = .string(updated) }
        return .object(body)
    }

    static let eventRouteColumns = """
        id::text AS id, event_type, topic_id::text AS topic_id, project_id::text AS project_id, \(timestamp("created_at")) AS create_time
        """

    func createEventTopicRoute(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let body = try await jsonObject(request)
        let eventType = try Self.eventType(body["eventType"], field: "eventType")
        guard let topic = body["topicId"]?.stringValue, !topic.isEmpty else {
            throw Problem.badRequest("topicId is required", name: "topicId")
        }
        let topicId = try await topicRow(topic, project: project.id, in: "body").string("id")
        let row = try await insertOrConflict(
            """
            INSERT INTO notification_event_topic_routes (id, project_id, event_type, topic_id) VALUES ($1::uuid, $2::uuid, $3, $4::uuid)
            ON CONFLICT (project_id, event_type, topic_id) DO NOTHING RETURNING \(Self.eventRouteColumns)
            """, [UUID().uuidString.lowercased(), project.id, eventType.rawValue, topicId],
            conflict: "\(eventType.rawValue) is already routed to topic \(topicId)", field: "eventType")
        return jsonResponse(201, try JSONCoding.encode(try Self.eventRouteJSON(row)))
    }

    func listEventTopicRoutes(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let query = request.uri.queryParameters
        let eventType = try query["eventType"].map { try Self.eventType(.string(String($0)), field: "eventType", in: "query").rawValue }
        return try await listRoutes(Self.eventRoutes, project: project.id,
                                    [("topic_id::text", query["topicId"].map { $0.lowercased() }), ("event_type", eventType)])
    }

    static func eventRouteJSON(_ row: PostgresRow) throws -> JSONValue {
        [
            "id": .string(try row.string("id")), "eventType": .string(try row.string("event_type")),
            "topicId": .string(try row.string("topic_id")), "projectId": .string(try row.string("project_id")),
            "createTime": .string(try row.string("create_time")),
        ]
    }

    static let destinationRouteColumns = """
        id::text AS id, topic_id::text AS topic_id, destination_id::text AS destination_id, project_id::text AS project_id,
        \(timestamp("created_at")) AS create_time
        """

    func createTopicDestinationRoute(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let body = try await jsonObject(request)
        guard let topic = body["topicId"]?.stringValue, !topic.isEmpty else { throw Problem.badRequest("topicId is required", name: "topicId") }
        guard let destination = body["destinationId"]?.stringValue, !destination.isEmpty else {
            throw Problem.badRequest("destinationId is required", name: "destinationId")
        }
        let topicId = try await topicRow(topic, project: project.id, in: "body").string("id")
        let destinationId: String
        do {
            destinationId = try await destinationRow(destination, project: project.id).string("id")
        } catch let problem as Problem where problem.statusCode == 404 {
            throw Problem.notFound("destination \(destination) was not found", name: "destinationId", in: "body")
        }
        let row = try await insertOrConflict(
            """
            INSERT INTO notification_topic_destination_routes (id, project_id, topic_id, destination_id)
            VALUES ($1::uuid, $2::uuid, $3::uuid, $4::uuid)
            ON CONFLICT (topic_id, destination_id) DO NOTHING RETURNING \(Self.destinationRouteColumns)
            """, [UUID().uuidString.lowercased(), project.id, topicId, destinationId],
            conflict: "topic \(topicId) is already routed to destination \(destinationId)", field: "destinationId")
        return jsonResponse(201, try JSONCoding.encode(try Self.destinationRouteJSON(row)))
    }

    func listTopicDestinationRoutes(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let query = request.uri.queryParameters
        return try await listRoutes(Self.destinationRoutes, project: project.id, [
            ("topic_id::text", query["topicId"].map { $0.lowercased() }),
            ("destination_id::text", query["destinationId"].map { $0.lowercased() }),
        ])
    }

    static func destinationRouteJSON(_ row: PostgresRow) throws -> JSONValue {
        [
            "id": .string(try row.string("id")), "topicId": .string(try row.string("topic_id")),
            "destinationId": .string(try row.string("destination_id")), "projectId": .string(try row.string("project_id")),
            "createTime": .string(try row.string("create_time")),
        ]
    }

    /// One of the two kinds of route: its table, columns and JSON.
    struct RouteTable: Sendable {
        let table: String
        let columns: String
        let json: @Sendable (PostgresRow) throws -> JSONValue
    }

    static let eventRoutes = RouteTable(table: "notification_event_topic_routes", columns: eventRouteColumns, json: eventRouteJSON)
    static let destinationRoutes = RouteTable(table: "notification_topic_destination_routes", columns: destinationRouteColumns,
                                              json: destinationRouteJSON)

    /// A project's routes of one kind, oldest first; each filter (a column and the value it must have) applies when given.
    func listRoutes(_ kind: RouteTable, project: String, _ filters: [(column: String, value: String?)]) async throws -> Response {
        var conditions = ["project_id = $1::uuid"]
        var parameters: [String?] = [project]
        for (column, value) in filters {
            parameters.append(value)
            conditions.append("($\(parameters.count)::text IS NULL OR \(column) = $\(parameters.count))")
        }
        let rows = try await database.query(
            "SELECT \(kind.columns) FROM \(kind.table) WHERE \(conditions.joined(separator: " AND ")) ORDER BY created_at, id", parameters)
        return jsonResponse(200, try JSONCoding.encode(JSONValue.array(try rows.rows.map(kind.json))))
    }

    func getRoute(_ kind: RouteTable, _ context: APIContext) async throws -> Response {
        jsonResponse(200, try JSONCoding.encode(try kind.json(try await routeRow(kind, context))))
    }

    func deleteRoute(_ kind: RouteTable, _ context: APIContext) async throws -> Response {
        let id = try await routeRow(kind, context).string("id")
        try await database.query("DELETE FROM \(kind.table) WHERE id = $1::uuid", [id])
        return Response(status: .noContent)
    }

    func routeRow(_ kind: RouteTable, _ context: APIContext) async throws -> PostgresRow {
        let project = try context.authenticatedProject
        let id = context.path("route")
        guard let uuid = normalizedUUID(id), let row = try await database.query(
            "SELECT \(kind.columns) FROM \(kind.table) WHERE id = $1::uuid AND project_id = $2::uuid", [uuid, project.id]).first
        else { throw Problem.notFound("route \(id) was not found", name: "routeId") }
        return row
    }
}

// MARK: - Events and deliveries

extension NotificationsController {
    /// `GET …/notification-events`: the events that had somewhere to go, newest first, `pageSize` (default
    /// 100, at most 1000) at a time after `pageToken`; `eventType` filters. Each with its deliveries' states.
    func listEvents(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let query = request.uri.queryParameters
        let pageSize = min(1000, max(1, Int(query["pageSize"].map(String.init) ?? "") ?? 100))
        let eventType = try query["eventType"].map { try Self.eventType(.string(String($0)), field: "eventType", in: "query").rawValue }
        let rows = try await database.query(
            """
            SELECT e.id::text AS id, e.body,
                   (SELECT json_agg(json_build_object('id', d.id, 'destinationId', d.destination_id, 'state', d.state,
                                                      'attemptCount', d.attempts) ORDER BY d.created_at)::text
                    FROM notification_deliveries d WHERE d.event_id = e.id) AS deliveries
            FROM notification_events e
            WHERE e.project_id = $1::uuid AND ($2::text IS NULL OR e.event_type = $2)
              AND ($3::text IS NULL OR (e.created_at, e.id) < (SELECT created_at, id FROM notification_events WHERE id = $3::uuid))
            ORDER BY e.created_at DESC, e.id DESC LIMIT $4::int
            """, [project.id, eventType, query["pageToken"].flatMap { normalizedUUID(String($0)) }, String(pageSize + 1)])
        let page = rows.rows.prefix(pageSize)
        let events: [JSONValue] = try page.map { row in
            [
                "event": try JSONReader.read(Array(try row.string("body").utf8)),
                "deliveries": try row["deliveries"].map { try JSONReader.read(Array($0.utf8)) } ?? [],
            ]
        }
        var body: [String: JSONValue] = ["events": .array(events)]
        if rows.count > pageSize, let last = page.last?["id"] { body["pagination"] = ["nextPageToken": .string(last)] }
        return jsonResponse(200, try JSONCoding.encode(body))
    }

    func getEvent(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let (id, body) = try await eventRow(context.path("event"), project: project.id)
        let deliveries = try await deliveries(where: "d.event_id = $2::uuid", [project.id, id], pageSize: 1000)
        return jsonResponse(200, try JSONCoding.encode(JSONValue.object(["event": body, "deliveries": .array(deliveries)])))
    }

    /// `GET …/notification-events/{eventId}/deliveries`: the event's deliveries, each with its attempts.
    func eventDeliveries(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let (id, _) = try await eventRow(context.path("event"), project: project.id)
        let deliveries = try await deliveries(where: "d.event_id = $2::uuid", [project.id, id], pageSize: 1000)
        return jsonResponse(200, try JSONCoding.encode(JSONValue.object(["deliveries": .array(deliveries)])))
    }

    /// `GET …/destinations/{destination}/deliveries`: newest first, `state` (pending, delivered, failed)
    /// filters, paged like the events.
    func destinationDeliveries(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let destination = try await destinationRow(context.path("destination"), project: project.id).string("id")
        let query = request.uri.queryParameters
        let pageSize = min(1000, max(1, Int(query["pageSize"].map(String.init) ?? "") ?? 100))
        let state = query["state"].map(String.init)
        if let state, !["pending", "delivered", "failed"].contains(state) {
            throw Problem.badRequest("state must be pending, delivered or failed", in: "query", name: "state")
        }
        let list = try await deliveries(
            where: """
                d.destination_id = $2::uuid AND ($3::text IS NULL OR d.state = $3)
                AND ($4::text IS NULL OR (d.created_at, d.id) < (SELECT created_at, id FROM notification_deliveries WHERE id = $4::uuid))
                """,
            [project.id, destination, state, query["pageToken"].flatMap { normalizedUUID(String($0)) }], pageSize: pageSize + 1)
        var body: [String: JSONValue] = ["deliveries": .array(Array(list.prefix(pageSize)))]
        if list.count > pageSize, let last = list[pageSize - 1]["id"] { body["pagination"] = ["nextPageToken": last] }
        return jsonResponse(200, try JSONCoding.encode(body))
    }

    func getDelivery(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let id = context.path("delivery")
        guard let uuid = normalizedUUID(id), let delivery = try await deliveries(where: "d.id = $2::uuid", [project.id, uuid], pageSize: 1).first
        else { throw Problem.notFound("delivery \(id) was not found", name: "deliveryId") }
        return jsonResponse(200, try JSONCoding.encode(delivery))
    }

    /// `POST …/notification-deliveries/{deliveryId}/resend`: a delivery that failed (or is waiting for its
    /// next try) is due at once, its retries starting over; one already delivered is sent once more.
    /// Answers 202 with the delivery; the attempt is made by the notifier.
    func resendDelivery(_ request: Request, _ context: APIContext) async throws -> Response {
        let project = try context.authenticatedProject
        let id = context.path("delivery")
        guard let uuid = normalizedUUID(id), try await database.query(
            """
            UPDATE notification_deliveries SET state = 'pending', next_attempt_at = now(), finished_at = NULL, resent_after = attempts,
                exhausted = false
            WHERE id = $1::uuid AND project_id = $2::uuid RETURNING id
            """, [uuid, project.id]).first != nil,
            let delivery = try await deliveries(where: "d.id = $2::uuid", [project.id, uuid], pageSize: 1).first
        else { throw Problem.notFound("delivery \(id) was not found", name: "deliveryId") }
        return jsonResponse(202, try JSONCoding.encode(delivery))
    }

    func eventRow(_ id: String, project: String) async throws -> (String, JSONValue) {
        guard let uuid = normalizedUUID(id), let row = try await database.query(
            "SELECT body FROM notification_events WHERE id = $1::uuid AND project_id = $2::uuid", [uuid, project]).first
        else { throw Problem.notFound("event \(id) was not found", name: "eventId") }
        return (uuid, try JSONReader.read(Array(try row.string("body").utf8)))
    }

    /// Deliveries of the project (`$1`) that `condition` picks, newest first, each with its attempts.
    func deliveries(where condition: String, _ parameters: [String?], pageSize: Int) async throws -> [JSONValue] {
        let rows = try await database.query(
            """
            SELECT d.id::text AS id, d.event_id::text AS event_id, d.destination_id::text AS destination_id, e.event_type, d.state,
                   d.attempts, \(timestamp("d.created_at")) AS create_time, \(timestamp("d.finished_at")) AS finish_time,
                   CASE WHEN d.state = 'pending' THEN \(timestamp("d.next_attempt_at")) END AS next_attempt_time,
                   d.last_status, d.last_error,
                   (SELECT json_agg(json_build_object(
                        'attempt', a.attempt,
                        'startTime', \(timestamp("a.started_at")),
                        'durationMs', round(a.duration_ms::numeric, 3), 'status', a.status, 'error', a.error) ORDER BY a.attempt)::text
                    FROM notification_delivery_attempts a WHERE a.delivery_id = d.id) AS attempt_list
            FROM notification_deliveries d JOIN notification_events e ON e.id = d.event_id
            WHERE d.project_id = $1::uuid AND \(condition)
            ORDER BY d.created_at DESC, d.id DESC LIMIT \(pageSize)
            """, parameters)
        return try rows.rows.map { row in
            var delivery: [String: JSONValue] = [
                "id": .string(try row.string("id")), "eventId": .string(try row.string("event_id")),
                "destinationId": .string(try row.string("destination_id")), "eventType": .string(try row.string("event_type")),
                "state": .string(try row.string("state")), "attemptCount": .number(Double(row.int("attempts") ?? 0)),
                "createTime": .string(try row.string("create_time")),
                "attempts": try row["attempt_list"].map { try JSONReader.read(Array($0.utf8)) } ?? [],
            ]
            if let finished = row["finish_time"] { delivery["finishTime"] = .string(finished) }
            if let next = row["next_attempt_time"] { delivery["nextAttemptTime"] = .string(next) }
            if let status = row.int("last_status") { delivery["lastStatus"] = .number(Double(status)) }
            if let error = row["last_error"] { delivery["lastError"] = .string(error) }
            return .object(delivery)
        }
    }
}

// MARK: - Input

extension NotificationsController {
    /// A destination's or topic's name: letters, numbers and dashes, at most 64.
    static func resourceName(_ value: JSONValue?, field: String) throws -> String {
        guard let name = value?.stringValue, !name.isEmpty else { throw Problem.badRequest("\(field) is required", name: field) }
        let allowed = name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D
        }
        guard allowed, name.utf8.count <= 64 else {
            throw Problem.unprocessable("\(field) may contain only letters, numbers and dashes, at most 64",
                                        issues: [.init(in: "body", name: field, detail: "letters, numbers and dashes only, at most 64")])
        }
        return name
    }

    static func eventType(_ value: JSONValue?, field: String, in location: String = "body") throws -> NotificationEventType {
        guard let text = value?.stringValue, !text.isEmpty else { throw Problem.badRequest("\(field) is required", in: location, name: field) }
        guard let type = NotificationEventType(rawValue: text) else {
            let known = NotificationEventType.allCases.map(\.rawValue).joined(separator: ", ")
            throw Problem.unprocessable("\(text) is not an event Writeback sends; it sends \(known)",
                                        issues: [.init(in: location, name: field, detail: "one of \(known)")])
        }
        return type
    }

    static func flag(_ request: Request, _ name: String) throws -> Bool {
        guard let text = request.uri.queryParameters[Substring(name)] else { return false }
        switch text.lowercased() {
        case "true", "1": return true
        case "false", "0", "": return false
        default: throw Problem.badRequest("\(name) must be true or false", in: "query", name: name)
        }
    }

    /// Runs an `INSERT … ON CONFLICT DO NOTHING RETURNING`; nothing returned is the conflict, a 409.
    func insertOrConflict(_ sql: String, _ parameters: [String?], conflict: String, field: String) async throws -> PostgresRow {
        guard let row = try await database.query(sql, parameters).first else { throw Problem.conflict(conflict, in: "body", name: field) }
        return row
    }
}

import Schema
import Kafka
import Logging
import Metrics
import Pipeline
import Postgres
import ServiceLifecycle
import Shared

/// Consumes `record-changes`, upserts each record into the destination database (an older change never
/// overwrites a newer one), and publishes to `cache-updates` one update per operation of a batch (and,
/// for a synchronous write, to `write-completions` for the api instance its client waits at). A change event it cannot read is
/// dead-lettered with the reason.
public enum CacheInvalidator {
    /// Group `writeback-cache-invalidator` by default; the database is the destination database.
    public static func configuration(kafka: KafkaConfiguration, destinationDatabaseURL: String) -> ConsumerServiceConfiguration {
        ConsumerServiceConfiguration(kafka: kafka, databaseURL: destinationDatabaseURL, groupID: "writeback-cache-invalidator")
    }

    /// The services of a cache-invalidator, in the order its `ServiceGroup` runs them.
    public static func services(configuration: ConsumerServiceConfiguration, logger: Logger) async throws -> [any Service] {
        let database = try await configuration.openDatabase(name: "destination", migrations: DestinationSchema.migrations)
        let producer = try KafkaProducer(configuration: configuration.kafka)
        let letters = DeadLetters(producer: producer, service: "cache-invalidator", logger: logger)
        let processing = try configuration.batchProcessing(topics: [Topics.recordChanges], logger: logger) { messages in
            var events: [(message: KafkaMessage, event: ChangeEvent)] = []
            for message in messages {
                do {
                    events.append((message, try JSONCoding.decode(ChangeEvent.self, from: message.value)))
                } catch {
                    try await letters.unreadable(message, reason: error)
                }
            }
            // In delivery order, in one transaction: a record's changes apply one after another.
            let answers = try await database.apply(
                together: events, statements: { Self.upserts($0.map(\.event.data)) },
                answers: { items, rows in Self.applied(items.map(\.event.data), rows) }, logger: logger
            ) { item, error in
                try await letters.unreadable(item.message, reason: "the destination refused it: \(error)")
            }
            var updates: [KafkaOutgoing] = []
            for group in Self.updates(events.map { ($0.event, $0.message.header(Topics.replyToHeader)) }, answers, at: Timestamp.now()) {
                let update = try JSONCoding.encode(group.update)
                if group.toOperations {
                    updates.append(KafkaOutgoing(topic: Topics.cacheUpdates, key: group.update.operationId, value: update))
                }
                // A synchronous write's client waits at this api instance for the destination to hold it.
                if let replyTo = group.replyTo {
                    updates.append(KafkaOutgoing(topic: Topics.writeCompletions, key: replyTo, value: update,
                                                 headers: [KafkaHeader(Topics.replyToHeader, replyTo)]))
                }
            }
            try await untilSucceeded("publishing the cache updates", logger: logger) { [updates] in
                try await producer.send(updates)
            }
        }
        return [ReleasingService { database.shutdown() }, producer] + processing
    }

    /// The updates a batch's changes make: one per operation (and api instance waiting on it), its
    /// records in the order they were applied; `answers` tells for each change whether it was applied
    /// (nil: dead-lettered). A bulk write's rows reach the destination without an update for the
    /// operations service (its operation follows the provider's answers, and nobody waits on a row but
    /// a synchronous caller).
    static func updates(_ changes: [(event: ChangeEvent, replyTo: String?)], _ answers: [Bool?], at now: String)
        -> [(update: CacheUpdateMessage, replyTo: String?, toOperations: Bool)]
    {
        var order: [String] = []
        var groups: [String: (changes: [(change: ChangeData, applied: Bool)], replyTo: String?, toOperations: Bool)] = [:]
        var counts = [0, 0]
        defer {
            for (index, count) in counts.enumerated() where count > 0 {
                Counter(label: "writeback_destination_upserts_total", dimensions: [("applied", String(index == 1))]).increment(by: count)
            }
        }
        for ((event, replyTo), applied) in zip(changes, answers) {
            guard let applied else { continue }
            counts[applied ? 1 : 0] += 1
            let change = event.data
            let toOperations = change.line == nil
            guard toOperations || replyTo != nil else { continue }
            let key = change.operationId + "\u{1F}" + (replyTo ?? "")
            if groups[key] == nil {
                order.append(key)
                groups[key] = ([], replyTo, toOperations)
            }
            groups[key]!.changes.append((change, applied))
        }
        return order.map { key in
            let group = groups[key]!
            return (CacheUpdateMessage(changes: group.changes, updatedAt: now), group.replyTo, group.toOperations)
        }
    }

    /// A record's key in the destination.
    struct RecordKey: Hashable {
        var projectId: String
        var groupRef: String
        var provider: String
        var objectName: String
        var recordId: String

        init(_ change: ChangeData) {
            self.init(change.projectId, change.groupRef, change.provider.rawValue, change.objectName.lowercased(), change.recordId)
        }

        init(_ projectId: String, _ groupRef: String, _ provider: String, _ objectName: String, _ recordId: String) {
            (self.projectId, self.groupRef, self.provider, self.objectName, self.recordId) = (projectId, groupRef, provider, objectName, recordId)
        }
    }

    /// Which round each change goes in: a record's first change of the set in the first, its second in the
    /// second, and so on (one statement touches a row once), so that its changes apply in their order.
    static func rounds(_ changes: [ChangeData]) -> [Int] {
        var seen: [RecordKey: Int] = [:]
        seen.reserveCapacity(changes.count)
        return changes.map { change in
            let key = RecordKey(change)
            let round = seen[key, default: 0]
            seen[key] = round + 1
            return round
        }
    }

    /// The statements that write a set of changes, one per round: each change is written unless the row
    /// already holds this or a newer version (a higher `version` wins); each answers the keys it wrote.
    static func upserts(_ changes: [ChangeData]) -> [(sql: String, parameters: [String?])] {
        let rounds = rounds(changes)
        return (0..<(rounds.max().map { $0 + 1 } ?? 0)).map { round in
            let members = changes.indices.filter { rounds[$0] == round }.map { changes[$0] }
            let columns: [(ChangeData) -> String?] = [
                { $0.projectId }, { $0.groupRef }, { $0.provider.rawValue }, { $0.objectName.lowercased() }, { $0.recordId },
                { $0.integrationId }, { (try? JSONCoding.encodeString($0.fields)) ?? "{}" }, { $0.deleted ? "true" : "false" },
                { String($0.version) }, { $0.operationId },
            ]
            return (upsertSQL, columns.map { column in PostgresArray.literal(members.map(column)) })
        }
    }

    static let upsertSQL = """
        INSERT INTO records (project_id, group_ref, provider, object_name, record_id, integration_id, fields, deleted, version,
                             operation_id)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[], $8::boolean[],
                             $9::bigint[], $10::text[])
        ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (project_id, group_ref, provider, object_name, record_id) DO UPDATE SET
            fields = CASE WHEN EXCLUDED.deleted THEN records.fields ELSE records.fields || EXCLUDED.fields END,
            deleted = EXCLUDED.deleted,
            version = EXCLUDED.version,
            operation_id = EXCLUDED.operation_id,
            updated_at = now()
        WHERE records.version < EXCLUDED.version
        RETURNING project_id, group_ref, provider, object_name, record_id
        """

    /// Whether each change was written (false: the destination held this or a newer version), from the
    /// rows of `upserts(changes)`.
    static func applied(_ changes: [ChangeData], _ rows: [PostgresRows]) -> [Bool] {
        let written = rows.map { rows in Set(rows.values.map { RecordKey($0[0] ?? "", $0[1] ?? "", $0[2] ?? "", $0[3] ?? "", $0[4] ?? "") }) }
        return zip(changes, rounds(changes)).map { change, round in round < written.count && written[round].contains(RecordKey(change)) }
    }
}

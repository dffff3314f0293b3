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
            var changes: [Change] = []
            changes.reserveCapacity(messages.count)
            for message in messages {
                do {
                    changes.append(try Change(message))
                } catch {
                    try await letters.unreadable(message, reason: error)
                }
            }
            // In delivery order, in one transaction: a record's changes apply one after another.
            let answers = try await database.apply(
                together: changes, statements: { Self.upserts($0) }, answers: { items, rows in Self.applied(items, rows) }, logger: logger
            ) { item, error in
                try await letters.unreadable(item.message, reason: "the destination refused it: \(error)")
            }
            var updates: [KafkaOutgoing] = []
            for group in Self.updates(changes.map { ($0.data, $0.message.header(Topics.replyToHeader)) }, answers, at: Timestamp.now()) {
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
    static func updates(_ changes: [(data: ChangeData, replyTo: String?)], _ answers: [Bool?], at now: String)
        -> [(update: CacheUpdateMessage, replyTo: String?, toOperations: Bool)]
    {
        var order: [String] = []
        var groups: [String: (changes: [(change: ChangeData, applied: Bool)], replyTo: String?, toOperations: Bool)] = [:]
        var counts = [0, 0]
        defer {
            for (index, count) in counts.enumerated() where count > 0 {
                Meters.counter("writeback_destination_upserts_total", [("applied", String(index == 1))]).increment(by: count)
            }
        }
        for ((change, replyTo), applied) in zip(changes, answers) {
            guard let applied else { continue }
            counts[applied ? 1 : 0] += 1
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

    /// A change event as the cache-invalidator reads it: its record's fields stay the JSON text they
    /// came as, for the jsonb column, rather than being decoded and encoded again. A class: a batch's
    /// changes are passed around and grouped without copying each of their strings.
    final class Change: Sendable {
        let message: KafkaMessage
        /// The event's data, its `fields` left empty.
        let data: ChangeData
        /// `data.fields` as JSON text: an object.
        let fields: String
        let key: RecordKey

        init(_ message: KafkaMessage) throws {
            let (data, fields) = try ChangeData.read(event: message.value)
            self.message = message
            self.data = data
            self.fields = fields
            key = RecordKey(data)
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

        /// The record id alone tells keys apart but rarely (records of one batch are mostly of one
        /// customer and object); equality compares the whole key.
        func hash(into hasher: inout Hasher) {
            hasher.combine(recordId)
        }
    }

    /// Which round each change goes in: a record's first change of the set in the first, its second in the
    /// second, and so on (one statement touches a row once), so that its changes apply in their order.
    static func rounds(_ changes: [Change]) -> (round: [Int], count: Int) {
        var seen: [RecordKey: Int] = [:]
        seen.reserveCapacity(changes.count)
        var count = 0
        let rounds = changes.map { change in
            let round = seen[change.key, default: 0]
            seen[change.key] = round + 1
            count = max(count, round + 1)
            return round
        }
        return (rounds, count)
    }

    /// The statements that write a set of changes, one per round: each change is written unless the row
    /// already holds this or a newer version (a higher `version` wins); each answers the keys it wrote.
    static func upserts(_ changes: [Change]) -> [(sql: String, parameters: [String?])] {
        let rounds = rounds(changes)
        var members = [Int](repeating: 0, count: rounds.count)
        for round in rounds.round { members[round] += 1 }
        return (0..<rounds.count).map { round in
            var columns = [[String?]](repeating: [], count: 9)
            for index in columns.indices { columns[index].reserveCapacity(members[round]) }
            // The records' fields go as one JSON array of their objects, as they came: no element of an
            // array literal to escape here and to take apart again in the database.
            var fields: [UInt8] = [UInt8(ascii: "[")]
            for (change, member) in zip(changes, rounds.round) where member == round {
                columns[0].append(change.key.projectId)
                columns[1].append(change.key.groupRef)
                columns[2].append(change.key.provider)
                columns[3].append(change.key.objectName)
                columns[4].append(change.key.recordId)
                columns[5].append(change.data.integrationId)
                if fields.count > 1 { fields.append(UInt8(ascii: ",")) }
                fields += change.fields.utf8
                columns[6].append(change.data.deleted ? "true" : "false")
                columns[7].append(String(change.data.version))
                columns[8].append(change.data.operationId)
            }
            fields.append(UInt8(ascii: "]"))
            var parameters = columns.map { PostgresArray.literal($0) }
            parameters.insert(String(decoding: fields, as: UTF8.self), at: 6)
            return (upsertSQL, parameters)
        }
    }

    static let upsertSQL = """
        INSERT INTO records (project_id, group_ref, provider, object_name, record_id, integration_id, fields, deleted, version,
                             operation_id)
        SELECT * FROM ROWS FROM (unnest($1::text[]), unnest($2::text[]), unnest($3::text[]), unnest($4::text[]), unnest($5::text[]),
                                 unnest($6::text[]), jsonb_array_elements($7::jsonb), unnest($8::boolean[]), unnest($9::bigint[]),
                                 unnest($10::text[]))
        ORDER BY 5, 4, 2, 1, 3
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
    /// rows of `upserts(changes)`. A round whose rows number its changes wrote every one of them (a
    /// round holds a record once).
    static func applied(_ changes: [Change], _ rows: [PostgresRows]) -> [Bool] {
        let rounds = rounds(changes)
        var members = [Int](repeating: 0, count: rounds.count)
        for round in rounds.round { members[round] += 1 }
        let written: [Set<RecordKey>?] = rows.indices.map { round in
            round < members.count && rows[round].values.count == members[round]
                ? nil : Set(rows[round].values.map { RecordKey($0[0] ?? "", $0[1] ?? "", $0[2] ?? "", $0[3] ?? "", $0[4] ?? "") })
        }
        return zip(changes, rounds.round).map { change, round in
            guard round < written.count else { return false }
            return written[round].map { $0.contains(change.key) } ?? true
        }
    }
}

import Postgres
import Schema
import Shared

/// The notifier's SQL: storing the events that have somewhere to go with a delivery per destination,
/// claiming the deliveries due, and recording an attempt.
enum NotificationStatements {
    /// Stores the events whose type a route of their project leads to a destination, once per id, and a
    /// pending delivery per destination they reach; events nobody asked for are not stored. A route
    /// carries the events that happened after it was made, however late the notifier reads them.
    /// Answers the deliveries made.
    static func store(_ told: [(event: NotificationEvent, body: [UInt8])]) -> (sql: String, parameters: [String?]) {
        let events = told.map(\.event)
        let bodies = told.map { String(decoding: $0.body, as: UTF8.self) }
        return ("""
            WITH given AS (
                SELECT DISTINCT ON (id) * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[])
                    AS g(id, project_id, event_type, body, created_at)
            ), routed AS (
                SELECT DISTINCT g.id, t.destination_id FROM given g
                JOIN notification_event_topic_routes r
                  ON r.project_id = g.project_id AND r.event_type = g.event_type AND r.created_at <= g.created_at
                JOIN notification_topic_destination_routes t ON t.topic_id = r.topic_id AND t.created_at <= g.created_at
            ), stored AS (
                INSERT INTO notification_events (id, project_id, event_type, body, created_at)
                SELECT g.id, g.project_id, g.event_type, g.body, g.created_at FROM given g
                WHERE EXISTS (SELECT 1 FROM routed WHERE routed.id = g.id)
                ON CONFLICT (id) DO NOTHING
                RETURNING id, project_id
            )
            INSERT INTO notification_deliveries (event_id, destination_id, project_id)
            SELECT s.id, r.destination_id, s.project_id FROM stored s JOIN routed r ON r.id = s.id
            ON CONFLICT DO NOTHING
            RETURNING id
            """,
            [PostgresArray.literal(events.map(\.id)), PostgresArray.literal(events.map(\.projectId)),
             PostgresArray.literal(events.map(\.type.rawValue)), PostgresArray.literal(bodies),
             PostgresArray.literal(events.map(\.createTime))])
    }

    /// Takes up to `limit` due deliveries of enabled destinations, oldest due first: per destination at
    /// most `perDestination` running, per project at most `perProject`, counting those this notifier
    /// runs already (`running`, `runningProjects`). Each destination's due deliveries are read from its
    /// own index range (a lateral join), so a claim costs the number of destinations with work, not the
    /// size of the backlog. A claimed delivery is leased for `lease` seconds (no other claim takes it
    /// meanwhile; after a crash it is free again when the lease ends) and its attempt is counted.
    ///
    /// `after` gives, per destination, where its last claim ended (`next_attempt_at` and id): the read
    /// starts past it, so that it does not walk again the index entries of the deliveries it claimed
    /// before (which stay in the index, dead, until a vacuum). Whatever comes due behind that point (a
    /// lease that ran out) is found by a claim without it, which the dispatcher makes every poll.
    static func claim(
        running: [String: Int], runningProjects: [String: Int], after: [String: Cursor], perDestination: Int, perProject: Int,
        limit: Int, lease: Double
    ) -> (sql: String, parameters: [String?]) {
        ("""
            WITH busy AS (
                SELECT * FROM unnest($1::uuid[], $2::int[]) AS b(destination_id, running)
            ), busy_projects AS (
                SELECT * FROM unnest($3::uuid[], $4::int[]) AS p(project_id, running)
            ), cursors AS (
                SELECT * FROM unnest($9::uuid[], $10::timestamptz[], $11::uuid[]) AS k(destination_id, due, id)
            ), candidates AS (
                SELECT c.id, c.next_attempt_at, w.project_id
                FROM notification_destinations w
                LEFT JOIN busy b ON b.destination_id = w.id
                LEFT JOIN cursors k ON k.destination_id = w.id
                CROSS JOIN LATERAL (
                    SELECT d.id, d.next_attempt_at FROM notification_deliveries d
                    WHERE d.destination_id = w.id AND d.state = 'pending' AND d.next_attempt_at <= now()
                      AND (d.next_attempt_at, d.id) > (coalesce(k.due, '-infinity'), coalesce(k.id, '00000000-0000-0000-0000-000000000000'))
                      AND (d.leased_until IS NULL OR d.leased_until < now())
                    ORDER BY d.next_attempt_at, d.id
                    LIMIT greatest(0, $5::int - coalesce(b.running, 0))
                ) c
                WHERE w.disabled_at IS NULL
            ), ranked AS (
                SELECT c.id, c.next_attempt_at, coalesce(p.running, 0) AS running,
                       row_number() OVER (PARTITION BY c.project_id ORDER BY c.next_attempt_at, c.id) AS place
                FROM candidates c LEFT JOIN busy_projects p ON p.project_id = c.project_id
            ), chosen AS (
                SELECT id FROM ranked WHERE place <= $6::int - running ORDER BY next_attempt_at, id LIMIT $7::int
            )
            UPDATE notification_deliveries d
            SET leased_until = now() + make_interval(secs => $8::float8), attempts = d.attempts + 1
            FROM chosen, notification_events e, notification_destinations w
            WHERE d.id = chosen.id AND d.state = 'pending' AND (d.leased_until IS NULL OR d.leased_until < now())
              AND e.id = d.event_id AND w.id = d.destination_id
            RETURNING d.id::text AS id, d.attempts, d.attempts - d.resent_after AS round, d.event_id::text AS event_id,
                      \(timestamp("d.next_attempt_at")) AS due,
                      e.body, d.destination_id::text AS destination_id, w.url, w.headers, w.signing_secret,
                      d.project_id::text AS project_id, extract(epoch FROM e.created_at)::float8 AS created
            """,
         [PostgresArray.literal(running.keys), PostgresArray.literal(running.values.map(String.init)),
          PostgresArray.literal(runningProjects.keys), PostgresArray.literal(runningProjects.values.map(String.init)),
          String(perDestination), String(perProject), String(limit), String(lease),
          PostgresArray.literal(after.keys), PostgresArray.literal(after.values.map(\.due)), PostgresArray.literal(after.values.map(\.id))])
    }

    /// Where a destination's last claim ended.
    struct Cursor: Sendable, Comparable {
        var due: String
        var id: String

        static func < (lhs: Cursor, rhs: Cursor) -> Bool { (lhs.due, lhs.id) < (rhs.due, rhs.id) }
    }

    /// What an attempt came to.
    enum Outcome: Sendable, Equatable {
        case delivered
        /// Failed in a way worth trying again (a 5xx, 408, 429, a timeout, a refused connection): due again after `delay`
        /// seconds, or given up on when `delay` is nil.
        case retry(delay: Double?)
        /// Failed in a way another attempt would not change (another 4xx, a refused URL).
        case failed
    }

    /// One attempt's outcome, for its record.
    struct Record: Sendable {
        var delivery: String
        var attempt: Int
        var destination: String
        var startedAt: String
        var durationMs: Double
        var status: Int?
        var error: String?
        var outcome: Outcome

        var state: String {
            switch outcome {
            case .delivered: "delivered"
            case .retry(.some): "pending"
            case .retry(nil), .failed: "failed"
            }
        }

        var delay: Double? {
            if case .retry(let delay?) = outcome { return delay }
            return nil
        }

        /// Failed because its retries ran out.
        var exhausted: Bool { outcome == .retry(delay: nil) }
    }

    /// Records the attempts that ended at about the same time, in one transaction: their rows; each
    /// delivery's lease ended and its state (delivered, pending with its next wait, or failed) unless a
    /// later attempt has begun (`attempts` is no longer this one's) or it was sent again while this one
    /// ran (then the next round decides it); and each destination's run of failures (a success ends it;
    /// written only when it changes), which disables the destination once every attempt has failed for
    /// `disableAfter` seconds. The last statement answers the destinations this disabled.
    /// Rows are named in key order (records by delivery, destinations by id), so that two notifiers'
    /// flushes lock them in the same order.
    static func record(_ given: [Record], disableAfter: Double) -> [(sql: String, parameters: [String?])] {
        let records = given.sorted { $0.delivery < $1.delivery }
        var outcome: [String: (ok: Bool, error: String?)] = [:]
        for record in records {
            let ok = record.outcome == .delivered
            if ok || outcome[record.destination]?.ok != true { outcome[record.destination] = (ok, record.error) }
        }
        let destinations = outcome.keys.sorted()
        return [
            ("""
             INSERT INTO notification_delivery_attempts (delivery_id, attempt, started_at, duration_ms, status, error)
             SELECT r.* FROM unnest($1::uuid[], $2::int[], $3::timestamptz[], $4::float8[], $5::int[], $6::text[])
                 AS r(delivery_id, attempt, started_at, duration_ms, status, error)
             -- a delivery removed with its destination while its attempt ran has nothing to record
             WHERE EXISTS (SELECT 1 FROM notification_deliveries d WHERE d.id = r.delivery_id)
             ON CONFLICT DO NOTHING
             """, [PostgresArray.literal(records.map(\.delivery)), PostgresArray.literal(records.map { String($0.attempt) }),
                   PostgresArray.literal(records.map(\.startedAt)), PostgresArray.literal(records.map { String($0.durationMs) }),
                   PostgresArray.literal(records.map { $0.status.map(String.init) }), PostgresArray.literal(records.map(\.error))]),
            ("""
             UPDATE notification_deliveries d SET leased_until = NULL,
                 state = CASE WHEN d.resent_after < r.attempt THEN r.state ELSE d.state END,
                 next_attempt_at = CASE WHEN d.resent_after >= r.attempt OR r.delay IS NULL THEN d.next_attempt_at
                                        ELSE now() + make_interval(secs => r.delay) END,
                 finished_at = CASE WHEN d.resent_after >= r.attempt OR r.state = 'pending' THEN d.finished_at ELSE now() END,
                 last_status = r.status, last_error = r.error,
                 exhausted = d.resent_after < r.attempt AND r.exhausted
             FROM unnest($1::uuid[], $2::int[], $3::text[], $4::float8[], $5::int[], $6::text[], $7::boolean[])
                 AS r(id, attempt, state, delay, status, error, exhausted)
             WHERE d.id = r.id AND d.state = 'pending' AND d.attempts = r.attempt
             """, [PostgresArray.literal(records.map(\.delivery)), PostgresArray.literal(records.map { String($0.attempt) }),
                   PostgresArray.literal(records.map(\.state)), PostgresArray.literal(records.map { $0.delay.map { String($0) } }),
                   PostgresArray.literal(records.map { $0.status.map(String.init) }), PostgresArray.literal(records.map(\.error)),
                   PostgresArray.literal(records.map { $0.exhausted ? "true" : "false" })]),
            ("""
             UPDATE notification_destinations w SET
                 failing_since = CASE WHEN r.ok THEN NULL ELSE coalesce(w.failing_since, now()) END,
                 disabled_at = CASE WHEN NOT r.ok AND w.disabled_at IS NULL
                                         AND w.failing_since <= now() - make_interval(secs => $4::float8) THEN now()
                                    ELSE w.disabled_at END,
                 disabled_reason = CASE WHEN NOT r.ok AND w.disabled_at IS NULL
                                             AND w.failing_since <= now() - make_interval(secs => $4::float8)
                                        THEN 'every attempt failed for ' || $4::int || ' s; the last: ' || coalesce(r.error, 'no answer')
                                        ELSE w.disabled_reason END
             FROM unnest($1::uuid[], $2::boolean[], $3::text[]) AS r(id, ok, error)
             WHERE w.id = r.id AND (NOT r.ok OR w.failing_since IS NOT NULL)
             RETURNING CASE WHEN w.disabled_at = now() THEN w.id::text END AS disabled, w.project_id::text AS project_id, w.name,
                       \(timestamp("w.failing_since")) AS failing_since, r.error
             """, [PostgresArray.literal(destinations), PostgresArray.literal(destinations.map { outcome[$0]!.ok ? "true" : "false" }),
                   PostgresArray.literal(destinations.map { outcome[$0]!.error }), String(Int(disableAfter))]),
        ]
    }

    /// Removes up to `limit` events received more than `retention` seconds ago none of whose deliveries is
    /// pending, with their deliveries and attempts; answers how many.
    static func prune(retention: Double, limit: Int) -> (sql: String, parameters: [String?]) {
        ("""
         WITH old AS (
             SELECT e.id FROM notification_events e
             WHERE e.received_at < now() - make_interval(secs => $1::float8)
               AND NOT EXISTS (SELECT 1 FROM notification_deliveries d WHERE d.event_id = e.id AND d.state = 'pending')
             LIMIT $2::int
         )
         DELETE FROM notification_events e USING old WHERE e.id = old.id
         """, [String(retention), String(limit)])
    }
}

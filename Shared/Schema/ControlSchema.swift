import Postgres

/// The control database: projects, keys, integrations, installations (control data), the writer's
/// per-request rows, operations and their logs, and idempotency keys.
public enum ControlSchema {
    public static let migrations: [Migration] = [
        Migration(
            "001_control_data",
            """
            CREATE TABLE projects (
                id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                name text NOT NULL UNIQUE,
                created_at timestamptz NOT NULL DEFAULT now()
            );
            -- API keys are stored as SHA-256 hex digests, never in clear.
            CREATE TABLE api_keys (
                key_hash text PRIMARY KEY,
                project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
                label text NOT NULL DEFAULT '',
                created_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE TABLE integrations (
                id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
                name text NOT NULL,
                provider text NOT NULL,
                -- the objectName of each object the integration writes to
                objects jsonb NOT NULL DEFAULT '[]',
                created_at timestamptz NOT NULL DEFAULT now(),
                UNIQUE (project_id, name)
            );
            CREATE TABLE installations (
                id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
                integration_id uuid NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
                group_ref text NOT NULL,
                -- the provider's API base (Salesforce instance URL, HubSpot API host)
                base_url text NOT NULL,
                -- {"accessToken": …}; read by the writer only, never returned or logged
                credentials jsonb NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                UNIQUE (integration_id, group_ref)
            );
            """),
        Migration(
            "002_operations",
            """
            CREATE TABLE operations (
                id uuid PRIMARY KEY,
                project_id uuid NOT NULL,
                integration_id uuid NOT NULL,
                installation_id uuid NOT NULL,
                group_ref text NOT NULL,
                object_name text NOT NULL,
                write_type text NOT NULL,
                mode text NOT NULL,
                status text NOT NULL DEFAULT 'in_progress',
                record_id text,
                result_data jsonb,
                errors jsonb,
                provider_status int,
                possibly_duplicated boolean NOT NULL DEFAULT false,
                attempts int NOT NULL DEFAULT 0,
                provider_done boolean NOT NULL DEFAULT false,
                provider_success boolean,
                cache_done boolean NOT NULL DEFAULT false,
                create_time timestamptz NOT NULL,
                update_time timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX operations_installation ON operations (installation_id, create_time);
            -- one row per step of an operation; a redelivered step is not logged twice
            CREATE TABLE operation_logs (
                operation_id uuid NOT NULL,
                step text NOT NULL,
                logged_at timestamptz NOT NULL,
                severity text NOT NULL,
                message jsonb NOT NULL,
                PRIMARY KEY (operation_id, step)
            );
            -- the writer's row per request: in flight before the provider call, completed after it
            CREATE TABLE write_attempts (
                operation_id uuid PRIMARY KEY,
                state text NOT NULL,
                attempts int NOT NULL DEFAULT 1,
                result jsonb,
                started_at timestamptz NOT NULL DEFAULT now(),
                completed_at timestamptz
            );
            CREATE TABLE idempotency_keys (
                project_id uuid NOT NULL,
                key text NOT NULL,
                body_hash text NOT NULL,
                operation_id uuid NOT NULL,
                response_status int,
                response_body text,
                created_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (project_id, key)
            );
            """),
        Migration(
            "003_integrations_as_code",
            """
            -- each upload of an integration's manifest content
            CREATE TABLE revisions (
                id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
                integration_id uuid NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
                spec_version text NOT NULL,
                content jsonb NOT NULL,
                source_yaml text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now()
            );
            ALTER TABLE integrations
                ADD COLUMN display_name text NOT NULL DEFAULT '',
                ADD COLUMN content jsonb,
                ADD COLUMN latest_revision_id uuid,
                ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
            -- a project's OAuth client at a provider; the client secret is sealed in `secrets`
            CREATE TABLE provider_apps (
                id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
                provider text NOT NULL,
                client_id text NOT NULL,
                scopes jsonb NOT NULL DEFAULT '[]',
                secrets text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                UNIQUE (project_id, provider)
            );
            -- a customer's account at a provider: where its API is and the sealed tokens to call it
            CREATE TABLE connections (
                id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
                provider text NOT NULL,
                group_ref text NOT NULL,
                group_name text NOT NULL DEFAULT '',
                consumer_ref text NOT NULL,
                consumer_name text NOT NULL DEFAULT '',
                provider_workspace_ref text,
                base_url text NOT NULL,
                auth_scheme text NOT NULL,
                status text NOT NULL DEFAULT 'created',
                -- the credentials, sealed with WRITEBACK_ENCRYPTION_KEY; never returned or logged
                secrets text,
                -- credentials stored before they were sealed; the api seals them when it starts
                plain_credentials jsonb,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX connections_group ON connections (project_id, provider, group_ref, created_at);
            -- an authorization-code flow under way: what the callback needs to make the connection
            CREATE TABLE oauth_states (
                state text PRIMARY KEY,
                project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
                provider text NOT NULL,
                group_ref text NOT NULL,
                group_name text NOT NULL,
                consumer_ref text NOT NULL,
                consumer_name text NOT NULL,
                provider_workspace_ref text,
                expires_at timestamptz NOT NULL
            );
            ALTER TABLE installations
                ADD COLUMN connection_id uuid REFERENCES connections(id),
                ADD COLUMN config jsonb NOT NULL DEFAULT '{}',
                ADD COLUMN created_by text NOT NULL DEFAULT 'api:create-installation',
                ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
            -- installations made before connections existed keep their credentials, as a connection each
            INSERT INTO connections (id, project_id, provider, group_ref, consumer_ref, base_url, auth_scheme,
                                     plain_credentials, created_at)
            SELECT i.id, i.project_id, n.provider, i.group_ref, i.group_ref, i.base_url, 'oauth2/authorizationCode',
                   i.credentials, i.created_at
            FROM installations i JOIN integrations n ON n.id = i.integration_id;
            UPDATE installations SET connection_id = id;
            ALTER TABLE installations DROP COLUMN base_url, DROP COLUMN credentials,
                ALTER COLUMN connection_id SET NOT NULL;
            CREATE INDEX operations_project ON operations (project_id, create_time);
            """),
        Migration(
            "004_batch_operations",
            """
            -- a batch write's result per record, in request order
            ALTER TABLE operations ADD COLUMN results jsonb,
                -- the records the provider changed, each of which the destination must hold before success
                ADD COLUMN expected_changes int NOT NULL DEFAULT 1,
                -- how many of them the destination holds (counted once each, through operation_changes)
                ADD COLUMN changes_done int NOT NULL DEFAULT 0;
            CREATE TABLE operation_changes (
                operation_id uuid NOT NULL,
                record_id text NOT NULL,
                PRIMARY KEY (operation_id, record_id)
            );
            INSERT INTO operation_changes SELECT id, record_id FROM operations WHERE cache_done AND record_id IS NOT NULL;
            UPDATE operations SET changes_done = 1 WHERE cache_done AND record_id IS NOT NULL;
            """),
        Migration(
            "005_bulk_writes",
            """
            -- a bulk write's CSV sent as recordsCSV, until its operation ends
            CREATE TABLE bulk_uploads (
                operation_id uuid PRIMARY KEY,
                csv bytea NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now()
            );
            -- a bulk write's progress: which reading of the CSV the counts are from, and the counts
            ALTER TABLE operations ADD COLUMN bulk_header jsonb,
                ADD COLUMN bulk_run bigint NOT NULL DEFAULT 0,
                ADD COLUMN records_processed bigint,
                ADD COLUMN records_succeeded bigint,
                ADD COLUMN records_failed bigint,
                ADD COLUMN records_total bigint,
                ADD COLUMN provider_job_ids jsonb;
            -- the rows a bulk write could not write, for the failed-records CSV (those of its latest reading)
            CREATE TABLE bulk_failures (
                operation_id uuid NOT NULL,
                line bigint NOT NULL,
                run bigint NOT NULL,
                primary_key text NOT NULL,
                error text NOT NULL,
                code text,
                row jsonb NOT NULL,
                PRIMARY KEY (operation_id, line)
            );
            """),
        Migration(
            "006_actions",
            """
            -- keys that sign customer tokens (JWT, iss = key); the secret sealed like connection secrets
            CREATE TABLE customer_token_keys (
                key text PRIMARY KEY,
                project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
                secret text NOT NULL,
                label text,
                created_at timestamptz NOT NULL DEFAULT now(),
                revoked_at timestamptz
            );
            -- a customer's instance of a catalog action on one integration: its customization
            CREATE TABLE action_instances (
                id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
                integration_id uuid NOT NULL REFERENCES integrations(id) ON DELETE CASCADE,
                group_ref text NOT NULL,
                action_key text NOT NULL,
                customization jsonb NOT NULL DEFAULT '{}',
                set_up_at timestamptz,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                archived_at timestamptz
            );
            CREATE UNIQUE INDEX action_instances_live ON action_instances (integration_id, group_ref, action_key)
                WHERE archived_at IS NULL;
            """),
        Migration(
            "007_held_writes",
            """
            -- writes that wait (a rate-limit hold, a retry backoff, a daily-limit pause, an auto-batch delay),
            -- kept here until they end, so that their Kafka offsets move on and nothing waits in memory
            CREATE TABLE held_writes (
                operation_id uuid PRIMARY KEY,
                installation_id uuid NOT NULL,
                topic text NOT NULL,
                partition int NOT NULL,
                -- the offset of the message that carried it: the order of the connection's writes
                seq bigint NOT NULL,
                due_at timestamptz NOT NULL,
                object_name text NOT NULL,
                -- what it writes (a batch writes several records); a write waits for every earlier one that
                -- shares a key, and a barrier (a bulk write) for every earlier write of its object
                keys text[] NOT NULL,
                barrier boolean NOT NULL DEFAULT false,
                -- auto-batched writes of one object and type go to the provider together
                batch_group text,
                -- provider calls made so far, and whether one of them may have applied the write
                calls int NOT NULL DEFAULT 0,
                possibly_duplicated boolean NOT NULL DEFAULT false,
                request text NOT NULL,
                held_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX held_writes_lane ON held_writes (installation_id, partition, seq);
            CREATE INDEX held_writes_due ON held_writes (installation_id, partition, due_at);
            CREATE INDEX held_writes_partition ON held_writes (topic, partition);
            CREATE INDEX held_writes_keys ON held_writes USING gin (keys);
            CREATE INDEX held_writes_barriers ON held_writes (installation_id, object_name, seq) WHERE barrier;
            """),
        Migration(
            "008_held_writes_keys",
            """
            -- a held write's keys are the records it writes; its operation is its primary key already, so
            -- a create (no record known yet) has none and waits for nothing held
            UPDATE held_writes SET keys = ARRAY(SELECT k FROM unnest(keys) k WHERE k NOT LIKE 'op:%');
            -- held writes come and go by the thousand: a pending list of new keys would be read in full by
            -- every lookup of a load (each candidate looks for an earlier write of its records), so keys
            -- go straight into the index, and the table's statistics follow its size closely
            ALTER INDEX held_writes_keys SET (fastupdate = off);
            SELECT gin_clean_pending_list('held_writes_keys'::regclass);
            ALTER TABLE held_writes SET (autovacuum_analyze_scale_factor = 0.02, autovacuum_analyze_threshold = 500,
                                         autovacuum_vacuum_scale_factor = 0.05, autovacuum_vacuum_threshold = 1000);
            """),
        Migration(
            "009_change_logs",
            """
            -- the destination's update of each record is its log line: when, which version, and whether
            -- it was applied or a newer state kept (a row before this logged it in operation_logs)
            ALTER TABLE operation_changes ADD COLUMN logged_at timestamptz, ADD COLUMN version bigint, ADD COLUMN applied boolean;
            """),
        Migration(
            "010_lighter_rows",
            """
            -- a held write that knows no record yet (a create) waits for nothing held by record: it needs
            -- no entry in the keys index, where every such row shared the one entry of the empty array
            DROP INDEX held_writes_keys;
            CREATE INDEX held_writes_keys ON held_writes USING gin (keys) WITH (fastupdate = off) WHERE keys <> '{}';
            -- an operation's row is updated as its answer and its destination update arrive: room on its
            -- page lets those updates stay on the page without new index entries
            ALTER TABLE operations SET (fillfactor = 80);
            """),
        Migration(
            "011_log_lines",
            """
            -- a single-record write's acceptance and its provider's answer are logged by its operation's
            -- row, as the destination's update of each record is by its operation_changes row: the columns
            -- those lines read (operation_logs keeps the lines of batches, bulk writes and the rest)
            ALTER TABLE operations ADD COLUMN single_accepted boolean NOT NULL DEFAULT false,
                ADD COLUMN request_record_id text, ADD COLUMN provider text, ADD COLUMN provider_time timestamptz;
            -- every log line of every operation: the stored ones and those its rows tell (a line stored by
            -- an earlier version for the same step is kept instead of the one its row tells)
            CREATE VIEW operation_log_lines AS
                SELECT operation_id, logged_at, step, severity, message FROM operation_logs
                UNION ALL
                SELECT o.id, o.create_time, 'accepted', 'INFO',
                       jsonb_build_object(
                           'msg', o.write_type || ' of ' || o.object_name || ' accepted (' || o.mode || ')',
                           'operation_id', o.id::text,
                           'details', jsonb_build_object('groupRef', o.group_ref, 'recordId', o.request_record_id))
                FROM operations o
                WHERE o.single_accepted
                  AND NOT EXISTS (SELECT 1 FROM operation_logs l WHERE l.operation_id = o.id AND l.step = 'accepted')
                UNION ALL
                SELECT o.id, o.provider_time, 'provider', CASE WHEN o.provider_success THEN 'INFO' ELSE 'ERROR' END,
                       CASE WHEN o.provider_success THEN
                           jsonb_build_object(
                               'msg', o.provider || ' applied the ' || o.write_type || COALESCE(' (HTTP ' || o.provider_status || ')', ''),
                               'operation_id', o.id::text,
                               'details', jsonb_build_object('recordId', o.record_id, 'calls', o.attempts))
                       ELSE
                           jsonb_build_object(
                               'msg', CASE WHEN (o.errors -> 0 ->> 'deadLettered')::boolean THEN 'write dead-lettered'
                                           ELSE o.provider || ' rejected the ' || o.write_type
                                                || COALESCE(' (HTTP ' || o.provider_status || ')', '') END,
                               'operation_id', o.id::text,
                               'details', jsonb_build_object('code', o.errors -> 0 -> 'code', 'calls', o.attempts))
                           || CASE WHEN o.errors -> 0 ? 'message' THEN jsonb_build_object('error', o.errors -> 0 -> 'message')
                                   ELSE '{}'::jsonb END
                       END
                FROM operations o
                WHERE o.provider_time IS NOT NULL
                  AND NOT EXISTS (SELECT 1 FROM operation_logs l WHERE l.operation_id = o.id AND l.step = 'provider')
                UNION ALL
                SELECT operation_id, logged_at, 'destination:' || record_id, 'INFO',
                       jsonb_build_object(
                           'msg', CASE WHEN applied THEN 'destination record updated'
                                       ELSE 'destination already held a newer state; kept it' END,
                           'operation_id', operation_id::text,
                           'details', jsonb_build_object('recordId', record_id, 'version', version))
                FROM operation_changes WHERE logged_at IS NOT NULL;
            """),
        Migration(
            "012_notifications",
            """
            -- where a project's notifications go: webhook URLs, their headers and signing secret sealed
            CREATE TABLE notification_destinations (
                id uuid PRIMARY KEY,
                project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
                name text NOT NULL,
                type text NOT NULL,
                url text NOT NULL,
                headers text,
                signing_secret text NOT NULL,
                -- set when every attempt failed for NOTIFIER_DISABLE_AFTER_SECONDS; its deliveries wait
                disabled_at timestamptz,
                disabled_reason text,
                -- when the attempts to it began failing (cleared by a success)
                failing_since timestamptz,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz,
                UNIQUE (project_id, name)
            );
            CREATE TABLE notification_topics (
                id uuid PRIMARY KEY,
                project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
                name text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz,
                UNIQUE (project_id, name)
            );
            CREATE TABLE notification_event_topic_routes (
                id uuid PRIMARY KEY,
                project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
                event_type text NOT NULL,
                topic_id uuid NOT NULL REFERENCES notification_topics(id) ON DELETE CASCADE,
                created_at timestamptz NOT NULL DEFAULT now(),
                UNIQUE (project_id, event_type, topic_id)
            );
            CREATE TABLE notification_topic_destination_routes (
                id uuid PRIMARY KEY,
                project_id uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
                topic_id uuid NOT NULL REFERENCES notification_topics(id) ON DELETE CASCADE,
                destination_id uuid NOT NULL REFERENCES notification_destinations(id) ON DELETE CASCADE,
                created_at timestamptz NOT NULL DEFAULT now(),
                UNIQUE (topic_id, destination_id)
            );
            -- events that had somewhere to go, as sent (body) and once however often they were told
            CREATE TABLE notification_events (
                id uuid PRIMARY KEY,
                project_id uuid NOT NULL,
                event_type text NOT NULL,
                body text NOT NULL,
                created_at timestamptz NOT NULL,
                received_at timestamptz NOT NULL DEFAULT now()
            );
            CREATE INDEX notification_events_project ON notification_events (project_id, created_at);
            -- one event to one destination: pending until a 2xx (delivered) or given up on (failed)
            CREATE TABLE notification_deliveries (
                id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                event_id uuid NOT NULL REFERENCES notification_events(id) ON DELETE CASCADE,
                destination_id uuid NOT NULL REFERENCES notification_destinations(id) ON DELETE CASCADE,
                project_id uuid NOT NULL,
                state text NOT NULL DEFAULT 'pending',
                attempts int NOT NULL DEFAULT 0,
                -- the attempts made before it was last sent again: the retry schedule starts over from there
                resent_after int NOT NULL DEFAULT 0,
                -- when it is next due; while an attempt runs, when that attempt's lease ends
                next_attempt_at timestamptz NOT NULL DEFAULT now(),
                created_at timestamptz NOT NULL DEFAULT now(),
                finished_at timestamptz,
                last_status int,
                last_error text,
                UNIQUE (event_id, destination_id)
            );
            CREATE INDEX notification_deliveries_due ON notification_deliveries (next_attempt_at) WHERE state = 'pending';
            CREATE INDEX notification_deliveries_destination ON notification_deliveries (destination_id, created_at);
            CREATE TABLE notification_delivery_attempts (
                delivery_id uuid NOT NULL REFERENCES notification_deliveries(id) ON DELETE CASCADE,
                attempt int NOT NULL,
                started_at timestamptz NOT NULL,
                duration_ms double precision NOT NULL,
                status int,
                error text,
                PRIMARY KEY (delivery_id, attempt)
            );
            """),
        Migration(
            "013_delivery_leases",
            """
            -- while an attempt runs, when its lease ends (apart from when the delivery is due, so that
            -- sending it again or enabling its destination never frees a delivery an attempt still holds)
            ALTER TABLE notification_deliveries ADD COLUMN leased_until timestamptz;
            -- a destination's due deliveries, in the order they are claimed
            CREATE INDEX notification_deliveries_destination_due ON notification_deliveries (destination_id, next_attempt_at, id)
                WHERE state = 'pending';
            DROP INDEX notification_deliveries_due;
            -- every attempt updates its row twice: vacuumed often, so that the dead entries a claim may
            -- walk stay few
            ALTER TABLE notification_deliveries SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);
            """),
        Migration(
            "014_delivery_exhausted",
            """
            -- failed because its retries ran out (not because the destination refused it): sent again
            -- when its destination, disabled meanwhile, is enabled
            ALTER TABLE notification_deliveries ADD COLUMN exhausted boolean NOT NULL DEFAULT false;
            """),
        Migration(
            "015_operation_requests",
            """
            -- each write request as it was accepted (its write-requests message), for the console's
            -- operation page and for sending a failed write again; apart from operations, whose rows are
            -- updated as the write goes on, so that those updates do not copy it
            CREATE TABLE operation_requests (
                operation_id uuid PRIMARY KEY,
                message text NOT NULL
            );
            -- a write sent again is a new operation naming the one it sends again
            ALTER TABLE operations ADD COLUMN resent_from uuid;
            CREATE INDEX operations_resent_from ON operations (resent_from) WHERE resent_from IS NOT NULL;
            -- the installations of a connection (the console's connection health)
            CREATE INDEX installations_connection ON installations (connection_id);
            """),
    ]
}

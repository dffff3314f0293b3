import Postgres

/// The destination database: the backend's own copy of each record that Writeback wrote.
public enum DestinationSchema {
    public static let migrations: [Migration] = [
        Migration(
            "001_records",
            """
            CREATE TABLE records (
                project_id text NOT NULL,
                group_ref text NOT NULL,
                provider text NOT NULL,
                object_name text NOT NULL,
                record_id text NOT NULL,
                integration_id text NOT NULL,
                fields jsonb NOT NULL,
                deleted boolean NOT NULL DEFAULT false,
                -- microseconds since the epoch of the change that wrote this state
                version bigint NOT NULL,
                operation_id text NOT NULL,
                created_at timestamptz NOT NULL DEFAULT now(),
                updated_at timestamptz NOT NULL DEFAULT now(),
                PRIMARY KEY (project_id, group_ref, provider, object_name, record_id)
            );
            """),
        Migration(
            "002_record_id_first",
            """
            -- the key's columns in the order that tells records apart soonest: the records of one write
            -- share their project, customer, provider and object, so with those first every comparison in
            -- the index walked four equal columns before the record id (a backend that lists a
            -- customer's records adds its own index on (project_id, group_ref, object_name))
            ALTER TABLE records DROP CONSTRAINT records_pkey,
                ADD PRIMARY KEY (record_id, object_name, group_ref, project_id, provider);
            """),
    ]
}

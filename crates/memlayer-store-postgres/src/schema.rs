//! Versioned migrations inside the store's schema, serialised across processes by an advisory
//! lock, and the embedding pin.

use memlayer_store::{EmbeddingPin, Error, ErrorKind, Result};
use tokio_postgres::GenericClient;

use crate::error::{corrupt, map_pg};
use crate::sql::column;

/// Lock key for migrations of every memlayer schema in the database (they share the
/// `vector` extension, whose creation must not race).
const MIGRATION_LOCK: i64 = 0x6d65_6d6c_6179_6572; // "memlayer"

fn migrations(s: &str) -> Vec<String> {
    vec![
        // 1: items, their indexes and the BM25 postings.
        format!(
            r#"
        CREATE TABLE {s}.items (
            id               text PRIMARY KEY,
            namespace        text NOT NULL,
            kind             text NOT NULL,
            content          text NOT NULL,
            status           text NOT NULL,
            tool_calls       jsonb NOT NULL DEFAULT '[]',
            tool_call_id     text,
            tool_name        text,
            is_error         boolean,
            user_id          text,
            session_id       text,
            task_id          text,
            agent_id         text,
            extra            jsonb NOT NULL DEFAULT '{{}}',
            tags             text[] NOT NULL DEFAULT '{{}}',
            tier             text NOT NULL,
            expires_at       bigint,
            importance       real NOT NULL,
            confidence       real NOT NULL,
            access_count     bigint NOT NULL DEFAULT 0,
            last_accessed_at bigint,
            superseded_by    text,
            valid_from       bigint,
            valid_to         bigint,
            created_at       bigint NOT NULL,
            updated_at       bigint NOT NULL,
            version          bigint NOT NULL,
            deleted          boolean NOT NULL DEFAULT false,
            embedding_model  text,
            embedding        public.vector,
            doc_len          integer NOT NULL DEFAULT 0,
            tsv              tsvector GENERATED ALWAYS AS (to_tsvector('english'::regconfig, content)) STORED
        );
        CREATE INDEX items_ns_created ON {s}.items (namespace, created_at, id);
        CREATE INDEX items_live_user ON {s}.items (namespace, user_id, created_at) WHERE NOT deleted;
        CREATE INDEX items_live_session ON {s}.items (namespace, session_id, created_at) WHERE NOT deleted;
        CREATE INDEX items_tags ON {s}.items USING gin (tags);
        CREATE INDEX items_extra ON {s}.items USING gin (extra jsonb_path_ops);
        CREATE INDEX items_tsv ON {s}.items USING gin (tsv);
        CREATE INDEX items_expiring ON {s}.items (expires_at) WHERE expires_at IS NOT NULL;
        CREATE INDEX items_superseded ON {s}.items (namespace, superseded_by) WHERE superseded_by IS NOT NULL;

        -- Term statistics for BM25 computed in SQL, with the same analyzer as the other backends.
        CREATE TABLE {s}.postings (
            namespace text NOT NULL,
            term      text NOT NULL,
            item_id   text NOT NULL REFERENCES {s}.items (id) ON DELETE CASCADE,
            tf        integer NOT NULL,
            -- The item's length in terms, repeated here so scoring never needs the items table.
            doc_len   integer NOT NULL,
            PRIMARY KEY (namespace, term, item_id)
        );
        CREATE INDEX postings_item ON {s}.postings (item_id);
        "#
        ),
        // 2: BM25's namespace statistics (how many items, their total length in terms), kept by
        // statement triggers on `items` in the writer's own transaction, so a keyword search
        // reads one row where it counted the namespace's items. Namespaces are updated in
        // order, so two writers lock their rows in the same order; a statement that changes
        // no count or length (access counts, soft deletes) takes no lock.
        format!(
            r#"
        CREATE TABLE {s}.namespace_stats (
            namespace text PRIMARY KEY,
            items     bigint NOT NULL,
            total_len bigint NOT NULL
        );
        INSERT INTO {s}.namespace_stats (namespace, items, total_len)
            SELECT namespace, count(*), COALESCE(sum(doc_len), 0) FROM {s}.items GROUP BY namespace;

        -- Each statement's rows as (namespace, +-1, +-length); the transition tables a
        -- statement has depend on its kind, so the source is chosen per kind.
        CREATE FUNCTION {s}.namespace_stats_apply() RETURNS trigger LANGUAGE plpgsql AS $fn$
        DECLARE
            added   text := 'SELECT namespace, 1, doc_len::bigint FROM new_rows';
            removed text := 'SELECT namespace, -1, -doc_len::bigint FROM old_rows';
        BEGIN
            EXECUTE 'INSERT INTO {s}.namespace_stats AS t (namespace, items, total_len)
                     SELECT namespace, sum(n), sum(len) FROM ('
                || CASE TG_OP WHEN 'INSERT' THEN added
                              WHEN 'DELETE' THEN removed
                              ELSE added || ' UNION ALL ' || removed END
                || ') c (namespace, n, len) GROUP BY namespace HAVING sum(n) <> 0 OR sum(len) <> 0 ORDER BY namespace
                     ON CONFLICT (namespace) DO UPDATE
                     SET items = t.items + EXCLUDED.items, total_len = t.total_len + EXCLUDED.total_len';
            RETURN NULL;
        END
        $fn$;
        CREATE TRIGGER items_stats_insert AFTER INSERT ON {s}.items
            REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION {s}.namespace_stats_apply();
        CREATE TRIGGER items_stats_update AFTER UPDATE ON {s}.items
            REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION {s}.namespace_stats_apply();
        CREATE TRIGGER items_stats_delete AFTER DELETE ON {s}.items
            REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION {s}.namespace_stats_apply();
        "#
        ),
        // 3: an item's identity is (namespace, id), so the same id in two namespaces is two
        // items (decisions/0007). Postings follow their item's key, also when `reassign` moves
        // it to another namespace. Written to run again safely on a schema that has it.
        format!(
            r#"
        ALTER TABLE {s}.postings DROP CONSTRAINT IF EXISTS postings_item_id_fkey;
        ALTER TABLE {s}.postings DROP CONSTRAINT IF EXISTS postings_item_fkey;
        ALTER TABLE {s}.items DROP CONSTRAINT items_pkey;
        ALTER TABLE {s}.items ADD PRIMARY KEY (namespace, id);
        ALTER TABLE {s}.postings ADD CONSTRAINT postings_item_fkey
            FOREIGN KEY (namespace, item_id) REFERENCES {s}.items (namespace, id)
            ON DELETE CASCADE ON UPDATE CASCADE;
        DROP INDEX IF EXISTS {s}.postings_item;
        CREATE INDEX postings_item ON {s}.postings (namespace, item_id);
        "#
        ),
    ]
}

/// Validates a schema name: it is the only identifier ever formatted into SQL.
///
/// # Errors
/// `ConfigInvalid` unless it matches `[a-z_][a-z0-9_]{0,62}`.
pub(crate) fn check_schema_name(s: &str) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::ConfigInvalid,
            format!("schema name {s:?} must match [a-z_][a-z0-9_]{{0,62}}"),
        ))
    }
}

/// Brings `schema` up to the latest version, in one transaction under the advisory lock.
pub(crate) async fn migrate(client: &mut tokio_postgres::Client, schema: &str) -> Result<()> {
    let tx = client.transaction().await.map_err(map_pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(map_pg)?;
    tx.batch_execute(&format!(
        "CREATE EXTENSION IF NOT EXISTS vector;
         CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {schema}.meta (key text PRIMARY KEY, value text NOT NULL);"
    ))
    .await
    .map_err(map_pg)?;
    let current: i64 = match tx
        .query_opt(
            &format!("SELECT value FROM {schema}.meta WHERE key = 'schema_version'"),
            &[],
        )
        .await
        .map_err(map_pg)?
    {
        Some(row) => column::<String>(&row, 0)?
            .parse()
            .map_err(|e| corrupt("schema_version", e))?,
        None => 0,
    };
    let all = migrations(schema);
    if current > all.len() as i64 {
        return Err(Error::new(
            ErrorKind::ConfigInvalid,
            format!(
                "schema {schema} has version {current}, this memlayer knows up to {}",
                all.len()
            ),
        ));
    }
    for (i, sql) in all.iter().enumerate().skip(current as usize) {
        tx.batch_execute(sql).await.map_err(map_pg)?;
        let v = (i + 1).to_string();
        tx.execute(
            &format!(
                "INSERT INTO {schema}.meta (key, value) VALUES ('schema_version', $1)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ),
            &[&v],
        )
        .await
        .map_err(map_pg)?;
    }
    tx.commit().await.map_err(map_pg)
}

/// The pinned embedding model, if any.
pub(crate) async fn load_pin<C: GenericClient>(
    c: &C,
    schema: &str,
) -> Result<Option<EmbeddingPin>> {
    let rows = c
        .query(
            &format!(
                "SELECT key, value FROM {schema}.meta WHERE key IN ('embedding_model', 'embedding_dim')"
            ),
            &[],
        )
        .await
        .map_err(map_pg)?;
    let mut model = None;
    let mut dim = None;
    for r in rows {
        let k: String = column(&r, 0)?;
        let v: String = column(&r, 1)?;
        match k.as_str() {
            "embedding_model" => model = Some(v),
            _ => {
                dim = Some(
                    v.parse::<usize>()
                        .map_err(|e| corrupt("embedding_dim", e))?,
                )
            }
        }
    }
    Ok(model
        .zip(dim)
        .map(|(model, dim)| EmbeddingPin { model, dim }))
}

/// Pins model and dimension inside the caller's transaction: types the vector column and
/// builds the HNSW cosine index.
pub(crate) async fn create_pin(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
    pin: &EmbeddingPin,
    m: u32,
    ef_construction: u32,
) -> Result<()> {
    tx.execute(
        &format!(
            "INSERT INTO {schema}.meta (key, value) VALUES ('embedding_model', $1), ('embedding_dim', $2)"
        ),
        &[&pin.model, &pin.dim.to_string()],
    )
    .await
    .map_err(map_pg)?;
    // Only validated integers are formatted into this DDL.
    tx.batch_execute(&format!(
        "ALTER TABLE {schema}.items ALTER COLUMN embedding TYPE public.vector({dim}); {}",
        vector_index_ddl(schema, m, ef_construction),
        dim = pin.dim
    ))
    .await
    .map_err(map_pg)
}

/// The HNSW cosine index over the pinned vectors (only integers are formatted in, and the
/// schema name is validated at connect).
pub(crate) fn vector_index_ddl(schema: &str, m: u32, ef_construction: u32) -> String {
    format!(
        "CREATE INDEX IF NOT EXISTS {VECTOR_INDEX} ON {schema}.items \
         USING hnsw (embedding public.vector_cosine_ops) \
         WITH (m = {m}, ef_construction = {ef_construction});"
    )
}

/// The name of the HNSW index, in the store's schema.
pub(crate) const VECTOR_INDEX: &str = "items_embedding_hnsw";

/// Whether the HNSW index exists.
pub(crate) async fn vector_index_exists<C: GenericClient>(c: &C, schema: &str) -> Result<bool> {
    let row = c
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("{schema}.{VECTOR_INDEX}")],
        )
        .await
        .map_err(map_pg)?;
    column(&row, 0)
}

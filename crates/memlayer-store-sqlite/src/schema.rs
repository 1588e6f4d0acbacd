//! Versioned schema migrations, tracked in `PRAGMA user_version`.
//!
//! Each migration runs inside one immediate transaction together with the version bump, so
//! two processes opening the same new file serialise and the second sees the finished schema.

use memlayer_store::{EmbeddingPin, Error, ErrorKind, Result};
use rusqlite::{Connection, TransactionBehavior, params};

use crate::error::map_sqlite;

/// Migrations in order; index + 1 is the version each one produces.
const MIGRATIONS: &[&str] = &[
    // 1: items, full-text index, metadata.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;

    CREATE TABLE items (
        rowid            INTEGER PRIMARY KEY,
        id               TEXT NOT NULL UNIQUE,
        namespace        TEXT NOT NULL,
        kind             TEXT NOT NULL,
        content          TEXT NOT NULL,
        status           TEXT NOT NULL,
        tool_calls       TEXT NOT NULL DEFAULT '[]',
        tool_call_id     TEXT,
        tool_name        TEXT,
        is_error         INTEGER,
        user_id          TEXT,
        session_id       TEXT,
        task_id          TEXT,
        agent_id         TEXT,
        extra            TEXT NOT NULL DEFAULT '{}',
        tags             TEXT NOT NULL DEFAULT '[]',
        tier             TEXT NOT NULL,
        expires_at       INTEGER,
        importance       REAL NOT NULL,
        confidence       REAL NOT NULL,
        access_count     INTEGER NOT NULL DEFAULT 0,
        last_accessed_at INTEGER,
        superseded_by    TEXT,
        valid_from       INTEGER,
        valid_to         INTEGER,
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL,
        version          INTEGER NOT NULL,
        deleted          INTEGER NOT NULL DEFAULT 0,
        embedding_model  TEXT
    );

    -- Recency and listing within a namespace (also serves namespace counts and deletes).
    CREATE INDEX items_ns_created ON items (namespace, created_at, id);
    -- Partial indexes over live rows for the common owner scopes.
    CREATE INDEX items_live_user ON items (namespace, user_id, created_at) WHERE deleted = 0;
    CREATE INDEX items_live_session ON items (namespace, session_id, created_at) WHERE deleted = 0;
    CREATE INDEX items_expiring ON items (expires_at) WHERE expires_at IS NOT NULL;
    CREATE INDEX items_superseded ON items (namespace, superseded_by) WHERE superseded_by IS NOT NULL;

    CREATE VIRTUAL TABLE items_fts USING fts5(
        content,
        content = 'items',
        content_rowid = 'rowid',
        tokenize = 'porter unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN
        INSERT INTO items_fts (rowid, content) VALUES (new.rowid, new.content);
    END;
    CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN
        INSERT INTO items_fts (items_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
    END;
    CREATE TRIGGER items_fts_update AFTER UPDATE OF content ON items BEGIN
        INSERT INTO items_fts (items_fts, rowid, content) VALUES ('delete', old.rowid, old.content);
        INSERT INTO items_fts (rowid, content) VALUES (new.rowid, new.content);
    END;
    "#,
    // 2: the generation of the vectors, bumped by every write that changes a vector or the
    // namespace one belongs to, so in-process vector indexes notice other writers.
    r#"
    INSERT OR IGNORE INTO meta (key, value) VALUES ('vector_generation', '0');
    "#,
    // 3: keyword search moves to an in-process BM25 index (decisions/0005, 0010): FTS5's
    // bm25() and its trigger were too slow. The generation now covers contents as well as
    // vectors.
    r#"
    DROP TRIGGER items_fts_insert;
    DROP TRIGGER items_fts_delete;
    DROP TRIGGER items_fts_update;
    DROP TABLE items_fts;
    UPDATE meta SET key = 'index_generation' WHERE key = 'vector_generation';
    "#,
    // 4: vectors move from the `vec0` table `items_vec` into a blob column of `items`
    // (decisions/0006). Searches run on the in-process index, so `vec0` was only read by rowid:
    // a second table (three shadow tables) per write, and a second lookup per hit. The copy
    // and the drop of `items_vec` follow in `move_vectors_into_items`.
    r#"
    ALTER TABLE items ADD COLUMN embedding BLOB;
    "#,
    // 5: the owner indexes leave out rows without that owner (a filter on one names it, and
    // `x = ?` implies `x IS NOT NULL` to the planner): most long-term items have no session,
    // and every write paid for an index entry no search could use.
    r#"
    DROP INDEX items_live_user;
    DROP INDEX items_live_session;
    CREATE INDEX items_live_user ON items (namespace, user_id, created_at)
        WHERE deleted = 0 AND user_id IS NOT NULL;
    CREATE INDEX items_live_session ON items (namespace, session_id, created_at)
        WHERE deleted = 0 AND session_id IS NOT NULL;
    "#,
    // 6: an item's identity is (namespace, id), so the same id in two namespaces is two items
    // (decisions/0007). SQLite cannot drop a column's UNIQUE, so the table is rebuilt with the
    // same columns (in the same order, `embedding` last as migration 4 added it) and rowids.
    r#"
    CREATE TABLE items_v6 (
        rowid            INTEGER PRIMARY KEY,
        id               TEXT NOT NULL,
        namespace        TEXT NOT NULL,
        kind             TEXT NOT NULL,
        content          TEXT NOT NULL,
        status           TEXT NOT NULL,
        tool_calls       TEXT NOT NULL DEFAULT '[]',
        tool_call_id     TEXT,
        tool_name        TEXT,
        is_error         INTEGER,
        user_id          TEXT,
        session_id       TEXT,
        task_id          TEXT,
        agent_id         TEXT,
        extra            TEXT NOT NULL DEFAULT '{}',
        tags             TEXT NOT NULL DEFAULT '[]',
        tier             TEXT NOT NULL,
        expires_at       INTEGER,
        importance       REAL NOT NULL,
        confidence       REAL NOT NULL,
        access_count     INTEGER NOT NULL DEFAULT 0,
        last_accessed_at INTEGER,
        superseded_by    TEXT,
        valid_from       INTEGER,
        valid_to         INTEGER,
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL,
        version          INTEGER NOT NULL,
        deleted          INTEGER NOT NULL DEFAULT 0,
        embedding_model  TEXT,
        embedding        BLOB,
        UNIQUE (namespace, id)
    );
    INSERT INTO items_v6 SELECT * FROM items;
    DROP TABLE items;
    ALTER TABLE items_v6 RENAME TO items;
    CREATE INDEX items_ns_created ON items (namespace, created_at, id);
    CREATE INDEX items_live_user ON items (namespace, user_id, created_at)
        WHERE deleted = 0 AND user_id IS NOT NULL;
    CREATE INDEX items_live_session ON items (namespace, session_id, created_at)
        WHERE deleted = 0 AND session_id IS NOT NULL;
    CREATE INDEX items_expiring ON items (expires_at) WHERE expires_at IS NOT NULL;
    CREATE INDEX items_superseded ON items (namespace, superseded_by) WHERE superseded_by IS NOT NULL;
    "#,
];

/// After migration 4's column exists: copies every vector of a pinned file's `items_vec`
/// into `items.embedding` and drops the `vec0` table (a file never pinned has none).
fn move_vectors_into_items(tx: &Connection) -> Result<()> {
    let has_vec0: bool = tx
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'items_vec')",
            [],
            |r| r.get(0),
        )
        .map_err(map_sqlite)?;
    if has_vec0 {
        tx.execute_batch(
            "UPDATE items SET embedding = v.embedding FROM items_vec v WHERE v.rowid = items.rowid;
             DROP TABLE items_vec;",
        )
        .map_err(map_sqlite)?;
    }
    Ok(())
}

/// The schema version this build writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the file up to [`SCHEMA_VERSION`].
///
/// # Errors
/// `ConfigInvalid` when the file was written by a newer memlayer.
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, SCHEMA_VERSION)
}

/// Brings the file up to version `target` (older versions only in tests).
pub(crate) fn migrate_to(conn: &mut Connection, target: i64) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(map_sqlite)?;
    let current: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(map_sqlite)?;
    if current > SCHEMA_VERSION {
        return Err(Error::new(
            ErrorKind::ConfigInvalid,
            format!(
                "the database has schema version {current}, this memlayer knows up to {SCHEMA_VERSION}"
            ),
        ));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .take(target as usize)
        .skip(current as usize)
    {
        tx.execute_batch(sql).map_err(map_sqlite)?;
        if i + 1 == 4 {
            move_vectors_into_items(&tx)?;
        }
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(map_sqlite)?;
    }
    tx.commit().map_err(map_sqlite)
}

/// The pinned embedding model, if any. Every vector search reads it, so it is one cached
/// statement rather than two prepared afresh.
pub(crate) fn load_pin(conn: &Connection) -> Result<Option<EmbeddingPin>> {
    let (model, dim): (Option<String>, Option<String>) = conn
        .prepare_cached(
            "SELECT (SELECT value FROM meta WHERE key = 'embedding_model'), \
                    (SELECT value FROM meta WHERE key = 'embedding_dim')",
        )
        .map_err(map_sqlite)?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(map_sqlite)?;
    match (model, dim) {
        (Some(model), Some(dim)) => {
            let dim = dim
                .parse()
                .map_err(|e| crate::error::corrupt("embedding_dim", e))?;
            Ok(Some(EmbeddingPin { model, dim }))
        }
        _ => Ok(None),
    }
}

/// Pins the model (inside the caller's transaction, so a failed batch un-pins too).
pub(crate) fn create_pin(conn: &Connection, pin: &EmbeddingPin) -> Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('embedding_model', ?1), ('embedding_dim', ?2)",
        params![pin.model, pin.dim.to_string()],
    )
    .map(|_| ())
    .map_err(map_sqlite)
}

#[cfg(test)]
mod tests {
    use rusqlite::params;

    use super::*;
    use crate::vectors::{from_blob, to_blob};

    /// A version-5 file (ids unique across the file) keeps every row, rowid and vector through
    /// migration 6, after which the same id may live in two namespaces but not twice in one.
    #[test]
    fn migration_6_keys_items_by_namespace_and_id() -> Result<()> {
        let mut conn = Connection::open_in_memory().map_err(map_sqlite)?;
        crate::vec_ext::register(&conn)?;
        migrate_to(&mut conn, 5)?;
        let insert = "INSERT INTO items (rowid, id, namespace, kind, content, status, tier, \
                      importance, confidence, created_at, updated_at, version, embedding) \
                      VALUES (?1, ?2, ?3, 'fact', ?4, 'accepted', 'semantic', 0.5, 1.0, 1, 1, 1, ?5)";
        conn.execute(
            insert,
            params![7, "a", "ns1", "first", to_blob(&[1.0, 2.0])],
        )
        .map_err(map_sqlite)?;
        conn.execute(insert, params![9, "b", "ns1", "second", None::<Vec<u8>>])
            .map_err(map_sqlite)?;
        assert!(
            conn.execute(insert, params![11, "a", "ns2", "x", None::<Vec<u8>>])
                .is_err(),
            "before migration 6 an id is unique across namespaces"
        );
        migrate_to(&mut conn, 6)?;
        let rows: Vec<(i64, String, String, Option<Vec<u8>>)> = conn
            .prepare("SELECT rowid, id, content, embedding FROM items ORDER BY rowid")
            .map_err(map_sqlite)?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .map_err(map_sqlite)?
            .collect::<rusqlite::Result<_>>()
            .map_err(map_sqlite)?;
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].0, rows[0].1.as_str(), rows[0].2.as_str()),
            (7, "a", "first")
        );
        assert_eq!(
            from_blob(rows[0].3.as_deref().unwrap_or_default()),
            vec![1.0, 2.0]
        );
        assert_eq!((rows[1].0, rows[1].3.is_none()), (9, true));
        conn.execute(insert, params![11, "a", "ns2", "x", None::<Vec<u8>>])
            .map_err(map_sqlite)?;
        assert!(
            conn.execute(insert, params![12, "a", "ns1", "y", None::<Vec<u8>>])
                .is_err(),
            "an id stays unique within its namespace"
        );
        Ok(())
    }

    /// A version-3 file (vectors in `items_vec`) keeps every vector, and its rows without one,
    /// through migration 4.
    #[test]
    fn migration_4_moves_vectors_into_items() -> Result<()> {
        let mut conn = Connection::open_in_memory().map_err(map_sqlite)?;
        crate::vec_ext::register(&conn)?;
        migrate_to(&mut conn, 3)?;
        conn.execute_batch(
            "INSERT INTO meta (key, value) VALUES ('embedding_model', 'm'), ('embedding_dim', '3');
             CREATE VIRTUAL TABLE items_vec USING vec0(embedding float[3], chunk_size=8);",
        )
        .map_err(map_sqlite)?;
        let vectors = [
            ("a", Some([1.0f32, 0.0, 0.0])),
            ("b", None),
            ("c", Some([0.25, -0.5, 3.0])),
        ];
        for (rowid, (id, v)) in vectors.iter().enumerate() {
            let rowid = rowid as i64 + 10;
            conn.execute(
                "INSERT INTO items (rowid, id, namespace, kind, content, status, tier, importance, \
                 confidence, created_at, updated_at, version, embedding_model) \
                 VALUES (?1, ?2, 'ns', 'fact', 'x', 'accepted', 'long', 0.5, 1.0, 1, 1, 1, ?3)",
                params![rowid, id, v.map(|_| "m")],
            )
            .map_err(map_sqlite)?;
            if let Some(v) = v {
                conn.execute(
                    "INSERT INTO items_vec (rowid, embedding) VALUES (?1, ?2)",
                    params![rowid, to_blob(v)],
                )
                .map_err(map_sqlite)?;
            }
        }
        migrate(&mut conn)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(map_sqlite)?;
        assert_eq!(version, SCHEMA_VERSION);
        for (id, v) in vectors {
            let blob: Option<Vec<u8>> = conn
                .query_row("SELECT embedding FROM items WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .map_err(map_sqlite)?;
            assert_eq!(
                blob.map(|b| from_blob(&b)),
                v.map(|v| v.to_vec()),
                "item {id}"
            );
        }
        let left: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name LIKE 'items_vec%'",
                [],
                |r| r.get(0),
            )
            .map_err(map_sqlite)?;
        assert_eq!(left, 0, "items_vec and its shadow tables are gone");
        // sqlite-vec's functions still read the column, for ad-hoc SQL over the file.
        let distance: f64 = conn
            .query_row(
                "SELECT vec_distance_cosine(embedding, vec_f32('[2, 0, 0]')) FROM items \
                 WHERE id = 'a'",
                [],
                |r| r.get(0),
            )
            .map_err(map_sqlite)?;
        assert!(distance.abs() < 1e-6, "distance {distance}");
        Ok(())
    }
}

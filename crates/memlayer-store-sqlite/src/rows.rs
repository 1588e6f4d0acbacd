//! Item rows: the SQL that reads and writes them, and the helpers the write path shares.

use std::collections::HashMap;
use std::sync::LazyLock;

use memlayer_store::limits::check_pin;
use memlayer_store::types::{MemoryItem, Timestamp};
use memlayer_store::{EmbeddingPin, Result};
use rusqlite::{Connection, OptionalExtension, params_from_iter};

use crate::error::map_sqlite;
use crate::index::Change;
use crate::schema;
use crate::sql;
use crate::sql::{ITEM_COLUMNS, Query, STORED_COLUMNS, read_item};

/// `SELECT` head for items with their vectors (`NULL` where an item has none).
pub(crate) fn select_items() -> String {
    format!("SELECT {ITEM_COLUMNS}, i.embedding FROM items i")
}

pub(crate) fn query_items(conn: &Connection, sql: &str, q: &Query) -> Result<Vec<MemoryItem>> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_sqlite)?;
    let mut rows = stmt
        .query(params_from_iter(q.params.iter()))
        .map_err(map_sqlite)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(map_sqlite)? {
        out.push(read_item(row)?);
    }
    Ok(out)
}

/// The row of `id` in `namespace`, live or soft-deleted.
pub(crate) fn get_row(
    conn: &Connection,
    namespace: &str,
    id: &str,
    with_vector: bool,
) -> Result<Option<MemoryItem>> {
    let vector = if with_vector { "i.embedding" } else { "NULL" };
    let sql = format!(
        "SELECT {ITEM_COLUMNS}, {vector} FROM items i WHERE i.namespace = ?1 AND i.id = ?2"
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(map_sqlite)?;
    let row = stmt
        .query_row([namespace, id], |r| Ok(read_item(r)))
        .optional()
        .map_err(map_sqlite)?;
    row.transpose()
}

/// `INSERT` of every stored column, in [`sql::item_values`]'s order.
pub(crate) static INSERT_ITEM: LazyLock<String> = LazyLock::new(|| {
    let cols = STORED_COLUMNS.replace("i.", "");
    let marks = (1..=STORED_COLUMNS.split(", ").count())
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("INSERT INTO items ({cols}) VALUES ({marks})")
});

/// `UPDATE` of the row named by its id (`?1`) and namespace (`?2`), every stored column in
/// [`sql::item_values`]'s order.
pub(crate) static UPDATE_ITEM: LazyLock<String> = LazyLock::new(|| {
    let sets = STORED_COLUMNS
        .split(", ")
        .enumerate()
        .skip(1)
        .map(|(i, c)| format!("{} = ?{}", c.trim().trim_start_matches("i."), i + 1))
        .collect::<Vec<_>>()
        .join(", ");
    format!("UPDATE items SET {sets} WHERE id = ?1 AND namespace = ?2")
});

/// Writes one merged row and its vector inside the caller's transaction, noting the change
/// for the in-process indexes.
pub(crate) fn write_row(
    conn: &Connection,
    item: &MemoryItem,
    existed: bool,
    pin: &mut Option<EmbeddingPin>,
    changes: &mut Vec<Change>,
) -> Result<()> {
    if let Some(e) = &item.embedding {
        match pin {
            Some(p) => check_pin(p, &e.model, e.dim())?,
            None => {
                let new_pin = EmbeddingPin {
                    model: e.model.clone(),
                    dim: e.dim(),
                };
                schema::create_pin(conn, &new_pin)?;
                *pin = Some(new_pin);
            }
        }
    }
    let values = sql::item_values(item)?;
    let sql = if existed {
        &*UPDATE_ITEM
    } else {
        &*INSERT_ITEM
    };
    conn.prepare_cached(sql)
        .map_err(map_sqlite)?
        .execute(params_from_iter(values.iter()))
        .map_err(map_sqlite)?;
    changes.push(Change::Put {
        namespace: item.namespace.clone(),
        id: item.id.clone(),
        content: item.content.clone(),
        vector: item.embedding.as_ref().map(|e| e.vector.clone()),
    });
    Ok(())
}

/// Deletes rows (and their vectors) selected by `where_sql`; returns how many, noting each
/// for the in-process indexes.
pub(crate) fn delete_rows(
    conn: &Connection,
    where_sql: &str,
    params: &[rusqlite::types::Value],
    changes: &mut Vec<Change>,
) -> Result<u64> {
    let mut stmt = conn
        .prepare(&format!(
            "DELETE FROM items WHERE rowid IN (SELECT i.rowid FROM items i {where_sql}) \
             RETURNING namespace, id"
        ))
        .map_err(map_sqlite)?;
    let mut rows = stmt
        .query(params_from_iter(params.iter()))
        .map_err(map_sqlite)?;
    let mut n = 0;
    while let Some(row) = rows.next().map_err(map_sqlite)? {
        n += 1;
        changes.push(Change::Removed {
            namespace: row.get(0).map_err(map_sqlite)?,
            id: row.get(1).map_err(map_sqlite)?,
        });
    }
    Ok(n)
}

/// Which rows of a namespace [`rows_by_id`] reads.
#[derive(Clone, Copy)]
pub(crate) enum ById<'a> {
    /// Search hits: rows of this namespace, with their vectors.
    Hits(&'a str),
    /// The rows a batch replaces: rows of this namespace, without vectors.
    Replaced(&'a str),
}

/// Rows by id, 512 ids per query. Hits are the second phase of a search, which ranks on ids
/// and scores alone and reads whole rows only for the hits it returns.
pub(crate) fn rows_by_id(
    conn: &Connection,
    which: ById<'_>,
    ids: &[String],
) -> Result<HashMap<String, MemoryItem>> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(512) {
        let (sql, q) = rows_by_id_query(which, chunk);
        for item in query_items(conn, &sql, &q)? {
            out.insert(item.id.clone(), item);
        }
    }
    Ok(out)
}

pub(crate) fn rows_by_id_query(which: ById<'_>, ids: &[String]) -> (String, Query) {
    let mut q = Query::default();
    let list = q.bind_list(ids);
    // Point reads on the (namespace, id) key: one per id, never a walk of the namespace.
    let sql = match which {
        ById::Hits(namespace) => {
            let ns = q.bind(namespace.to_owned());
            format!(
                "{} WHERE i.namespace = {ns} AND i.id IN ({list})",
                select_items()
            )
        }
        ById::Replaced(namespace) => {
            let ns = q.bind(namespace.to_owned());
            format!(
                "SELECT {ITEM_COLUMNS}, NULL FROM items i WHERE i.namespace = {ns} AND i.id IN ({list})"
            )
        }
    };
    (sql, q)
}

/// `n thing` or `n things`.
pub(crate) fn plural(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

pub(crate) fn bump_updated(old: Timestamp) -> Timestamp {
    Timestamp::now().max(Timestamp::from_millis(old.as_millis().saturating_add(1)))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use memlayer_store::backend::sql::SqlDialect;
    use memlayer_store::types::Timestamp;
    use memlayer_store::{Filter, Result};
    use rusqlite::{Connection, params_from_iter};

    use super::{ById, rows_by_id_query};
    use crate::db::{self, Synchronous};
    use crate::error::map_sqlite;
    use crate::sql::Query;
    use crate::{schema, vec_ext};

    /// SQLite's query plan for `sql`, its steps joined by "; ".
    fn plan_of(conn: &Connection, sql: &str, q: &Query) -> Result<String> {
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .map_err(map_sqlite)?;
        let plan: Vec<String> = stmt
            .query_map(params_from_iter(q.params.iter()), |r| r.get(3))
            .map_err(map_sqlite)?
            .collect::<rusqlite::Result<_>>()
            .map_err(map_sqlite)?;
        Ok(plan.join("; "))
    }

    /// Hit rows are read through the (namespace, id) key, never by walking the namespace.
    #[test]
    fn hit_rows_are_read_by_id() -> Result<()> {
        let mut conn = Connection::open_in_memory().map_err(map_sqlite)?;
        vec_ext::register(&conn)?;
        schema::migrate(&mut conn)?;
        let ids: Vec<String> = (0..10).map(|i| format!("i{i}")).collect();
        let (sql, q) = rows_by_id_query(ById::Hits("ns"), &ids);
        let plan = plan_of(&conn, &sql, &q)?;
        assert!(
            plan.contains("sqlite_autoindex_items_1 (namespace=? AND id=?)"),
            "plan: {plan}"
        );
        assert!(!plan.contains("items_ns_created"), "plan: {plan}");
        Ok(())
    }

    /// A filter on a user or a session is served by that owner's partial index, which since
    /// migration 5 leaves out the rows without that owner.
    #[test]
    fn owner_filters_use_their_partial_indexes() -> Result<()> {
        let mut conn = Connection::open_in_memory().map_err(map_sqlite)?;
        // As the store sets its connections up: one plan whatever the parameters.
        db::prepare(&conn, Duration::from_secs(1), Synchronous::Full)?;
        schema::migrate_to(&mut conn, 4)?;
        schema::migrate(&mut conn)?;
        for (filter, index) in [
            (Filter::new().user("u"), "items_live_user"),
            (Filter::new().session("s"), "items_live_session"),
        ] {
            let mut q = Query::default();
            q.filter("ns", &filter, Timestamp::now());
            let sql = format!(
                "SELECT i.id FROM items i {} ORDER BY i.created_at",
                q.where_sql()
            );
            let plan = plan_of(&conn, &sql, &q)?;
            assert!(plan.contains(index), "{index}: plan {plan}");
            let definition: String = conn
                .query_row(
                    "SELECT sql FROM sqlite_schema WHERE name = ?1",
                    [index],
                    |r| r.get(0),
                )
                .map_err(map_sqlite)?;
            assert!(definition.contains("IS NOT NULL"), "{definition}");
        }
        Ok(())
    }
}

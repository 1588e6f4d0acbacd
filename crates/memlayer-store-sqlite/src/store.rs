//! The [`MemoryStore`] implementation.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use memlayer_store::backend::lifecycle::{
    decayed, merge_upsert, reassign_conflict, reinforce_item,
};
use memlayer_store::backend::search::{run_list, run_search};
use memlayer_store::backend::sql::SqlDialect;
use memlayer_store::limits::{self, check_namespace};
use memlayer_store::types::{MemoryItem, Timestamp};
use memlayer_store::{
    Capabilities, ClearRequest, CountOptions, EmbeddingPin, Error, ErrorKind, ExpiredItem,
    ListRequest, MemoryStore, Page, Result, SearchRequest, SearchResults,
};
use rusqlite::{params, params_from_iter};

use crate::client::{BACKEND, SqliteStore, tag};
use crate::error::map_sqlite;
use crate::index::Change;
use crate::rows::{
    ById, bump_updated, delete_rows, get_row, plural, query_items, rows_by_id, select_items,
    write_row,
};
use crate::schema;
use crate::sql::Query;

#[async_trait]
impl MemoryStore for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::full();
        caps.approximate_vectors = self.index.approximate();
        caps
    }

    async fn upsert_many(&self, items: Vec<MemoryItem>) -> Result<Vec<MemoryItem>> {
        limits::check_batch(&items).map_err(|e| tag(e, "upsert_many"))?;
        self.write_indexed_tx("upsert_many", move |conn, changes| {
            let now = Timestamp::now();
            let mut pin = schema::load_pin(conn)?;
            // The rows the batch replaces, keyed by (namespace, id), read in one query per
            // namespace and 512 ids rather than one per item; an id written earlier in the
            // batch merges with that write instead.
            let mut wanted: HashMap<&str, Vec<String>> = HashMap::new();
            for item in &items {
                wanted
                    .entry(&item.namespace)
                    .or_default()
                    .push(item.id.clone());
            }
            let mut stored: HashMap<(String, String), MemoryItem> = HashMap::new();
            for (ns, ids) in wanted {
                for (id, row) in rows_by_id(conn, ById::Replaced(ns), &ids)? {
                    stored.insert((ns.to_owned(), id), row);
                }
            }
            let mut written: HashMap<(String, String), usize> = HashMap::new();
            let mut out: Vec<MemoryItem> = Vec::with_capacity(items.len());
            for item in items {
                let key = (item.namespace.clone(), item.id.clone());
                let merged = match written.get(&key) {
                    Some(&at) => merge_upsert(Some(&out[at]), item, now)?,
                    None => merge_upsert(stored.get(&key), item, now)?,
                };
                let existed = written.contains_key(&key) || stored.remove(&key).is_some();
                write_row(conn, &merged, existed, &mut pin, changes)?;
                written.insert(key, out.len());
                out.push(merged);
            }
            Ok(out)
        })
        .await
    }

    async fn get(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        let (ns, id) = (namespace.to_owned(), id.to_owned());
        self.read("get", move |conn| match get_row(conn, &ns, &id, true)? {
            Some(item) if !item.deleted => Ok(item),
            _ => Err(Error::not_found(&ns, &id)),
        })
        .await
    }

    async fn delete(&self, namespace: &str, id: &str) -> Result<()> {
        let (ns, id) = (namespace.to_owned(), id.to_owned());
        self.write_indexed_tx("delete", move |conn, changes| {
            let mut q = Query::default();
            let a = q.bind(id.clone());
            let b = q.bind(ns.clone());
            let n = delete_rows(
                conn,
                &format!("WHERE i.id = {a} AND i.namespace = {b}"),
                &q.params,
                changes,
            )?;
            if n == 0 {
                return Err(Error::not_found(&ns, &id));
            }
            Ok(())
        })
        .await
    }

    async fn clear(&self, namespace: &str, request: &ClearRequest) -> Result<u64> {
        limits::check_clear(namespace, request).map_err(|e| tag(e, "clear"))?;
        let ns = namespace.to_owned();
        let mut filter = request.filter.clone();
        filter.include_deleted = false;
        self.write_tx("clear", move |conn| {
            let mut q = Query::default();
            q.filter(&ns, &filter, filter.effective_now());
            let now = q.bind(Timestamp::now().as_millis());
            let sql = format!(
                "UPDATE items SET deleted = 1, updated_at = MAX({now}, updated_at + 1) \
                 WHERE rowid IN (SELECT i.rowid FROM items i {})",
                q.where_sql()
            );
            let n = conn
                .execute(&sql, params_from_iter(q.params.iter()))
                .map_err(map_sqlite)?;
            Ok(n as u64)
        })
        .await
    }

    async fn count(&self, namespace: &str, options: CountOptions) -> Result<u64> {
        let ns = namespace.to_owned();
        self.read("count", move |conn| {
            let sql = if options.include_deleted {
                "SELECT COUNT(*) FROM items WHERE namespace = ?1"
            } else {
                "SELECT COUNT(*) FROM items WHERE namespace = ?1 AND deleted = 0"
            };
            let n: i64 = conn
                .prepare_cached(sql)
                .map_err(map_sqlite)?
                .query_row([ns], |r| r.get(0))
                .map_err(map_sqlite)?;
            Ok(n as u64)
        })
        .await
    }

    async fn search(&self, namespace: &str, request: &SearchRequest) -> Result<SearchResults> {
        self.check_open().map_err(|e| tag(e, "search"))?;
        run_search(self, namespace, request)
            .await
            .map_err(|e| tag(e, "search"))
    }

    async fn list(&self, namespace: &str, request: &ListRequest) -> Result<Page> {
        run_list(self, namespace, request)
            .await
            .map_err(|e| tag(e, "list"))
    }

    async fn supersede(&self, namespace: &str, id: &str, by: &str) -> Result<MemoryItem> {
        limits::check_supersede(id, by).map_err(|e| tag(e, "supersede"))?;
        let (ns, id, by) = (namespace.to_owned(), id.to_owned(), by.to_owned());
        self.write_tx("supersede", move |conn| {
            let live = |id: &str| -> Result<MemoryItem> {
                match get_row(conn, &ns, id, true)? {
                    Some(item) if !item.deleted => Ok(item),
                    _ => Err(Error::not_found(&ns, id)),
                }
            };
            live(&by)?;
            let mut item = live(&id)?;
            let now = Timestamp::now();
            item.superseded_by = Some(by.clone());
            item.valid_to = Some(now);
            item.updated_at = bump_updated(item.updated_at);
            conn.execute(
                "UPDATE items SET superseded_by = ?1, valid_to = ?2, updated_at = ?3 \
                 WHERE namespace = ?4 AND id = ?5",
                params![by, now.as_millis(), item.updated_at.as_millis(), ns, id],
            )
            .map_err(map_sqlite)?;
            Ok(item)
        })
        .await
    }

    async fn restore(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        let (ns, id) = (namespace.to_owned(), id.to_owned());
        self.write_tx("restore", move |conn| {
            let mut item = match get_row(conn, &ns, &id, true)? {
                Some(item) if !item.deleted => item,
                _ => return Err(Error::not_found(&ns, &id)),
            };
            item.superseded_by = None;
            item.valid_to = None;
            item.updated_at = bump_updated(item.updated_at);
            conn.execute(
                "UPDATE items SET superseded_by = NULL, valid_to = NULL, updated_at = ?1 \
                 WHERE namespace = ?2 AND id = ?3",
                params![item.updated_at.as_millis(), ns, id],
            )
            .map_err(map_sqlite)?;
            Ok(item)
        })
        .await
    }

    async fn predecessors(&self, namespace: &str, id: &str) -> Result<Vec<MemoryItem>> {
        let (ns, id) = (namespace.to_owned(), id.to_owned());
        self.read("predecessors", move |conn| {
            let mut q = Query::default();
            let a = q.bind(ns);
            let b = q.bind(id);
            let sql = format!(
                "{} WHERE i.namespace = {a} AND i.superseded_by = {b} AND i.deleted = 0 \
                 ORDER BY i.created_at, i.id",
                select_items()
            );
            query_items(conn, &sql, &q)
        })
        .await
    }

    async fn reinforce(&self, namespace: &str, ids: &[String], at: Timestamp) -> Result<u64> {
        limits::check_ids("ids", ids).map_err(|e| tag(e, "reinforce"))?;
        let ns = namespace.to_owned();
        let unique: HashSet<String> = ids.iter().cloned().collect();
        self.write_tx("reinforce", move |conn| {
            let mut n = 0;
            for id in unique {
                let Some(mut item) = get_row(conn, &ns, &id, false)? else {
                    continue;
                };
                if item.deleted {
                    continue;
                }
                reinforce_item(&mut item, at);
                conn.prepare_cached(
                    "UPDATE items SET access_count = ?1, last_accessed_at = ?2, expires_at = ?3 \
                     WHERE namespace = ?4 AND id = ?5",
                )
                .map_err(map_sqlite)?
                .execute(params![
                    i64::try_from(item.access_count).unwrap_or(i64::MAX),
                    at.as_millis(),
                    item.expires_at.map(|t| t.as_millis()),
                    ns,
                    id
                ])
                .map_err(map_sqlite)?;
                n += 1;
            }
            Ok(n)
        })
        .await
    }

    async fn decay(
        &self,
        namespace: &str,
        idle_before: Timestamp,
        factor: f32,
        floor: f32,
    ) -> Result<u64> {
        limits::check_decay(factor, floor).map_err(|e| tag(e, "decay"))?;
        let ns = namespace.to_owned();
        // Computed in Rust (the memory backend's f32 arithmetic) inside the one write
        // transaction, so no write can slip between the read and the update.
        self.write_tx("decay", move |conn| {
            let rows: Vec<(String, f32, f32)> = conn
                .prepare_cached(
                    "SELECT id, importance, confidence FROM items \
                     WHERE namespace = ?1 AND deleted = 0 \
                     AND coalesce(last_accessed_at, created_at) < ?2 \
                     AND (importance > ?3 OR confidence > ?3)",
                )
                .map_err(map_sqlite)?
                .query_map(
                    params![ns, idle_before.as_millis(), f64::from(floor)],
                    |r| {
                        Ok((
                            r.get(0)?,
                            r.get::<_, f64>(1)? as f32,
                            r.get::<_, f64>(2)? as f32,
                        ))
                    },
                )
                .map_err(map_sqlite)?
                .collect::<std::result::Result<_, _>>()
                .map_err(map_sqlite)?;
            let mut n = 0;
            for (id, importance, confidence) in rows {
                let i = decayed(importance, factor, floor);
                let c = decayed(confidence, factor, floor);
                if i == importance && c == confidence {
                    continue;
                }
                conn.prepare_cached(
                    "UPDATE items SET importance = ?1, confidence = ?2 \
                     WHERE namespace = ?3 AND id = ?4",
                )
                .map_err(map_sqlite)?
                .execute(params![f64::from(i), f64::from(c), ns, id])
                .map_err(map_sqlite)?;
                n += 1;
            }
            Ok(n)
        })
        .await
    }

    async fn list_expired(&self, now: Timestamp, limit: usize) -> Result<Vec<ExpiredItem>> {
        self.read("list_expired", move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT namespace, id, expires_at FROM items \
                     WHERE expires_at IS NOT NULL AND expires_at <= ?1 \
                     ORDER BY expires_at, id LIMIT ?2",
                )
                .map_err(map_sqlite)?;
            let rows = stmt
                .query_map(params![now.as_millis(), limit as i64], |r| {
                    Ok(ExpiredItem {
                        namespace: r.get(0)?,
                        id: r.get(1)?,
                        expires_at: Timestamp::from_millis(r.get(2)?),
                    })
                })
                .map_err(map_sqlite)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(map_sqlite)
        })
        .await
    }

    async fn delete_if_expired_before(
        &self,
        namespace: &str,
        id: &str,
        cutoff: Timestamp,
    ) -> Result<()> {
        let (ns, id) = (namespace.to_owned(), id.to_owned());
        self.write_indexed_tx("delete_if_expired_before", move |conn, changes| {
            let mut q = Query::default();
            let a = q.bind(id.clone());
            let b = q.bind(ns.clone());
            let c = q.bind(cutoff.as_millis());
            let n = delete_rows(
                conn,
                &format!(
                    "WHERE i.id = {a} AND i.namespace = {b} AND i.expires_at IS NOT NULL AND i.expires_at <= {c}"
                ),
                &q.params,
                changes,
            )?;
            if n == 0 {
                return Err(Error::not_found(&ns, &id).with_context("cutoff", cutoff));
            }
            Ok(())
        })
        .await
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        self.read("list_namespaces", move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT DISTINCT namespace FROM items ORDER BY namespace")
                .map_err(map_sqlite)?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(map_sqlite)?;
            rows.collect::<rusqlite::Result<Vec<String>>>()
                .map_err(map_sqlite)
        })
        .await
    }

    async fn delete_namespace(&self, namespace: &str) -> Result<u64> {
        let ns = namespace.to_owned();
        let n = self
            .write_indexed_tx("delete_namespace", move |conn, changes| {
                let mut q = Query::default();
                let a = q.bind(ns.clone());
                let mut removed = Vec::new();
                let n = delete_rows(
                    conn,
                    &format!("WHERE i.namespace = {a}"),
                    &q.params,
                    &mut removed,
                )?;
                if n > 0 {
                    changes.push(Change::Reload { namespace: ns });
                }
                Ok(n)
            })
            .await?;
        if n > 0 {
            self.index.forget_saved_graph(namespace);
        }
        Ok(n)
    }

    async fn reassign(&self, ids: &[String], from: &str, to: &str) -> Result<u64> {
        check_namespace(to).map_err(|e| tag(e, "reassign"))?;
        limits::check_ids("ids", ids).map_err(|e| tag(e, "reassign"))?;
        let unique: BTreeSet<String> = ids.iter().cloned().collect();
        let (from, to) = (from.to_owned(), to.to_owned());
        self.write_indexed_tx("reassign", move |conn, changes| {
            let present: Vec<String> = unique
                .into_iter()
                .map(|id| Ok((get_row(conn, &from, &id, false)?.is_some(), id)))
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .filter_map(|(present, id)| present.then_some(id))
                .collect();
            if from == to {
                return Ok(present.len() as u64);
            }
            // All or nothing: an id the target already holds stops the move before any row
            // moves (the transaction would roll back anyway; this names the id).
            for id in &present {
                if get_row(conn, &to, id, false)?.is_some() {
                    return Err(reassign_conflict(id, &to));
                }
            }
            let mut n = 0;
            let mut stmt = conn
                .prepare_cached("UPDATE items SET namespace = ?1 WHERE namespace = ?2 AND id = ?3")
                .map_err(map_sqlite)?;
            for id in present {
                n += stmt.execute(params![to, from, id]).map_err(map_sqlite)? as u64;
            }
            if n > 0 {
                changes.push(Change::Reload { namespace: from });
                changes.push(Change::Reload { namespace: to });
            }
            Ok(n)
        })
        .await
    }

    async fn embedding_pin(&self) -> Result<Option<EmbeddingPin>> {
        self.read("embedding_pin", schema::load_pin).await
    }

    /// Drops the namespaces' in-process indexes (an HNSW graph keeps removed vectors) and
    /// their saved graphs, then checkpoints the write-ahead log and truncates it. Deleted rows
    /// leave no copy in the file itself: every connection runs with `secure_delete`, which
    /// zeroes freed content as it is freed.
    async fn scrub(&self, namespaces: &[String]) -> Result<Vec<String>> {
        let reload = namespaces.to_vec();
        self.write_indexed_tx("scrub", move |_, changes| {
            changes.extend(
                reload
                    .into_iter()
                    .map(|namespace| Change::Reload { namespace }),
            );
            Ok(())
        })
        .await?;
        for ns in namespaces {
            self.index.forget_saved_graph(ns);
        }
        let mut done = vec![format!(
            "sqlite: in-process indexes and saved graphs of {} dropped",
            plural(namespaces.len(), "namespace")
        )];
        let (busy, log, copied): (i64, i64, i64) = self
            .db
            .write(|conn| {
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .map_err(map_sqlite)
            })
            .await
            .map_err(|e| tag(e, "scrub"))?;
        done.push(if busy == 0 {
            "sqlite: write-ahead log checkpointed and truncated".to_owned()
        } else {
            format!(
                "sqlite: write-ahead log checkpointed ({copied} of {log} frames); readers held the \
                 rest, run the command again once they finish"
            )
        });
        done.push("sqlite: freed pages are zeroed as rows are deleted (secure_delete)".to_owned());
        Ok(done)
    }

    async fn ping(&self) -> Result<()> {
        self.read("ping", |conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(map_sqlite)
        })
        .await
    }

    async fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        // Graphs changed since their last save are saved first; the file closes either way.
        let index = self.index.clone();
        let saved = tokio::task::spawn_blocking(move || index.save_graphs())
            .await
            .map_err(|e| Error::new(ErrorKind::Unexpected, "saving graphs panicked").with_source(e))
            .and_then(|r| r);
        self.db.close().await.map_err(|e| tag(e, "close"))?;
        saved.map_err(|e| tag(e, "close"))
    }
}

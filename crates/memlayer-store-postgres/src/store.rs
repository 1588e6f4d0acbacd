//! The [`MemoryStore`] implementation.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use memlayer_store::backend::lifecycle::{reassign_conflict, reinforce_item};
use memlayer_store::backend::search::{run_list, run_search};
use memlayer_store::backend::sql::SqlDialect;
use memlayer_store::limits::{self, check_namespace};
use memlayer_store::types::{MemoryItem, Timestamp};
use memlayer_store::{
    Capabilities, ClearRequest, CountOptions, EmbeddingPin, Error, ExpiredItem, ListRequest,
    MemoryStore, Page, Result, SearchRequest, SearchResults,
};

use crate::client::{BACKEND, PostgresStore, tag};
use crate::config::KeywordRanking;
use crate::error;
use crate::error::map_pg;
use crate::schema;
use crate::sql::{ITEM_COLUMNS, Query, column, read_item};

#[async_trait]
impl MemoryStore for PostgresStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::full();
        caps.approximate_vectors = true;
        caps.native_keyword_ranking = self.config.keyword_ranking == KeywordRanking::TsRankCd;
        caps
    }

    async fn upsert_many(&self, items: Vec<MemoryItem>) -> Result<Vec<MemoryItem>> {
        limits::check_batch(&items).map_err(|e| tag(e, "upsert_many"))?;
        let mut client = self.client("upsert_many").await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| tag(map_pg(e), "upsert_many"))?;
        let out = self
            .upsert_in(&tx, items)
            .await
            .map_err(|e| tag(e, "upsert_many"))?;
        tx.commit()
            .await
            .map_err(|e| tag(map_pg(e), "upsert_many"))?;
        Ok(out)
    }

    async fn get(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        let client = self.client("get").await?;
        self.live_item(&**client, namespace, id, false)
            .await
            .map_err(|e| tag(e, "get"))?
            .ok_or_else(|| tag(Error::not_found(namespace, id), "get"))
    }

    async fn delete(&self, namespace: &str, id: &str) -> Result<()> {
        let client = self.client("delete").await?;
        let n = client
            .execute(
                &format!(
                    "DELETE FROM {}.items WHERE id = $1 AND namespace = $2",
                    self.s()
                ),
                &[&id, &namespace],
            )
            .await
            .map_err(|e| tag(map_pg(e), "delete"))?;
        if n == 0 {
            return Err(tag(Error::not_found(namespace, id), "delete"));
        }
        Ok(())
    }

    async fn clear(&self, namespace: &str, request: &ClearRequest) -> Result<u64> {
        limits::check_clear(namespace, request).map_err(|e| tag(e, "clear"))?;
        let mut filter = request.filter.clone();
        filter.include_deleted = false;
        let mut q = Query::default();
        q.filter(namespace, &filter, filter.effective_now());
        let now = q.bind(Timestamp::now().as_millis());
        let sql = format!(
            "UPDATE {s}.items SET deleted = true, updated_at = GREATEST({now}, updated_at + 1)
             WHERE (namespace, id) IN (SELECT i.namespace, i.id FROM {s}.items i {})",
            q.where_sql(),
            s = self.s()
        );
        let client = self.client("clear").await?;
        let n = client
            .execute(&sql, &q.refs())
            .await
            .map_err(|e| tag(map_pg(e), "clear"))?;
        Ok(n)
    }

    async fn count(&self, namespace: &str, options: CountOptions) -> Result<u64> {
        let client = self.client("count").await?;
        let deleted = if options.include_deleted {
            ""
        } else {
            "AND NOT deleted"
        };
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {}.items WHERE namespace = $1 {deleted}",
                    self.s()
                ),
                &[&namespace],
            )
            .await
            .map_err(|e| tag(map_pg(e), "count"))?;
        Ok(u64::try_from(column::<i64>(&row, 0)?).unwrap_or(0))
    }

    async fn search(&self, namespace: &str, request: &SearchRequest) -> Result<SearchResults> {
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
        let mut client = self.client("supersede").await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| tag(map_pg(e), "supersede"))?;
        // `by` is locked until the commit, so a concurrent delete cannot leave the item
        // superseded by a row that no longer exists (as SQLite's and Redis's writes ensure).
        if self
            .live_item(&*tx, namespace, by, true)
            .await
            .map_err(|e| tag(e, "supersede"))?
            .is_none()
        {
            return Err(tag(Error::not_found(namespace, by), "supersede"));
        }
        let now = Timestamp::now().as_millis();
        let row = tx
            .query_opt(
                &format!(
                    "UPDATE {}.items i SET superseded_by = $1, valid_to = $2, updated_at = GREATEST($2, i.updated_at + 1)
                     WHERE i.id = $3 AND i.namespace = $4 AND NOT i.deleted RETURNING {ITEM_COLUMNS}",
                    self.s()
                ),
                &[&by, &now, &id, &namespace],
            )
            .await
            .map_err(|e| tag(map_pg(e), "supersede"))?;
        let item = match row {
            Some(r) => read_item(&r).map_err(|e| tag(e, "supersede"))?,
            None => return Err(tag(Error::not_found(namespace, id), "supersede")),
        };
        tx.commit().await.map_err(|e| tag(map_pg(e), "supersede"))?;
        Ok(item)
    }

    async fn restore(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        let client = self.client("restore").await?;
        let now = Timestamp::now().as_millis();
        let row = client
            .query_opt(
                &format!(
                    "UPDATE {}.items i SET superseded_by = NULL, valid_to = NULL, updated_at = GREATEST($1, i.updated_at + 1)
                     WHERE i.id = $2 AND i.namespace = $3 AND NOT i.deleted RETURNING {ITEM_COLUMNS}",
                    self.s()
                ),
                &[&now, &id, &namespace],
            )
            .await
            .map_err(|e| tag(map_pg(e), "restore"))?;
        match row {
            Some(r) => read_item(&r).map_err(|e| tag(e, "restore")),
            None => Err(tag(Error::not_found(namespace, id), "restore")),
        }
    }

    async fn predecessors(&self, namespace: &str, id: &str) -> Result<Vec<MemoryItem>> {
        let mut q = Query::default();
        let a = q.bind(namespace.to_owned());
        let b = q.bind(id.to_owned());
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM {}.items i WHERE i.namespace = {a} AND i.superseded_by = {b} AND NOT i.deleted
             ORDER BY i.created_at, i.id COLLATE \"C\"",
            self.s()
        );
        self.query_items("predecessors", &sql, &q).await
    }

    async fn reinforce(&self, namespace: &str, ids: &[String], at: Timestamp) -> Result<u64> {
        limits::check_ids("ids", ids).map_err(|e| tag(e, "reinforce"))?;
        let unique: HashSet<&String> = ids.iter().collect();
        let mut unique: Vec<&String> = unique.into_iter().collect();
        // A fixed lock order keeps concurrent reinforcements from deadlocking.
        unique.sort();
        let mut client = self.client("reinforce").await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| tag(map_pg(e), "reinforce"))?;
        let mut n = 0;
        for id in unique {
            let Some(mut item) = self
                .live_item(&*tx, namespace, id, true)
                .await
                .map_err(|e| tag(e, "reinforce"))?
            else {
                continue;
            };
            reinforce_item(&mut item, at);
            tx.execute(
                &format!(
                    "UPDATE {}.items SET access_count = $1, last_accessed_at = $2, expires_at = $3
                     WHERE namespace = $4 AND id = $5",
                    self.s()
                ),
                &[
                    &i64::try_from(item.access_count).unwrap_or(i64::MAX),
                    &at.as_millis(),
                    &item.expires_at.map(Timestamp::as_millis),
                    &namespace,
                    &item.id,
                ],
            )
            .await
            .map_err(|e| tag(map_pg(e), "reinforce"))?;
            n += 1;
        }
        tx.commit().await.map_err(|e| tag(map_pg(e), "reinforce"))?;
        Ok(n)
    }

    async fn decay(
        &self,
        namespace: &str,
        idle_before: Timestamp,
        factor: f32,
        floor: f32,
    ) -> Result<u64> {
        limits::check_decay(factor, floor).map_err(|e| tag(e, "decay"))?;
        let client = self.client("decay").await?;
        // One statement: each row is updated from its current scores (float4 arithmetic, as
        // in Rust), so a concurrent write is never lost.
        let n = client
            .execute(
                &format!(
                    "UPDATE {}.items SET \
                     importance = CASE WHEN importance > $3 THEN GREATEST($3, importance * $2) ELSE importance END, \
                     confidence = CASE WHEN confidence > $3 THEN GREATEST($3, confidence * $2) ELSE confidence END \
                     WHERE namespace = $1 AND NOT deleted \
                     AND COALESCE(last_accessed_at, created_at) < $4 \
                     AND (importance > $3 OR confidence > $3)",
                    self.s()
                ),
                &[&namespace, &factor, &floor, &idle_before.as_millis()],
            )
            .await
            .map_err(|e| tag(map_pg(e), "decay"))?;
        Ok(n)
    }

    async fn list_expired(&self, now: Timestamp, limit: usize) -> Result<Vec<ExpiredItem>> {
        let client = self.client("list_expired").await?;
        let rows = client
            .query(
                &format!(
                    "SELECT namespace, id, expires_at FROM {}.items
                     WHERE expires_at IS NOT NULL AND expires_at <= $1 ORDER BY expires_at, id COLLATE \"C\" LIMIT $2",
                    self.s()
                ),
                &[&now.as_millis(), &(limit as i64)],
            )
            .await
            .map_err(|e| tag(map_pg(e), "list_expired"))?;
        rows.iter()
            .map(|r| {
                Ok(ExpiredItem {
                    namespace: column(r, 0)?,
                    id: column(r, 1)?,
                    expires_at: Timestamp::from_millis(column(r, 2)?),
                })
            })
            .collect()
    }

    async fn delete_if_expired_before(
        &self,
        namespace: &str,
        id: &str,
        cutoff: Timestamp,
    ) -> Result<()> {
        let client = self.client("delete_if_expired_before").await?;
        let n = client
            .execute(
                &format!(
                    "DELETE FROM {}.items WHERE id = $1 AND namespace = $2 AND expires_at IS NOT NULL AND expires_at <= $3",
                    self.s()
                ),
                &[&id, &namespace, &cutoff.as_millis()],
            )
            .await
            .map_err(|e| tag(map_pg(e), "delete_if_expired_before"))?;
        if n == 0 {
            return Err(tag(
                Error::not_found(namespace, id).with_context("cutoff", cutoff),
                "delete_if_expired_before",
            ));
        }
        Ok(())
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        let client = self.client("list_namespaces").await?;
        let rows = client
            .query(
                &format!(
                    "SELECT DISTINCT namespace FROM {}.items ORDER BY 1",
                    self.s()
                ),
                &[],
            )
            .await
            .map_err(|e| tag(map_pg(e), "list_namespaces"))?;
        let mut out = rows
            .iter()
            .map(|r| column(r, 0))
            .collect::<Result<Vec<String>>>()?;
        // Byte order, as every backend lists them.
        out.sort();
        Ok(out)
    }

    async fn delete_namespace(&self, namespace: &str) -> Result<u64> {
        let client = self.client("delete_namespace").await?;
        client
            .execute(
                &format!("DELETE FROM {}.items WHERE namespace = $1", self.s()),
                &[&namespace],
            )
            .await
            .map_err(|e| tag(map_pg(e), "delete_namespace"))
    }

    async fn reassign(&self, ids: &[String], from: &str, to: &str) -> Result<u64> {
        check_namespace(to).map_err(|e| tag(e, "reassign"))?;
        limits::check_ids("ids", ids).map_err(|e| tag(e, "reassign"))?;
        let ids: Vec<String> = ids
            .iter()
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut client = self.client("reassign").await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| tag(map_pg(e), "reassign"))?;
        if from != to {
            // All or nothing: an id the target already holds stops the move and is named (a
            // row written there concurrently still fails the statement on the primary key).
            let taken = tx
                .query_opt(
                    &format!(
                        "SELECT t.id FROM {s}.items t JOIN {s}.items f ON f.id = t.id
                         WHERE t.namespace = $1 AND f.namespace = $2 AND t.id = ANY($3::text[])
                         ORDER BY t.id COLLATE \"C\" LIMIT 1",
                        s = self.s()
                    ),
                    &[&to, &from, &ids],
                )
                .await
                .map_err(|e| tag(map_pg(e), "reassign"))?;
            if let Some(row) = taken {
                let id: String = row
                    .try_get(0)
                    .map_err(|e| tag(error::corrupt("id", e), "reassign"))?;
                return Err(tag(reassign_conflict(&id, to), "reassign"));
            }
        }
        // The postings follow their items through the foreign key's ON UPDATE CASCADE.
        let n = tx
            .execute(
                &format!(
                    "UPDATE {}.items SET namespace = $1 WHERE namespace = $2 AND id = ANY($3::text[])",
                    self.s()
                ),
                &[&to, &from, &ids],
            )
            .await
            .map_err(|e| tag(map_pg(e), "reassign"))?;
        tx.commit().await.map_err(|e| tag(map_pg(e), "reassign"))?;
        Ok(n)
    }

    async fn embedding_pin(&self) -> Result<Option<EmbeddingPin>> {
        let client = self.client("embedding_pin").await?;
        schema::load_pin(&**client, self.s())
            .await
            .map_err(|e| tag(e, "embedding_pin"))
    }

    async fn ping(&self) -> Result<()> {
        let client = self.client("ping").await?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| tag(map_pg(e), "ping"))?;
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        self.pool.close();
        Ok(())
    }
}

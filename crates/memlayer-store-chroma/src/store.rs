//! The [`MemoryStore`] implementation.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use chromadb::collection::GetOptions;
use memlayer_store::backend::lifecycle::{
    decay_item, is_idle, merge_upsert, reassign_conflict, reinforce_item, touch,
};
use memlayer_store::backend::search::{run_list, run_search};
use memlayer_store::limits::{self, check_item, check_namespace, check_pin};
use memlayer_store::types::{MemoryItem, Timestamp};
use memlayer_store::{
    Capabilities, ClearRequest, CountOptions, EmbeddingPin, Error, ErrorKind, ExpiredItem,
    ListRequest, MemoryStore, Page, Result, SearchRequest, SearchResults,
};
use serde_json::{Map, Value as Json, json};

use crate::client::{BACKEND, ChromaStore, tag, unavailable};
use crate::layout::in_namespace;
use crate::records::{Change, rid};

#[async_trait]
impl MemoryStore for ChromaStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::full();
        caps.approximate_vectors = true;
        caps.max_batch = self.inner.max_batch;
        caps
    }

    async fn upsert_many(&self, items: Vec<MemoryItem>) -> Result<Vec<MemoryItem>> {
        let op = "upsert_many";
        limits::check_batch(&items).map_err(|e| tag(e, op))?;
        if items.len() > self.inner.max_batch {
            return Err(tag(
                Error::invalid(
                    "items",
                    format!(
                        "holds {} items; this Chroma server accepts at most {} per batch",
                        items.len(),
                        self.inner.max_batch
                    ),
                ),
                op,
            ));
        }
        for item in &items {
            check_item(item).map_err(|e| tag(e, op))?;
        }
        let _guard = self.inner.write.lock().await;
        let keys: Vec<String> = items.iter().map(|i| rid(&i.namespace, &i.id)).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let old = self.old_items(&refs).await.map_err(|e| tag(e, op))?;
        let mut pin = self.load_pin().await.map_err(|e| tag(e, op))?;
        let mut new_pin = None;
        let now = Timestamp::now();
        let mut overlay: HashMap<String, MemoryItem> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(e) = &item.embedding {
                match &pin {
                    Some(p) => check_pin(p, &e.model, e.dim()).map_err(|e| tag(e, op))?,
                    None => {
                        let p = EmbeddingPin {
                            model: e.model.clone(),
                            dim: e.dim(),
                        };
                        new_pin = Some(p.clone());
                        pin = Some(p);
                    }
                }
            }
            let key = rid(&item.namespace, &item.id);
            let existing = overlay.get(&key).or_else(|| old.get(&key).map(|(i, _)| i));
            let merged = merge_upsert(existing, item, now).map_err(|e| tag(e, op))?;
            if !overlay.contains_key(&key) {
                order.push(key.clone());
            }
            overlay.insert(key, merged.clone());
            out.push(merged);
        }
        if let Some(want) = new_pin {
            let got = self.pin(&want).await.map_err(|e| tag(e, op))?;
            // Another writer may have pinned first: every vector must match the winner.
            for item in overlay.values() {
                if let Some(e) = &item.embedding {
                    check_pin(&got, &e.model, e.dim()).map_err(|e| tag(e, op))?;
                }
            }
        }
        let mut old = old;
        let changes = order
            .into_iter()
            .filter_map(|id| {
                let new = overlay.remove(&id)?;
                Some(Change {
                    old: old.remove(&id),
                    new: Some(new),
                })
            })
            .collect();
        self.apply(changes).await.map_err(|e| tag(e, op))?;
        Ok(out)
    }

    async fn get(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        let key = rid(namespace, id);
        let rows = self.rows_by_id(&[&key]).await.map_err(|e| tag(e, "get"))?;
        let item = match rows.get(&key) {
            Some(row) => row.item().map_err(|e| tag(e, "get"))?,
            None => return Err(tag(Error::not_found(namespace, id), "get")),
        };
        if item.namespace != namespace || item.deleted {
            return Err(tag(Error::not_found(namespace, id), "get"));
        }
        Ok(item)
    }

    async fn delete(&self, namespace: &str, id: &str) -> Result<()> {
        let _guard = self.inner.write.lock().await;
        let key = rid(namespace, id);
        let mut old = self
            .old_items(&[&key])
            .await
            .map_err(|e| tag(e, "delete"))?;
        match old.remove(&key) {
            Some(o) if o.0.namespace == namespace => {
                self.remove_all(vec![o])
                    .await
                    .map_err(|e| tag(e, "delete"))?;
                Ok(())
            }
            _ => Err(tag(Error::not_found(namespace, id), "delete")),
        }
    }

    async fn clear(&self, namespace: &str, request: &ClearRequest) -> Result<u64> {
        limits::check_clear(namespace, request).map_err(|e| tag(e, "clear"))?;
        let mut filter = request.filter.clone();
        filter.include_deleted = false;
        let _guard = self.inner.write.lock().await;
        let matched = self
            .items_where(namespace, &filter)
            .await
            .map_err(|e| tag(e, "clear"))?;
        let keys: Vec<String> = matched.iter().map(|i| rid(namespace, &i.id)).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let old = self.old_items(&refs).await.map_err(|e| tag(e, "clear"))?;
        let stamp = Timestamp::now();
        let changes: Vec<Change> = old
            .into_values()
            .filter(|(i, _)| !i.deleted)
            .map(|(item, meta)| {
                let mut new = item.clone();
                new.deleted = true;
                touch(&mut new, stamp);
                Change {
                    old: Some((item, meta)),
                    new: Some(new),
                }
            })
            .collect();
        let n = changes.len() as u64;
        self.apply(changes).await.map_err(|e| tag(e, "clear"))?;
        Ok(n)
    }

    async fn count(&self, namespace: &str, options: CountOptions) -> Result<u64> {
        let w = in_namespace(namespace, options.include_deleted);
        let ids = self.ids_where(w).await.map_err(|e| tag(e, "count"))?;
        Ok(ids.len() as u64)
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
        match self.get(namespace, by).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(tag(Error::not_found(namespace, by), "supersede"));
            }
            Err(e) => return Err(e),
        }
        let now = Timestamp::now();
        self.modify(namespace, id, |item| {
            item.superseded_by = Some(by.to_owned());
            item.valid_to = Some(now);
            touch(item, now);
        })
        .await
        .map_err(|e| tag(e, "supersede"))
    }

    async fn restore(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        self.modify(namespace, id, |item| {
            item.superseded_by = None;
            item.valid_to = None;
            touch(item, Timestamp::now());
        })
        .await
        .map_err(|e| tag(e, "restore"))
    }

    async fn predecessors(&self, namespace: &str, id: &str) -> Result<Vec<MemoryItem>> {
        // Superseded items are never plain: the successor's clause is enough, and the
        // namespace and deletion are checked on the records.
        let w = json!({ "supby": { "$eq": id } });
        let rows = self
            .rows_where(w)
            .await
            .map_err(|e| tag(e, "predecessors"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows.values() {
            let item = row.item().map_err(|e| tag(e, "predecessors"))?;
            if item.namespace == namespace
                && !item.deleted
                && item.superseded_by.as_deref() == Some(id)
            {
                out.push(item);
            }
        }
        out.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    async fn reinforce(&self, namespace: &str, ids: &[String], at: Timestamp) -> Result<u64> {
        limits::check_ids("ids", ids).map_err(|e| tag(e, "reinforce"))?;
        let keys: HashSet<String> = ids.iter().map(|id| rid(namespace, id)).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let _guard = self.inner.write.lock().await;
        let old = self
            .old_items(&refs)
            .await
            .map_err(|e| tag(e, "reinforce"))?;
        let changes: Vec<Change> = old
            .into_values()
            .filter(|(i, _)| i.namespace == namespace && !i.deleted)
            .map(|(item, meta)| {
                let mut new = item.clone();
                reinforce_item(&mut new, at);
                Change {
                    old: Some((item, meta)),
                    new: Some(new),
                }
            })
            .collect();
        let n = changes.len() as u64;
        self.apply(changes).await.map_err(|e| tag(e, "reinforce"))?;
        Ok(n)
    }

    async fn decay(
        &self,
        namespace: &str,
        idle_before: Timestamp,
        factor: f32,
        floor: f32,
    ) -> Result<u64> {
        let op = "decay";
        limits::check_decay(factor, floor).map_err(|e| tag(e, op))?;
        let _guard = self.inner.write.lock().await;
        let rows = self
            .rows_where(in_namespace(namespace, false))
            .await
            .map_err(|e| tag(e, op))?;
        let mut changes = Vec::new();
        for row in rows.into_values() {
            let item = row.item().map_err(|e| tag(e, op))?;
            if item.namespace != namespace || item.deleted || !is_idle(&item, idle_before) {
                continue;
            }
            let mut new = item.clone();
            if decay_item(&mut new, factor, floor) {
                changes.push(Change {
                    old: Some((item, row.meta)),
                    new: Some(new),
                });
            }
        }
        let n = changes.len() as u64;
        self.apply(changes).await.map_err(|e| tag(e, op))?;
        Ok(n)
    }

    async fn list_expired(&self, now: Timestamp, limit: usize) -> Result<Vec<ExpiredItem>> {
        let rows = self
            .rows_where(json!({ "exp": { "$lte": now.as_millis() } }))
            .await
            .map_err(|e| tag(e, "list_expired"))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows.values() {
            let item = row.item().map_err(|e| tag(e, "list_expired"))?;
            if let Some(at) = item.expires_at.filter(|e| *e <= now) {
                out.push(ExpiredItem {
                    namespace: item.namespace,
                    id: item.id,
                    expires_at: at,
                });
            }
        }
        out.sort_by(|a, b| {
            a.expires_at
                .cmp(&b.expires_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        out.truncate(limit);
        Ok(out)
    }

    async fn delete_if_expired_before(
        &self,
        namespace: &str,
        id: &str,
        cutoff: Timestamp,
    ) -> Result<()> {
        let op = "delete_if_expired_before";
        let _guard = self.inner.write.lock().await;
        let key = rid(namespace, id);
        let mut old = self.old_items(&[&key]).await.map_err(|e| tag(e, op))?;
        match old.remove(&key) {
            Some(o) if o.0.namespace == namespace && o.0.is_expired_at(cutoff) => {
                self.remove_all(vec![o]).await.map_err(|e| tag(e, op))?;
                Ok(())
            }
            _ => Err(tag(
                Error::not_found(namespace, id).with_context("cutoff", cutoff),
                op,
            )),
        }
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        let options = GetOptions {
            where_metadata: Some(json!({ "$and": [
                { "kind": { "$eq": "ns" } },
                { "n": { "$gt": 0 } },
            ] })),
            include: Some(vec!["metadatas".to_owned()]),
            ..GetOptions::default()
        };
        let rows = self
            .get_rows(&self.inner.meta, options)
            .await
            .map_err(|e| tag(e, "list_namespaces"))?;
        let mut out: Vec<String> = rows
            .values()
            .filter_map(|r| r.meta.get("ns").and_then(Json::as_str).map(str::to_owned))
            .collect();
        out.sort();
        Ok(out)
    }

    async fn delete_namespace(&self, namespace: &str) -> Result<u64> {
        let op = "delete_namespace";
        let _guard = self.inner.write.lock().await;
        let rows = self
            .rows_where(in_namespace(namespace, true))
            .await
            .map_err(|e| tag(e, op))?;
        let mut old = Vec::with_capacity(rows.len());
        for row in rows.into_values() {
            let item = row.item().map_err(|e| tag(e, op))?;
            if item.namespace == namespace {
                old.push((item, row.meta));
            }
        }
        self.remove_all(old).await.map_err(|e| tag(e, op))
    }

    async fn reassign(&self, ids: &[String], from: &str, to: &str) -> Result<u64> {
        check_namespace(to).map_err(|e| tag(e, "reassign"))?;
        limits::check_ids("ids", ids).map_err(|e| tag(e, "reassign"))?;
        let unique: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
        let sources: Vec<String> = unique.iter().map(|id| rid(from, id)).collect();
        let targets: Vec<String> = unique.iter().map(|id| rid(to, id)).collect();
        let _guard = self.inner.write.lock().await;
        let refs: Vec<&str> = sources.iter().map(String::as_str).collect();
        let old = self
            .old_items(&refs)
            .await
            .map_err(|e| tag(e, "reassign"))?;
        let mut belonging: Vec<(MemoryItem, Map<String, Json>)> = old
            .into_values()
            .filter(|(i, _)| i.namespace == from)
            .collect();
        belonging.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        let n = belonging.len() as u64;
        if from == to {
            return Ok(n);
        }
        // All or nothing: an id the target already holds stops the move before any write.
        let refs: Vec<&str> = targets.iter().map(String::as_str).collect();
        let taken = self
            .rows_by_id(&refs)
            .await
            .map_err(|e| tag(e, "reassign"))?;
        if let Some((item, _)) = belonging
            .iter()
            .find(|(i, _)| taken.contains_key(&rid(to, &i.id)))
        {
            return Err(tag(reassign_conflict(&item.id, to), "reassign"));
        }
        let changes = belonging
            .into_iter()
            .map(|(item, meta)| {
                let mut new = item.clone();
                new.namespace = to.to_owned();
                Change {
                    old: Some((item, meta)),
                    new: Some(new),
                }
            })
            .collect();
        self.apply(changes).await.map_err(|e| tag(e, "reassign"))?;
        Ok(n)
    }

    async fn embedding_pin(&self) -> Result<Option<EmbeddingPin>> {
        self.load_pin().await.map_err(|e| tag(e, "embedding_pin"))
    }

    async fn ping(&self) -> Result<()> {
        self.check_open()?;
        let url = self.inner.config.url.trim_end_matches('/');
        let r = self
            .inner
            .http
            .get(format!("{url}/api/v2/heartbeat"))
            .send()
            .await
            .map_err(|e| tag(unavailable(url, e), "ping"))?;
        if !r.status().is_success() {
            return Err(tag(
                Error::new(
                    ErrorKind::Unavailable,
                    format!("chroma heartbeat answered {}", r.status()),
                )
                .set_temporary(true),
                "ping",
            ));
        }
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        Ok(())
    }
}

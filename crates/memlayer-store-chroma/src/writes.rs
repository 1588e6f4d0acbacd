//! Applying a write: records first, then the vector index, then the namespace counts.

use std::collections::HashMap;

use chromadb::collection::CollectionEntries;
use memlayer_store::types::MemoryItem;
use memlayer_store::{EmbeddingPin, Error, Result};
use serde_json::{Map, Value as Json, json};

use crate::client::ChromaStore;
use crate::layout;
use crate::records::{Change, Row, StatDeltas, ns_id, placeholder, rid, timed};

impl ChromaStore {
    /// Applies a set of changes: records (the truth) first, in one request, then the vector
    /// index, then the namespace counts. The caller holds the write lock.
    pub(crate) async fn apply(&self, changes: Vec<Change>) -> Result<()> {
        self.check_open()?;
        let t = self.timeout();
        let mut put_ids = Vec::new();
        let mut put_meta = Vec::new();
        let mut put_docs = Vec::new();
        let mut put_emb = Vec::new();
        let mut removed = Vec::new();
        let mut index_ids = Vec::new();
        let mut index_meta = Vec::new();
        let mut index_emb = Vec::new();
        let mut index_removed = Vec::new();
        let mut stats = StatDeltas::default();
        for c in &changes {
            if let Some((old, _)) = &c.old {
                stats.add(old, -1);
            }
            // A move to another namespace (reassign) is a new record and the old one's
            // removal: the record id holds the namespace.
            let moved = match (&c.old, &c.new) {
                (Some((old, _)), Some(new)) => old.namespace != new.namespace,
                _ => false,
            };
            let same = if moved { None } else { c.old.as_ref() };
            if let Some(item) = &c.new {
                stats.add(item, 1);
                let record = layout::record(item)?;
                let record = match same {
                    Some((_, old_meta)) => layout::with_removals(record, old_meta),
                    None => record,
                };
                put_ids.push(rid(&item.namespace, &item.id));
                put_meta.push(record);
                put_docs.push(layout::terms_document(&item.content));
                put_emb.push(placeholder(&item.id));
                match layout::embedding_of(item) {
                    Some(e) => {
                        let fields = layout::filter_fields(item);
                        let fields = match same {
                            Some((old, _)) if old.embedding.is_some() => {
                                layout::with_removals(fields, &layout::filter_fields(old))
                            }
                            _ => fields,
                        };
                        index_ids.push(rid(&item.namespace, &item.id));
                        index_meta.push(fields);
                        index_emb.push(e.vector.clone());
                    }
                    None => {
                        if same.is_some_and(|(o, _)| o.embedding.is_some()) {
                            index_removed.push(rid(&item.namespace, &item.id));
                        }
                    }
                }
            }
            if (c.new.is_none() || moved)
                && let Some((old, _)) = &c.old
            {
                removed.push(rid(&old.namespace, &old.id));
                if old.embedding.is_some() {
                    index_removed.push(rid(&old.namespace, &old.id));
                }
            }
        }
        if !put_ids.is_empty() {
            let entries = CollectionEntries {
                ids: put_ids.iter().map(String::as_str).collect(),
                metadatas: Some(put_meta),
                documents: Some(put_docs.iter().map(String::as_str).collect()),
                embeddings: Some(put_emb),
            };
            timed(t, "upsert", self.inner.items.upsert(entries, None)).await?;
        }
        if !removed.is_empty() {
            timed(
                t,
                "delete",
                self.inner.items.delete(
                    Some(removed.iter().map(String::as_str).collect()),
                    None,
                    None,
                ),
            )
            .await?;
        }
        if !index_ids.is_empty() {
            let entries = CollectionEntries {
                ids: index_ids.iter().map(String::as_str).collect(),
                metadatas: Some(index_meta),
                documents: None,
                embeddings: Some(index_emb),
            };
            timed(t, "index upsert", self.inner.index.upsert(entries, None)).await?;
        }
        if !index_removed.is_empty() {
            timed(
                t,
                "index delete",
                self.inner.index.delete(
                    Some(index_removed.iter().map(String::as_str).collect()),
                    None,
                    None,
                ),
            )
            .await?;
        }
        self.bump_stats(stats).await
    }

    /// The BM25 statistics records of a namespace and some of its terms, by record id.
    pub(crate) async fn stats(&self, ids: &[String]) -> Result<HashMap<String, Row>> {
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.rows_in(&self.inner.meta, &refs).await
    }

    /// Adds the deltas to the statistics records (read, then written, under the write lock).
    pub(crate) async fn bump_stats(&self, deltas: StatDeltas) -> Result<()> {
        let StatDeltas {
            mut namespaces,
            mut terms,
        } = deltas;
        // An update that kept its content changes nothing.
        namespaces.retain(|_, d| *d != (0, 0));
        terms.retain(|_, d| *d != 0);
        let ids: Vec<String> = namespaces
            .keys()
            .map(|ns| ns_id(ns))
            .chain(terms.keys().cloned())
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let current = self.stats(&ids).await?;
        let value = |id: &str, field: &str| {
            current
                .get(id)
                .and_then(|r| r.meta.get(field))
                .and_then(Json::as_i64)
                .unwrap_or(0)
        };
        let mut metas = Vec::with_capacity(ids.len());
        for (ns, (dn, dl)) in &namespaces {
            let id = ns_id(ns);
            let mut m = Map::new();
            m.insert("kind".into(), json!("ns"));
            m.insert("ns".into(), json!(ns));
            m.insert("n".into(), json!((value(&id, "n") + dn).max(0)));
            m.insert("len".into(), json!((value(&id, "len") + dl).max(0)));
            metas.push(m);
        }
        for (id, d) in &terms {
            let mut m = Map::new();
            m.insert("kind".into(), json!("df"));
            m.insert("df".into(), json!((value(id, "df") + d).max(0)));
            metas.push(m);
        }
        let step = self.inner.max_batch.max(1);
        for (ids, metas) in ids.chunks(step).zip(metas.chunks(step)) {
            let entries = CollectionEntries {
                ids: ids.iter().map(String::as_str).collect(),
                metadatas: Some(metas.to_vec()),
                documents: None,
                embeddings: Some(vec![vec![0.0f32]; ids.len()]),
            };
            timed(
                self.timeout(),
                "statistics",
                self.inner.meta.upsert(entries, None),
            )
            .await?;
        }
        Ok(())
    }

    /// Reads the items to change under the write lock, by record id ([`rid`]).
    pub(crate) async fn old_items(
        &self,
        ids: &[&str],
    ) -> Result<HashMap<String, (MemoryItem, Map<String, Json>)>> {
        let rows = self.rows_by_id(ids).await?;
        let mut out = HashMap::with_capacity(rows.len());
        for (id, row) in rows {
            let item = row.item()?;
            out.insert(id, (item, row.meta));
        }
        Ok(out)
    }

    /// Changes the live item `id` of `namespace` with `f` under the write lock.
    pub(crate) async fn modify(
        &self,
        namespace: &str,
        id: &str,
        f: impl FnOnce(&mut MemoryItem),
    ) -> Result<MemoryItem> {
        let _guard = self.inner.write.lock().await;
        let key = rid(namespace, id);
        let mut old = self.old_items(&[&key]).await?;
        let Some((item, meta)) = old.remove(&key) else {
            return Err(Error::not_found(namespace, id));
        };
        if item.namespace != namespace || item.deleted {
            return Err(Error::not_found(namespace, id));
        }
        let mut new = item.clone();
        f(&mut new);
        self.apply(vec![Change {
            old: Some((item, meta)),
            new: Some(new.clone()),
        }])
        .await?;
        Ok(new)
    }

    /// Removes the listed items (already read under the write lock).
    pub(crate) async fn remove_all(
        &self,
        old: Vec<(MemoryItem, Map<String, Json>)>,
    ) -> Result<u64> {
        let n = old.len() as u64;
        let changes = old
            .into_iter()
            .map(|o| Change {
                old: Some(o),
                new: None,
            })
            .collect();
        self.apply(changes).await?;
        Ok(n)
    }

    pub(crate) fn check_dim(&self, vector: &[f32], pin: &EmbeddingPin) -> Result<()> {
        memlayer_store::limits::check_query_dim(pin, vector)
    }
}

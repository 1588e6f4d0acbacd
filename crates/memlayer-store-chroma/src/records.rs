//! Records of the `items` collection: their ids, the rows read back, and the changes and
//! count deltas a write produces.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use chromadb::collection::{ChromaCollection, GetOptions};
use memlayer_store::types::MemoryItem;
use memlayer_store::{Filter, Result};
use serde_json::{Map, Value as Json};

use crate::client::ChromaStore;
use crate::error::{map_chroma, timed_out};
use crate::layout;
use crate::layout::{decode, translate};

/// A record as read: its metadata and, when asked for, its document.
pub(crate) struct Row {
    pub(crate) meta: Map<String, Json>,
    pub(crate) document: Option<String>,
}

impl Row {
    pub(crate) fn item(&self) -> Result<MemoryItem> {
        decode(&self.meta)
    }
}

/// One write: the row as it was (if any) and the item to store (`None` removes it).
pub(crate) struct Change {
    pub(crate) old: Option<(MemoryItem, Map<String, Json>)>,
    pub(crate) new: Option<MemoryItem>,
}

/// The 1-d placeholder embedding of a record in the `items` collection (Chroma requires one;
/// vectors live in `index`). Spread over [0, 1) by id so the collection's own index stays sane.
pub(crate) fn placeholder(id: &str) -> Vec<f32> {
    let d = layout::digest(id);
    let n = u32::from_str_radix(&d[..8], 16).unwrap_or(0);
    vec![n as f32 / u32::MAX as f32]
}

pub(crate) async fn timed<T, F>(timeout: Duration, what: &str, f: F) -> Result<T>
where
    F: Future<Output = anyhow::Result<T>>,
{
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => r.map_err(map_chroma),
        Err(_) => Err(timed_out(what, timeout)),
    }
}

/// The record id of an item in the `items` and `index` collections: an item's identity is
/// (namespace, id), so the id is prefixed with a fixed-length digest of its namespace
/// (decisions/0007). Within one namespace the prefix is shared, so record ids sort as the
/// item ids do.
pub(crate) fn rid(namespace: &str, id: &str) -> String {
    format!("{}/{id}", layout::namespace_key(namespace))
}

/// The id of a namespace's statistics record (item count and total length).
pub(crate) fn ns_id(namespace: &str) -> String {
    format!("ns/{namespace}")
}

/// The id of a term's document-frequency record in a namespace.
pub(crate) fn df_id(namespace: &str, term: &str) -> String {
    format!("df/{}/{term}", layout::digest(namespace))
}

/// Changes to the BM25 statistics of a set of writes.
#[derive(Default)]
pub(crate) struct StatDeltas {
    /// Namespace -> (items, total length).
    pub(crate) namespaces: HashMap<String, (i64, i64)>,
    /// Term record id -> document frequency.
    pub(crate) terms: HashMap<String, i64>,
}

impl StatDeltas {
    /// Counts (`sign` 1) or uncounts (-1) one stored item.
    pub(crate) fn add(&mut self, item: &MemoryItem, sign: i64) {
        let terms: Vec<String> = memlayer_store::ranking::text::terms(&item.content).collect();
        let d = self.namespaces.entry(item.namespace.clone()).or_default();
        d.0 += sign;
        d.1 += sign * terms.len() as i64;
        let distinct: HashSet<&String> = terms.iter().collect();
        for t in distinct {
            *self.terms.entry(df_id(&item.namespace, t)).or_default() += sign;
        }
    }
}

impl ChromaStore {
    /// Item records by id, in chunks the server accepts; missing ids are absent from the map.
    pub(crate) async fn rows_by_id(&self, ids: &[&str]) -> Result<HashMap<String, Row>> {
        self.rows_in(&self.inner.items, ids).await
    }

    /// Records of `collection` by id, in chunks the server accepts.
    pub(crate) async fn rows_in(
        &self,
        collection: &ChromaCollection,
        ids: &[&str],
    ) -> Result<HashMap<String, Row>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(self.inner.max_batch.max(1)) {
            if chunk.is_empty() {
                continue;
            }
            let options = GetOptions {
                ids: chunk.iter().map(|s| (*s).to_owned()).collect(),
                include: Some(vec!["metadatas".to_owned()]),
                ..GetOptions::default()
            };
            out.extend(self.get_rows(collection, options).await?);
        }
        Ok(out)
    }

    /// Item records matching a `where` clause.
    pub(crate) async fn rows_where(&self, filter: Json) -> Result<HashMap<String, Row>> {
        let options = GetOptions {
            where_metadata: Some(filter),
            include: Some(vec!["metadatas".to_owned()]),
            ..GetOptions::default()
        };
        self.get_rows(&self.inner.items, options).await
    }

    pub(crate) async fn get_rows(
        &self,
        collection: &ChromaCollection,
        options: GetOptions,
    ) -> Result<HashMap<String, Row>> {
        self.check_open()?;
        // An empty id list would mean "every record" to Chroma.
        if options.ids.is_empty() && options.where_metadata.is_none() {
            return Ok(HashMap::new());
        }
        let r = timed(self.timeout(), "get", collection.get(options)).await?;
        // Each of metadatas and documents is absent unless included.
        let mut metas = r.metadatas.unwrap_or_default().into_iter();
        let mut docs = r.documents.unwrap_or_default().into_iter();
        let mut out = HashMap::with_capacity(r.ids.len());
        for id in r.ids {
            let meta = metas.next().flatten().unwrap_or_default();
            let document = docs.next().flatten();
            out.insert(id, Row { meta, document });
        }
        Ok(out)
    }

    /// Ids matching a `where` clause, without their data.
    pub(crate) async fn ids_where(&self, filter: Json) -> Result<Vec<String>> {
        self.check_open()?;
        let options = GetOptions {
            where_metadata: Some(filter),
            include: Some(Vec::new()),
            ..GetOptions::default()
        };
        let r = timed(self.timeout(), "get", self.inner.items.get(options)).await?;
        Ok(r.ids)
    }

    /// The item records among `ids` whose terms document matches `has_term`, with their
    /// metadata and document, in chunks the server accepts.
    pub(crate) async fn rows_holding(
        &self,
        ids: &[String],
        has_term: &Json,
    ) -> Result<HashMap<String, Row>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(self.inner.max_batch.max(1)) {
            if chunk.is_empty() {
                continue;
            }
            let options = GetOptions {
                ids: chunk.to_vec(),
                where_document: Some(has_term.clone()),
                include: Some(vec!["metadatas".to_owned(), "documents".to_owned()]),
                ..GetOptions::default()
            };
            out.extend(self.get_rows(&self.inner.items, options).await?);
        }
        Ok(out)
    }

    /// The decoded items matching a translated filter (and the filter itself, re-checked).
    pub(crate) async fn items_where(
        &self,
        namespace: &str,
        filter: &Filter,
    ) -> Result<Vec<MemoryItem>> {
        let now = filter.effective_now();
        let t = translate(namespace, filter);
        if t.empty {
            return Ok(Vec::new());
        }
        let rows = self.rows_where(t.both()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows.values() {
            let item = row.item()?;
            if item.namespace == namespace && filter.matches(&item, now) {
                out.push(item);
            }
        }
        Ok(out)
    }
}

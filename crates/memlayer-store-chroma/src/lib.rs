#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod error;
mod layout;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chromadb::client::{ChromaAuthMethod, ChromaClient, ChromaClientOptions};
use chromadb::collection::{ChromaCollection, CollectionEntries, GetOptions, QueryOptions};
use memlayer_store::lifecycle::{
    decay_item, is_idle, merge_upsert, reassign_conflict, reinforce_item, touch,
};
use memlayer_store::limits::{self, check_item, check_namespace, check_pin};
use memlayer_store::ranking::bm25::{self, Bm25Params, TermRounds};
use memlayer_store::ranking::fusion::sort_hits;
use memlayer_store::ranking::vector::{TopK, cosine};
use memlayer_store::search::{SearchLegs, leg_hit, run_list, run_search, sort_page};
use memlayer_store::types::{MemoryItem, Timestamp};
use memlayer_store::{
    Capabilities, ClearRequest, CountOptions, Cursor, EmbeddingPin, Error, ErrorKind, ExpiredItem,
    Filter, ListRequest, MemoryStore, Page, RankedBy, Result, SearchHit, SearchRequest,
    SearchResults,
};
use serde_json::{Map, Value as Json, json};

use error::{corrupt, map_chroma, timed_out};
use layout::{any, decode, in_namespace, translate};

const BACKEND: &str = "chroma";
const PIN_ID: &str = "pin";
/// The meta record saying the item records' ids hold their namespace (decisions/0007).
const LAYOUT_ID: &str = "layout";

/// How to reach Chroma and how to lay the store out there.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ChromaConfig {
    /// `http://host:port` of a Chroma 1.x server (v2 API).
    pub url: String,
    /// Prefix of the store's three collection names (`<prefix>items`, `<prefix>index`,
    /// `<prefix>meta`): letters, digits, `.`, `_` and `-`, starting with a letter or digit.
    pub prefix: String,
    /// The Chroma database (in the default tenant).
    pub database: String,
    /// Per-request timeout; a request that waits longer fails with a temporary `Timeout`.
    pub timeout: Duration,
    /// HNSW `M` of the vector index.
    pub hnsw_m: u32,
    /// HNSW construction ef.
    pub hnsw_construction_ef: u32,
    /// HNSW search ef.
    pub hnsw_search_ef: u32,
    /// When HNSW comes back short and the filter selects at most this many vectors, they are
    /// scored exactly at once (otherwise HNSW is asked for more first).
    pub exact_below: usize,
}

impl ChromaConfig {
    /// Defaults for `url`: prefix `memlayer-`, database `default_database`, 10 s timeout,
    /// HNSW M 16, construction ef 200, search ef 100, exact scoring below 1,000 vectors.
    pub fn new(url: impl Into<String>) -> Self {
        ChromaConfig {
            url: url.into(),
            prefix: "memlayer-".into(),
            database: "default_database".into(),
            timeout: Duration::from_secs(10),
            hnsw_m: 16,
            hnsw_construction_ef: 200,
            hnsw_search_ef: 100,
            exact_below: 1000,
        }
    }

    /// Sets the collection name prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the size under which a short HNSW answer is replaced by an exact scan at once (0
    /// makes HNSW retry with larger requests first, the exact scan being the last resort).
    pub fn exact_below(mut self, n: usize) -> Self {
        self.exact_below = n;
        self
    }

    /// Sets the request timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn validate(&self) -> Result<()> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        let starts_ok = self
            .prefix
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if !starts_ok || !self.prefix.chars().all(ok_char) || self.prefix.len() > 400 {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!(
                    "chroma prefix {:?} must start with a letter or digit and hold only letters, \
                     digits, '.', '_' and '-' (at most 400 characters)",
                    self.prefix
                ),
            )
            .with_backend(BACKEND));
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!(
                    "chroma url {:?} must start with http:// or https://",
                    self.url
                ),
            )
            .with_backend(BACKEND));
        }
        Ok(())
    }
}

/// A memory store in Chroma.
///
/// Three collections: `items` holds every item (the truth: document = content, metadata =
/// filter fields, BM25 statistics, the item and its vector), `index` holds the vectors with the
/// filter fields for pre-filtered HNSW search, `meta` holds the model pin and per-namespace
/// counts. Writes of one store are serialised in-process (Chroma has no conditional write).
#[derive(Clone)]
pub struct ChromaStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: ChromaConfig,
    client: ChromaClient,
    items: ChromaCollection,
    index: ChromaCollection,
    meta: ChromaCollection,
    http: reqwest::Client,
    max_batch: usize,
    write: tokio::sync::Mutex<()>,
    pin: Mutex<Option<EmbeddingPin>>,
    closed: AtomicBool,
}

impl std::fmt::Debug for ChromaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChromaStore")
            .field("url", &memlayer_store::redact_url(&self.inner.config.url))
            .field("prefix", &self.inner.config.prefix)
            .finish()
    }
}

fn tag(e: Error, operation: &'static str) -> Error {
    e.with_backend(BACKEND).with_operation(operation)
}

/// A record as read: its metadata and, when asked for, its document.
struct Row {
    meta: Map<String, Json>,
    document: Option<String>,
}

impl Row {
    fn item(&self) -> Result<MemoryItem> {
        decode(&self.meta)
    }
}

/// One write: the row as it was (if any) and the item to store (`None` removes it).
struct Change {
    old: Option<(MemoryItem, Map<String, Json>)>,
    new: Option<MemoryItem>,
}

/// The 1-d placeholder embedding of a record in the `items` collection (Chroma requires one;
/// vectors live in `index`). Spread over [0, 1) by id so the collection's own index stays sane.
fn placeholder(id: &str) -> Vec<f32> {
    let d = layout::digest(id);
    let n = u32::from_str_radix(&d[..8], 16).unwrap_or(0);
    vec![n as f32 / u32::MAX as f32]
}

async fn timed<T, F>(timeout: Duration, what: &str, f: F) -> Result<T>
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
fn rid(namespace: &str, id: &str) -> String {
    format!("{}/{id}", layout::namespace_key(namespace))
}

/// The id of a namespace's statistics record (item count and total length).
fn ns_id(namespace: &str) -> String {
    format!("ns/{namespace}")
}

/// The id of a term's document-frequency record in a namespace.
fn df_id(namespace: &str, term: &str) -> String {
    format!("df/{}/{term}", layout::digest(namespace))
}

/// Changes to the BM25 statistics of a set of writes.
#[derive(Default)]
struct StatDeltas {
    /// Namespace -> (items, total length).
    namespaces: HashMap<String, (i64, i64)>,
    /// Term record id -> document frequency.
    terms: HashMap<String, i64>,
}

impl StatDeltas {
    /// Counts (`sign` 1) or uncounts (-1) one stored item.
    fn add(&mut self, item: &MemoryItem, sign: i64) {
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
    /// Connects with the defaults of [`ChromaConfig::new`].
    ///
    /// # Errors
    /// `Unavailable` when the server does not answer; `ConfigInvalid` for a bad URL.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(ChromaConfig::new(url)).await
    }

    /// Connects, creating the store's collections when missing.
    ///
    /// # Errors
    /// `Unavailable` when the server does not answer; `ConfigInvalid` for a bad configuration.
    pub async fn connect_with(config: ChromaConfig) -> Result<Self> {
        config.validate()?;
        let url = config.url.trim_end_matches('/').to_owned();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::ConfigInvalid, format!("http client: {e}"))
                    .with_backend(BACKEND)
            })?;
        let checks: Json = {
            let r = http
                .get(format!("{url}/api/v2/pre-flight-checks"))
                .send()
                .await
                .map_err(|e| unavailable(&url, e))?;
            r.json().await.map_err(|e| unavailable(&url, e))?
        };
        let server_batch = checks
            .get("max_batch_size")
            .and_then(Json::as_u64)
            .unwrap_or(1000) as usize;
        let client = timed(
            config.timeout,
            "connect",
            ChromaClient::new(ChromaClientOptions {
                url: Some(url.clone()),
                auth: ChromaAuthMethod::None,
                database: config.database.clone(),
            }),
        )
        .await?;
        let p = &config.prefix;
        let mut index_meta = Map::new();
        index_meta.insert("hnsw:space".into(), json!("cosine"));
        index_meta.insert("hnsw:M".into(), json!(config.hnsw_m));
        index_meta.insert(
            "hnsw:construction_ef".into(),
            json!(config.hnsw_construction_ef),
        );
        index_meta.insert("hnsw:search_ef".into(), json!(config.hnsw_search_ef));
        let items = timed(
            config.timeout,
            "create collection",
            client.get_or_create_collection(&format!("{p}items"), None),
        )
        .await?;
        let index = timed(
            config.timeout,
            "create collection",
            client.get_or_create_collection(&format!("{p}index"), Some(index_meta)),
        )
        .await?;
        let meta = timed(
            config.timeout,
            "create collection",
            client.get_or_create_collection(&format!("{p}meta"), None),
        )
        .await?;
        let store = ChromaStore {
            inner: Arc::new(Inner {
                config,
                client,
                items,
                index,
                meta,
                http,
                max_batch: server_batch.min(limits::MAX_BATCH),
                write: tokio::sync::Mutex::new(()),
                pin: Mutex::new(None),
                closed: AtomicBool::new(false),
            }),
        };
        store.check_layout().await?;
        store.load_pin().await?;
        Ok(store)
    }

    /// Refuses a store whose item records predate record ids holding the namespace
    /// (decisions/0007), which this version would not see; marks a new store as current.
    async fn check_layout(&self) -> Result<()> {
        let marker = self.rows_in(&self.inner.meta, &[LAYOUT_ID]).await?;
        if marker.contains_key(LAYOUT_ID) {
            return Ok(());
        }
        let held = timed(self.timeout(), "count", self.inner.items.count()).await?;
        if held > 0 {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!(
                    "the collections with prefix {:?} hold {held} records written before record \
                     ids carried the namespace; export them with the memlayer that wrote them \
                     and import into a new prefix (docs/decisions/0007-item-identity.md)",
                    self.inner.config.prefix
                ),
            )
            .with_backend(BACKEND));
        }
        let mut meta = Map::new();
        meta.insert("kind".into(), json!("layout"));
        meta.insert("ids".into(), json!("namespaced"));
        let entries = CollectionEntries {
            ids: vec![LAYOUT_ID],
            metadatas: Some(vec![meta]),
            documents: None,
            embeddings: Some(vec![vec![0.0]]),
        };
        timed(
            self.timeout(),
            "layout",
            self.inner.meta.upsert(entries, None),
        )
        .await?;
        Ok(())
    }

    /// Deletes the store's three collections and everything in them; the store is closed.
    ///
    /// # Errors
    /// `Unavailable` and friends when the server does not answer.
    pub async fn destroy(self) -> Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        let client = &self.inner.client;
        for c in [&self.inner.items, &self.inner.index, &self.inner.meta] {
            timed(
                self.timeout(),
                "delete collection",
                client.delete_collection(c.name()),
            )
            .await?;
        }
        Ok(())
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::Unavailable, "the store is closed")
                .with_backend(BACKEND)
                .set_temporary(false));
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        self.inner.config.timeout
    }

    /// Item records by id, in chunks the server accepts; missing ids are absent from the map.
    async fn rows_by_id(&self, ids: &[&str]) -> Result<HashMap<String, Row>> {
        self.rows_in(&self.inner.items, ids).await
    }

    /// Records of `collection` by id, in chunks the server accepts.
    async fn rows_in(
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
    async fn rows_where(&self, filter: Json) -> Result<HashMap<String, Row>> {
        let options = GetOptions {
            where_metadata: Some(filter),
            include: Some(vec!["metadatas".to_owned()]),
            ..GetOptions::default()
        };
        self.get_rows(&self.inner.items, options).await
    }

    async fn get_rows(
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
    async fn ids_where(&self, filter: Json) -> Result<Vec<String>> {
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
    async fn rows_holding(&self, ids: &[String], has_term: &Json) -> Result<HashMap<String, Row>> {
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
    async fn items_where(&self, namespace: &str, filter: &Filter) -> Result<Vec<MemoryItem>> {
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

    /// The pinned model: cached once known (a pin never changes).
    async fn load_pin(&self) -> Result<Option<EmbeddingPin>> {
        if let Some(p) = self.cached_pin() {
            return Ok(Some(p));
        }
        let options = GetOptions {
            ids: vec![PIN_ID.to_owned()],
            include: Some(vec!["metadatas".to_owned()]),
            ..GetOptions::default()
        };
        let rows = self.get_rows(&self.inner.meta, options).await?;
        let Some(row) = rows.get(PIN_ID) else {
            return Ok(None);
        };
        let model = row.meta.get("model").and_then(Json::as_str);
        let dim = row.meta.get("dim").and_then(Json::as_u64);
        let (Some(model), Some(dim)) = (model, dim) else {
            return Err(corrupt("model pin", "missing model or dim"));
        };
        let pin = EmbeddingPin {
            model: model.to_owned(),
            dim: dim as usize,
        };
        if let Ok(mut cached) = self.inner.pin.lock() {
            *cached = Some(pin.clone());
        }
        Ok(Some(pin))
    }

    fn cached_pin(&self) -> Option<EmbeddingPin> {
        self.inner.pin.lock().ok().and_then(|p| p.clone())
    }

    /// Pins the model: `add` never overwrites in Chroma, so across processes the first pin
    /// wins, and the pin read back is the one every writer then checks against.
    async fn pin(&self, want: &EmbeddingPin) -> Result<EmbeddingPin> {
        let mut meta = Map::new();
        meta.insert("model".into(), json!(want.model));
        meta.insert("dim".into(), json!(want.dim));
        let entries = CollectionEntries {
            ids: vec![PIN_ID],
            metadatas: Some(vec![meta]),
            documents: None,
            embeddings: Some(vec![vec![0.0]]),
        };
        timed(self.timeout(), "pin", self.inner.meta.add(entries, None)).await?;
        self.load_pin()
            .await?
            .ok_or_else(|| corrupt("model pin", "missing after it was written"))
    }

    /// Applies a set of changes: records (the truth) first, in one request, then the vector
    /// index, then the namespace counts. The caller holds the write lock.
    async fn apply(&self, changes: Vec<Change>) -> Result<()> {
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
    async fn stats(&self, ids: &[String]) -> Result<HashMap<String, Row>> {
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.rows_in(&self.inner.meta, &refs).await
    }

    /// Adds the deltas to the statistics records (read, then written, under the write lock).
    async fn bump_stats(&self, deltas: StatDeltas) -> Result<()> {
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
    async fn old_items(
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
    async fn modify(
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
    async fn remove_all(&self, old: Vec<(MemoryItem, Map<String, Json>)>) -> Result<u64> {
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

    fn check_dim(&self, vector: &[f32], pin: &EmbeddingPin) -> Result<()> {
        memlayer_store::limits::check_query_dim(pin, vector)
    }
}

fn unavailable(url: &str, e: reqwest::Error) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!(
            "chroma at {} does not answer: {}",
            memlayer_store::redact_url(url),
            e.without_url()
        ),
    )
    .with_backend(BACKEND)
    .set_temporary(true)
}

#[async_trait]
impl SearchLegs for ChromaStore {
    async fn page(
        &self,
        namespace: &str,
        request: &ListRequest,
        cursor: Option<Cursor>,
        offset: usize,
    ) -> Result<(Vec<MemoryItem>, Option<String>)> {
        // Chroma cannot sort: the filtered records are read and ordered here.
        let items = self.items_where(namespace, &request.filter).await?;
        Ok(sort_page(
            items,
            request.sort,
            request.order,
            cursor.as_ref(),
            offset,
            request.effective_limit(),
        ))
    }

    async fn keyword_leg(
        &self,
        namespace: &str,
        _text: &str,
        terms: &[String],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<SearchHit>> {
        let now = filter.effective_now();
        let t = translate(namespace, filter);
        if t.empty {
            return Ok(Vec::new());
        }
        // One read for the statistics: the namespace's count and length, each term's df.
        let mut ids = vec![ns_id(namespace)];
        ids.extend(terms.iter().map(|t| df_id(namespace, t)));
        let stats = self.stats(&ids).await?;
        let stat = |id: &str, field: &str| {
            stats
                .get(id)
                .and_then(|r| r.meta.get(field))
                .and_then(Json::as_i64)
                .unwrap_or(0)
        };
        let ns_key = ns_id(namespace);
        let n = stat(&ns_key, "n");
        if n <= 0 {
            return Ok(Vec::new());
        }
        let n = n as f32;
        let avg_len = (stat(&ns_key, "len") as f32 / n).max(1.0);
        let mut present: Vec<&str> = Vec::new();
        let mut idf: Vec<f32> = Vec::new();
        let mut df: Vec<f32> = Vec::new();
        for term in terms {
            let d = stat(&df_id(namespace, term), "df");
            if d > 0 {
                present.push(term);
                idf.push(bm25::idf(n, d as f32));
                df.push(d as f32);
            }
        }
        if present.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let params = Bm25Params::default();
        // Plain items: their terms documents carry tf and length, and their metadata is read
        // only when part of the filter could not be expressed in Chroma. Items plain but for
        // an expiry are selected the same way by their own scope keys and read whole, for the
        // re-check. The namespace's other items are listed by their scope (one selective
        // equality) and read whole.
        let mut include = vec!["documents".to_owned()];
        if !t.exact {
            include.push("metadatas".to_owned());
        }
        let others = self.ids_where(t.other.clone()).await?;
        // The rarest terms' documents first; a common term's are read only while a document
        // holding nothing rarer could still enter the top k (each is scored on every query
        // term from its own terms document, so the answer is the full read's).
        let mut rounds = TermRounds::new(params, &idf, &df, n);
        let mut read: HashSet<String> = HashSet::new();
        let mut top: TopK<String> = TopK::new(k);
        while let Some(round) = rounds.next_terms(top.kth()) {
            let probes = round
                .iter()
                .filter_map(|i| present.get(*i))
                .map(|t| json!({ "$contains": layout::term_probe(t) }))
                .collect();
            let Some(has_term) = any(probes) else { break };
            let plain = GetOptions {
                where_metadata: Some(t.plain_where()),
                where_document: Some(has_term.clone()),
                include: Some(include.clone()),
                ..GetOptions::default()
            };
            let expiring = GetOptions {
                where_metadata: Some(t.expiring.clone()),
                where_document: Some(has_term.clone()),
                include: Some(vec!["documents".to_owned(), "metadatas".to_owned()]),
                ..GetOptions::default()
            };
            let (plain, expiring, others) = tokio::try_join!(
                self.get_rows(&self.inner.items, plain),
                self.get_rows(&self.inner.items, expiring),
                self.rows_holding(&others, &has_term)
            )?;
            let rows = plain
                .into_iter()
                .map(|r| (r, t.exact))
                .chain(expiring.into_iter().map(|r| (r, false)))
                .chain(others.into_iter().map(|r| (r, false)));
            for ((id, row), exact) in rows {
                if !read.insert(id.clone()) {
                    continue;
                }
                if !exact {
                    let item = row.item()?;
                    if item.namespace != namespace || !filter.matches(&item, now) {
                        continue;
                    }
                }
                let Some(doc) = &row.document else { continue };
                let (tf, len) = layout::term_counts(doc, &present);
                let score: f32 = tf
                    .iter()
                    .zip(&idf)
                    .filter(|(tf, _)| **tf > 0.0)
                    .map(|(tf, idf)| params.term_score(*idf, *tf, len, avg_len))
                    .sum();
                top.offer(score, id);
            }
        }
        let scored = top.into_sorted();
        let ids: Vec<&str> = scored.iter().map(|(_, id)| id.as_str()).collect();
        let mut winners = self.rows_by_id(&ids).await?;
        let mut hits = Vec::with_capacity(scored.len());
        for (score, id) in scored {
            if let Some(row) = winners.remove(&id) {
                hits.push(leg_hit(row.item()?, score, RankedBy::Keyword));
            }
        }
        Ok(hits)
    }

    async fn vector_leg(
        &self,
        namespace: &str,
        vector: &[f32],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<SearchHit>> {
        let Some(pin) = self.load_pin().await? else {
            return Ok(Vec::new());
        };
        self.check_dim(vector, &pin)?;
        let t = translate(namespace, filter);
        if t.empty {
            return Ok(Vec::new());
        }
        // Records without a vector are candidates too; `scored` passes over them.
        let w = t.both();
        if vector.iter().all(|x| *x == 0.0) {
            // Every cosine with a zero query is 0: the ranking is by id alone.
            let candidates = self.ids_where(w).await?;
            return self
                .exact_vector(namespace, &candidates, vector, filter, k)
                .await;
        }
        // Chroma evaluates a `where` by visiting every record it matches (chroma-core/chroma
        // #7092): a filter that most of a 10k namespace passes cost 0.6 s per search here. So
        // the graph is first asked with no `where` at all, and the filter is checked on the
        // records read back; when enough of them pass, those are the answer.
        if let Some(hits) = self.vector_unfiltered(namespace, vector, filter, k).await? {
            return Ok(hits);
        }
        // HNSW pre-filtered by Chroma proposes candidates; the records (the truth) are read
        // back, re-checked and scored exactly, so a stale index entry can cost recall but
        // never a wrong answer. Chroma's filtered HNSW can come back short (behind duplicate
        // vectors, as in `search_selective_filter_fills_limit`): then the filter's vectors are
        // counted, and a narrow
        // filter, or a short answer at the largest request, is scored by an exact scan.
        let mut fetch = k.max(10);
        let mut candidates: Option<Vec<String>> = None;
        loop {
            let ids = self.nearest_ids(vector, fetch, Some(w.clone())).await?;
            let hits = self.scored(namespace, &ids, vector, filter).await?;
            if hits.len() < k {
                let all = match candidates.take() {
                    Some(c) => c,
                    None => self.ids_where(w.clone()).await?,
                };
                if hits.len() < all.len() {
                    if all.len() <= self.inner.config.exact_below
                        || fetch >= all.len()
                        || fetch >= self.inner.max_batch
                    {
                        return self.exact_vector(namespace, &all, vector, filter, k).await;
                    }
                    candidates = Some(all);
                    fetch = (fetch * 4).min(self.inner.max_batch);
                    continue;
                }
            }
            return Ok(best(hits, k));
        }
    }
}

impl ChromaStore {
    /// The vector leg without a `where`: the graph's best `max(4k, 40)` of the whole
    /// collection, read back and checked against the namespace and the filter. `None` when
    /// fewer than `k` pass (then the filter decides which records are candidates); otherwise
    /// the `k` best that pass, which are the filtered answer as far as the graph's order
    /// holds (a record it left out ranks below the ones it returned).
    async fn vector_unfiltered(
        &self,
        namespace: &str,
        vector: &[f32],
        filter: &Filter,
        k: usize,
    ) -> Result<Option<Vec<SearchHit>>> {
        let n = (4 * k).max(40).min(self.inner.max_batch.max(1));
        let ids = self.nearest_ids(vector, n, None).await?;
        let hits = self.scored(namespace, &ids, vector, filter).await?;
        Ok((hits.len() >= k).then(|| best(hits, k)))
    }

    /// The ids of the index's `n` nearest records to `vector`, among those `where_metadata`
    /// admits (all of them when it is `None`), nearest first.
    async fn nearest_ids(
        &self,
        vector: &[f32],
        n: usize,
        where_metadata: Option<Json>,
    ) -> Result<Vec<String>> {
        self.check_open()?;
        let options = QueryOptions {
            query_embeddings: Some(vec![vector.to_vec()]),
            query_texts: None,
            n_results: Some(n),
            where_metadata,
            where_document: None,
            include: Some(vec!["distances"]),
        };
        let r = timed(
            self.timeout(),
            "query",
            self.inner.index.query(options, None),
        )
        .await?;
        Ok(r.ids.into_iter().next().unwrap_or_default())
    }

    /// The records of `ids` that are items of `namespace` with a vector and pass `filter`,
    /// scored by exact cosine with `vector` (unordered).
    async fn scored(
        &self,
        namespace: &str,
        ids: &[String],
        vector: &[f32],
        filter: &Filter,
    ) -> Result<Vec<SearchHit>> {
        let now = filter.effective_now();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let rows = self.rows_by_id(&refs).await?;
        let mut hits = Vec::with_capacity(rows.len());
        for row in rows.values() {
            let item = row.item()?;
            if item.namespace != namespace || !filter.matches(&item, now) {
                continue;
            }
            let Some(e) = &item.embedding else { continue };
            let score = cosine(vector, &e.vector);
            hits.push(leg_hit(item, score, RankedBy::Vector));
        }
        Ok(hits)
    }

    /// Exact cosine over the given records, best first, ties by id.
    async fn exact_vector(
        &self,
        namespace: &str,
        ids: &[String],
        vector: &[f32],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<SearchHit>> {
        Ok(best(self.scored(namespace, ids, vector, filter).await?, k))
    }
}

/// The `k` best of `hits`, best first, ties by id.
fn best(mut hits: Vec<SearchHit>, k: usize) -> Vec<SearchHit> {
    sort_hits(&mut hits);
    hits.truncate(k);
    hits
}

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

//! The store's handle on Chroma: connecting, the layout check, the model pin and the request
//! time limit every call runs under.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chromadb::client::{ChromaAuthMethod, ChromaClient, ChromaClientOptions};
use chromadb::collection::{ChromaCollection, CollectionEntries, GetOptions};
use memlayer_store::limits;
use memlayer_store::{EmbeddingPin, Error, ErrorKind, Result};
use serde_json::{Map, Value as Json, json};

use crate::config::ChromaConfig;
use crate::error::corrupt;
use crate::records::timed;

pub(crate) const BACKEND: &str = "chroma";
pub(crate) const PIN_ID: &str = "pin";
/// The meta record saying the item records' ids hold their namespace (decisions/0007).
pub(crate) const LAYOUT_ID: &str = "layout";

/// A memory store in Chroma.
///
/// Three collections: `items` holds every item (the truth: document = content, metadata =
/// filter fields, BM25 statistics, the item and its vector), `index` holds the vectors with the
/// filter fields for pre-filtered HNSW search, `meta` holds the model pin and per-namespace
/// counts. Writes of one store are serialised in-process (Chroma has no conditional write).
#[derive(Clone)]
pub struct ChromaStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: ChromaConfig,
    pub(crate) client: ChromaClient,
    pub(crate) items: ChromaCollection,
    pub(crate) index: ChromaCollection,
    pub(crate) meta: ChromaCollection,
    pub(crate) http: reqwest::Client,
    pub(crate) max_batch: usize,
    pub(crate) write: tokio::sync::Mutex<()>,
    pub(crate) pin: Mutex<Option<EmbeddingPin>>,
    pub(crate) closed: AtomicBool,
}

impl std::fmt::Debug for ChromaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChromaStore")
            .field("url", &memlayer_store::redact_url(&self.inner.config.url))
            .field("prefix", &self.inner.config.prefix)
            .finish()
    }
}

pub(crate) fn tag(e: Error, operation: &'static str) -> Error {
    e.with_backend(BACKEND).with_operation(operation)
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
    pub(crate) async fn check_layout(&self) -> Result<()> {
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

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::Unavailable, "the store is closed")
                .with_backend(BACKEND)
                .set_temporary(false));
        }
        Ok(())
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.inner.config.timeout
    }
}

impl ChromaStore {
    /// The pinned model: cached once known (a pin never changes).
    pub(crate) async fn load_pin(&self) -> Result<Option<EmbeddingPin>> {
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

    pub(crate) fn cached_pin(&self) -> Option<EmbeddingPin> {
        self.inner.pin.lock().ok().and_then(|p| p.clone())
    }

    /// Pins the model: `add` never overwrites in Chroma, so across processes the first pin
    /// wins, and the pin read back is the one every writer then checks against.
    pub(crate) async fn pin(&self, want: &EmbeddingPin) -> Result<EmbeddingPin> {
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
}

pub(crate) fn unavailable(url: &str, e: reqwest::Error) -> Error {
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

//! A store that connects on first use, once, under a lock; a failed connect is retried by the
//! next call rather than remembered.

use async_trait::async_trait;
use memlayer_store::types::{MemoryItem, Timestamp};
use memlayer_store::{
    Capabilities, ClearRequest, CountOptions, DynStore, EmbeddingPin, ExpiredItem, ListRequest,
    MemoryStore, Page, Result, SearchRequest, SearchResults,
};
use tokio::sync::OnceCell;

use crate::Config;

/// A network store opened on first use.
#[derive(Debug)]
pub struct LazyStore {
    config: Config,
    backend: &'static str,
    inner: OnceCell<DynStore>,
}

impl LazyStore {
    pub(crate) fn new(config: Config, backend: &'static str) -> Self {
        LazyStore {
            config,
            backend,
            inner: OnceCell::new(),
        }
    }

    /// The store, connecting now if this is the first use.
    ///
    /// # Errors
    /// The backend's connect errors (`Unavailable`, `ConfigInvalid`).
    pub async fn connected(&self) -> Result<&DynStore> {
        self.inner
            .get_or_try_init(|| crate::connect_now(&self.config))
            .await
    }

    /// Whether the first connect has happened.
    pub fn is_connected(&self) -> bool {
        self.inner.initialized()
    }
}

#[async_trait]
impl MemoryStore for LazyStore {
    fn backend(&self) -> &'static str {
        self.backend
    }

    /// The connected store's capabilities; before the first connect, the shared defaults with
    /// the backend's known differences (see `docs/backends.md`).
    fn capabilities(&self) -> Capabilities {
        match self.inner.get() {
            Some(s) => s.capabilities(),
            None => {
                let mut c = Capabilities::full();
                c.approximate_vectors = true;
                c
            }
        }
    }

    async fn upsert(&self, item: MemoryItem) -> Result<MemoryItem> {
        self.connected().await?.upsert(item).await
    }

    async fn upsert_many(&self, items: Vec<MemoryItem>) -> Result<Vec<MemoryItem>> {
        self.connected().await?.upsert_many(items).await
    }

    async fn get(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        self.connected().await?.get(namespace, id).await
    }

    async fn delete(&self, namespace: &str, id: &str) -> Result<()> {
        self.connected().await?.delete(namespace, id).await
    }

    async fn clear(&self, namespace: &str, request: &ClearRequest) -> Result<u64> {
        self.connected().await?.clear(namespace, request).await
    }

    async fn count(&self, namespace: &str, options: CountOptions) -> Result<u64> {
        self.connected().await?.count(namespace, options).await
    }

    async fn search(&self, namespace: &str, request: &SearchRequest) -> Result<SearchResults> {
        self.connected().await?.search(namespace, request).await
    }

    async fn list(&self, namespace: &str, request: &ListRequest) -> Result<Page> {
        self.connected().await?.list(namespace, request).await
    }

    async fn supersede(&self, namespace: &str, id: &str, by: &str) -> Result<MemoryItem> {
        self.connected().await?.supersede(namespace, id, by).await
    }

    async fn restore(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        self.connected().await?.restore(namespace, id).await
    }

    async fn predecessors(&self, namespace: &str, id: &str) -> Result<Vec<MemoryItem>> {
        self.connected().await?.predecessors(namespace, id).await
    }

    async fn reinforce(&self, namespace: &str, ids: &[String], at: Timestamp) -> Result<u64> {
        self.connected().await?.reinforce(namespace, ids, at).await
    }

    async fn decay(
        &self,
        namespace: &str,
        idle_before: Timestamp,
        factor: f32,
        floor: f32,
    ) -> Result<u64> {
        self.connected()
            .await?
            .decay(namespace, idle_before, factor, floor)
            .await
    }

    async fn list_expired(&self, now: Timestamp, limit: usize) -> Result<Vec<ExpiredItem>> {
        self.connected().await?.list_expired(now, limit).await
    }

    async fn delete_if_expired_before(
        &self,
        namespace: &str,
        id: &str,
        cutoff: Timestamp,
    ) -> Result<()> {
        self.connected()
            .await?
            .delete_if_expired_before(namespace, id, cutoff)
            .await
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        self.connected().await?.list_namespaces().await
    }

    async fn delete_namespace(&self, namespace: &str) -> Result<u64> {
        self.connected().await?.delete_namespace(namespace).await
    }

    async fn reassign(&self, ids: &[String], from: &str, to: &str) -> Result<u64> {
        self.connected().await?.reassign(ids, from, to).await
    }

    async fn embedding_pin(&self) -> Result<Option<EmbeddingPin>> {
        self.connected().await?.embedding_pin().await
    }

    async fn ping(&self) -> Result<()> {
        self.connected().await?.ping().await
    }

    async fn scrub(&self, namespaces: &[String]) -> Result<Vec<String>> {
        self.connected().await?.scrub(namespaces).await
    }

    /// Closes the store if it was ever connected.
    async fn close(&self) -> Result<()> {
        match self.inner.get() {
            Some(s) => s.close().await,
            None => Ok(()),
        }
    }
}

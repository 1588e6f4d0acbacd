//! Store layers: a type that wraps a store and changes some of its operations (embedding,
//! events, metrics, a lazy connection) implements [`Layer`], and gets [`MemoryStore`] from
//! the one blanket implementation here.
//!
//! Every operation of [`Layer`] passes through to the store beneath unless the layer
//! overrides it, so a wrapper can never drop an operation by forgetting it, nor fall back to
//! a provided method of the trait (`upsert` as a batch of one, `scrub` cleaning nothing) that
//! the store beneath implements otherwise. The blanket implementation lists every method of
//! the trait, which `clippy::missing_trait_methods` enforces, and reports each call to
//! [`Layer::observe`]. The conformance suite runs over a stack of the workspace's layers.

use std::fmt::Debug;
use std::future::Future;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::types::{MemoryItem, Timestamp};
use crate::{
    Capabilities, ClearRequest, CountOptions, DynStore, EmbeddingPin, Error, ErrorKind,
    ExpiredItem, ListRequest, MemoryStore, Page, Result, SearchRequest, SearchResults,
};

/// A store wrapper: name the store beneath, override what the layer changes.
#[async_trait]
pub trait Layer: Send + Sync + Debug + 'static {
    /// The store beneath, when it is ready without waiting (a lazy layer's, once connected).
    fn beneath(&self) -> Option<&DynStore>;

    /// The store beneath, connecting first if the layer connects lazily.
    ///
    /// # Errors
    /// `Unavailable` when there is no store beneath yet; a lazy layer's connect errors.
    async fn connect_beneath(&self) -> Result<&DynStore> {
        self.beneath().ok_or_else(|| {
            Error::new(
                ErrorKind::Unavailable,
                "the store beneath this layer is not ready",
            )
        })
    }

    /// Called after every operation with its name, its duration and whether it succeeded.
    fn observe(&self, operation: &'static str, elapsed: Duration, ok: bool) {
        let _ = (operation, elapsed, ok);
    }

    /// [`MemoryStore::backend`]: the store beneath's.
    fn backend(&self) -> &'static str {
        self.beneath().map_or("unconnected", |s| s.backend())
    }

    /// [`MemoryStore::capabilities`]: the store beneath's.
    fn capabilities(&self) -> Capabilities {
        self.beneath()
            .map_or_else(Capabilities::full, |s| s.capabilities())
    }

    /// [`MemoryStore::upsert`]; passes through by default.
    async fn upsert(&self, item: MemoryItem) -> Result<MemoryItem> {
        self.connect_beneath().await?.upsert(item).await
    }

    /// [`MemoryStore::upsert_many`]; passes through by default.
    async fn upsert_many(&self, items: Vec<MemoryItem>) -> Result<Vec<MemoryItem>> {
        self.connect_beneath().await?.upsert_many(items).await
    }

    /// [`MemoryStore::get`]; passes through by default.
    async fn get(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        self.connect_beneath().await?.get(namespace, id).await
    }

    /// [`MemoryStore::delete`]; passes through by default.
    async fn delete(&self, namespace: &str, id: &str) -> Result<()> {
        self.connect_beneath().await?.delete(namespace, id).await
    }

    /// [`MemoryStore::clear`]; passes through by default.
    async fn clear(&self, namespace: &str, request: &ClearRequest) -> Result<u64> {
        self.connect_beneath()
            .await?
            .clear(namespace, request)
            .await
    }

    /// [`MemoryStore::count`]; passes through by default.
    async fn count(&self, namespace: &str, options: CountOptions) -> Result<u64> {
        self.connect_beneath()
            .await?
            .count(namespace, options)
            .await
    }

    /// [`MemoryStore::search`]; passes through by default.
    async fn search(&self, namespace: &str, request: &SearchRequest) -> Result<SearchResults> {
        self.connect_beneath()
            .await?
            .search(namespace, request)
            .await
    }

    /// [`MemoryStore::list`]; passes through by default.
    async fn list(&self, namespace: &str, request: &ListRequest) -> Result<Page> {
        self.connect_beneath().await?.list(namespace, request).await
    }

    /// [`MemoryStore::supersede`]; passes through by default.
    async fn supersede(&self, namespace: &str, id: &str, by: &str) -> Result<MemoryItem> {
        self.connect_beneath()
            .await?
            .supersede(namespace, id, by)
            .await
    }

    /// [`MemoryStore::restore`]; passes through by default.
    async fn restore(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        self.connect_beneath().await?.restore(namespace, id).await
    }

    /// [`MemoryStore::predecessors`]; passes through by default.
    async fn predecessors(&self, namespace: &str, id: &str) -> Result<Vec<MemoryItem>> {
        self.connect_beneath()
            .await?
            .predecessors(namespace, id)
            .await
    }

    /// [`MemoryStore::reinforce`]; passes through by default.
    async fn reinforce(&self, namespace: &str, ids: &[String], at: Timestamp) -> Result<u64> {
        self.connect_beneath()
            .await?
            .reinforce(namespace, ids, at)
            .await
    }

    /// [`MemoryStore::decay`]; passes through by default.
    async fn decay(
        &self,
        namespace: &str,
        idle_before: Timestamp,
        factor: f32,
        floor: f32,
    ) -> Result<u64> {
        self.connect_beneath()
            .await?
            .decay(namespace, idle_before, factor, floor)
            .await
    }

    /// [`MemoryStore::list_expired`]; passes through by default.
    async fn list_expired(&self, now: Timestamp, limit: usize) -> Result<Vec<ExpiredItem>> {
        self.connect_beneath().await?.list_expired(now, limit).await
    }

    /// [`MemoryStore::delete_if_expired_before`]; passes through by default.
    async fn delete_if_expired_before(
        &self,
        namespace: &str,
        id: &str,
        cutoff: Timestamp,
    ) -> Result<()> {
        self.connect_beneath()
            .await?
            .delete_if_expired_before(namespace, id, cutoff)
            .await
    }

    /// [`MemoryStore::list_namespaces`]; passes through by default.
    async fn list_namespaces(&self) -> Result<Vec<String>> {
        self.connect_beneath().await?.list_namespaces().await
    }

    /// [`MemoryStore::delete_namespace`]; passes through by default.
    async fn delete_namespace(&self, namespace: &str) -> Result<u64> {
        self.connect_beneath()
            .await?
            .delete_namespace(namespace)
            .await
    }

    /// [`MemoryStore::reassign`]; passes through by default.
    async fn reassign(&self, ids: &[String], from: &str, to: &str) -> Result<u64> {
        self.connect_beneath().await?.reassign(ids, from, to).await
    }

    /// [`MemoryStore::embedding_pin`]; passes through by default.
    async fn embedding_pin(&self) -> Result<Option<EmbeddingPin>> {
        self.connect_beneath().await?.embedding_pin().await
    }

    /// [`MemoryStore::scrub`]; passes through by default.
    async fn scrub(&self, namespaces: &[String]) -> Result<Vec<String>> {
        self.connect_beneath().await?.scrub(namespaces).await
    }

    /// [`MemoryStore::ping`]; passes through by default.
    async fn ping(&self) -> Result<()> {
        self.connect_beneath().await?.ping().await
    }

    /// [`MemoryStore::close`]; passes through by default.
    async fn close(&self) -> Result<()> {
        self.connect_beneath().await?.close().await
    }
}

/// Runs `call`, then reports it to the layer's [`Layer::observe`].
async fn observed<L, T>(
    layer: &L,
    operation: &'static str,
    call: impl Future<Output = Result<T>>,
) -> Result<T>
where
    L: Layer + ?Sized,
{
    let started = Instant::now();
    let out = call.await;
    layer.observe(operation, started.elapsed(), out.is_ok());
    out
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<L: Layer> MemoryStore for L {
    fn backend(&self) -> &'static str {
        Layer::backend(self)
    }

    fn capabilities(&self) -> Capabilities {
        Layer::capabilities(self)
    }

    async fn upsert(&self, item: MemoryItem) -> Result<MemoryItem> {
        observed(self, "upsert", Layer::upsert(self, item)).await
    }

    async fn upsert_many(&self, items: Vec<MemoryItem>) -> Result<Vec<MemoryItem>> {
        observed(self, "upsert_many", Layer::upsert_many(self, items)).await
    }

    async fn get(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        observed(self, "get", Layer::get(self, namespace, id)).await
    }

    async fn delete(&self, namespace: &str, id: &str) -> Result<()> {
        observed(self, "delete", Layer::delete(self, namespace, id)).await
    }

    async fn clear(&self, namespace: &str, request: &ClearRequest) -> Result<u64> {
        observed(self, "clear", Layer::clear(self, namespace, request)).await
    }

    async fn count(&self, namespace: &str, options: CountOptions) -> Result<u64> {
        observed(self, "count", Layer::count(self, namespace, options)).await
    }

    async fn search(&self, namespace: &str, request: &SearchRequest) -> Result<SearchResults> {
        observed(self, "search", Layer::search(self, namespace, request)).await
    }

    async fn list(&self, namespace: &str, request: &ListRequest) -> Result<Page> {
        observed(self, "list", Layer::list(self, namespace, request)).await
    }

    async fn supersede(&self, namespace: &str, id: &str, by: &str) -> Result<MemoryItem> {
        observed(self, "supersede", Layer::supersede(self, namespace, id, by)).await
    }

    async fn restore(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        observed(self, "restore", Layer::restore(self, namespace, id)).await
    }

    async fn predecessors(&self, namespace: &str, id: &str) -> Result<Vec<MemoryItem>> {
        observed(
            self,
            "predecessors",
            Layer::predecessors(self, namespace, id),
        )
        .await
    }

    async fn reinforce(&self, namespace: &str, ids: &[String], at: Timestamp) -> Result<u64> {
        observed(
            self,
            "reinforce",
            Layer::reinforce(self, namespace, ids, at),
        )
        .await
    }

    async fn decay(
        &self,
        namespace: &str,
        idle_before: Timestamp,
        factor: f32,
        floor: f32,
    ) -> Result<u64> {
        observed(
            self,
            "decay",
            Layer::decay(self, namespace, idle_before, factor, floor),
        )
        .await
    }

    async fn list_expired(&self, now: Timestamp, limit: usize) -> Result<Vec<ExpiredItem>> {
        observed(self, "list_expired", Layer::list_expired(self, now, limit)).await
    }

    async fn delete_if_expired_before(
        &self,
        namespace: &str,
        id: &str,
        cutoff: Timestamp,
    ) -> Result<()> {
        observed(
            self,
            "delete_if_expired_before",
            Layer::delete_if_expired_before(self, namespace, id, cutoff),
        )
        .await
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        observed(self, "list_namespaces", Layer::list_namespaces(self)).await
    }

    async fn delete_namespace(&self, namespace: &str) -> Result<u64> {
        observed(
            self,
            "delete_namespace",
            Layer::delete_namespace(self, namespace),
        )
        .await
    }

    async fn reassign(&self, ids: &[String], from: &str, to: &str) -> Result<u64> {
        observed(self, "reassign", Layer::reassign(self, ids, from, to)).await
    }

    async fn embedding_pin(&self) -> Result<Option<EmbeddingPin>> {
        observed(self, "embedding_pin", Layer::embedding_pin(self)).await
    }

    async fn scrub(&self, namespaces: &[String]) -> Result<Vec<String>> {
        observed(self, "scrub", Layer::scrub(self, namespaces)).await
    }

    async fn ping(&self) -> Result<()> {
        observed(self, "ping", Layer::ping(self)).await
    }

    async fn close(&self) -> Result<()> {
        observed(self, "close", Layer::close(self)).await
    }
}

//! A store wrapper that times every operation into the server's metrics, labelled by backend
//! and operation.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use memlayer::{
    Capabilities, ClearRequest, CountOptions, DynStore, EmbeddingPin, ExpiredItem, ListRequest,
    MemoryItem, MemoryStore, Page, Result, SearchRequest, SearchResults, Timestamp,
};

use crate::metrics::Metrics;

/// Times `$call` as operation `$op`.
macro_rules! timed {
    ($self:ident, $op:literal, $call:expr) => {{
        let started = Instant::now();
        let r = $call;
        $self
            .metrics
            .observe_store($self.inner.backend(), $op, started.elapsed(), r.is_ok());
        r
    }};
}

#[derive(Debug)]
pub(crate) struct MeteredStore {
    pub(crate) inner: DynStore,
    pub(crate) metrics: Arc<Metrics>,
}

#[async_trait]
impl MemoryStore for MeteredStore {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn upsert(&self, item: MemoryItem) -> Result<MemoryItem> {
        timed!(self, "upsert", self.inner.upsert(item).await)
    }

    async fn upsert_many(&self, items: Vec<MemoryItem>) -> Result<Vec<MemoryItem>> {
        timed!(self, "upsert_many", self.inner.upsert_many(items).await)
    }

    async fn get(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        timed!(self, "get", self.inner.get(namespace, id).await)
    }

    async fn delete(&self, namespace: &str, id: &str) -> Result<()> {
        timed!(self, "delete", self.inner.delete(namespace, id).await)
    }

    async fn clear(&self, namespace: &str, request: &ClearRequest) -> Result<u64> {
        timed!(self, "clear", self.inner.clear(namespace, request).await)
    }

    async fn count(&self, namespace: &str, options: CountOptions) -> Result<u64> {
        timed!(self, "count", self.inner.count(namespace, options).await)
    }

    async fn search(&self, namespace: &str, request: &SearchRequest) -> Result<SearchResults> {
        timed!(self, "search", self.inner.search(namespace, request).await)
    }

    async fn list(&self, namespace: &str, request: &ListRequest) -> Result<Page> {
        timed!(self, "list", self.inner.list(namespace, request).await)
    }

    async fn supersede(&self, namespace: &str, id: &str, by: &str) -> Result<MemoryItem> {
        timed!(
            self,
            "supersede",
            self.inner.supersede(namespace, id, by).await
        )
    }

    async fn restore(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        timed!(self, "restore", self.inner.restore(namespace, id).await)
    }

    async fn predecessors(&self, namespace: &str, id: &str) -> Result<Vec<MemoryItem>> {
        timed!(
            self,
            "predecessors",
            self.inner.predecessors(namespace, id).await
        )
    }

    async fn reinforce(&self, namespace: &str, ids: &[String], at: Timestamp) -> Result<u64> {
        timed!(
            self,
            "reinforce",
            self.inner.reinforce(namespace, ids, at).await
        )
    }

    async fn decay(
        &self,
        namespace: &str,
        idle_before: Timestamp,
        factor: f32,
        floor: f32,
    ) -> Result<u64> {
        timed!(
            self,
            "decay",
            self.inner
                .decay(namespace, idle_before, factor, floor)
                .await
        )
    }

    async fn list_expired(&self, now: Timestamp, limit: usize) -> Result<Vec<ExpiredItem>> {
        timed!(
            self,
            "list_expired",
            self.inner.list_expired(now, limit).await
        )
    }

    async fn delete_if_expired_before(
        &self,
        namespace: &str,
        id: &str,
        cutoff: Timestamp,
    ) -> Result<()> {
        timed!(
            self,
            "delete_if_expired_before",
            self.inner
                .delete_if_expired_before(namespace, id, cutoff)
                .await
        )
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        timed!(self, "list_namespaces", self.inner.list_namespaces().await)
    }

    async fn delete_namespace(&self, namespace: &str) -> Result<u64> {
        timed!(
            self,
            "delete_namespace",
            self.inner.delete_namespace(namespace).await
        )
    }

    async fn reassign(&self, ids: &[String], from: &str, to: &str) -> Result<u64> {
        timed!(self, "reassign", self.inner.reassign(ids, from, to).await)
    }

    async fn embedding_pin(&self) -> Result<Option<EmbeddingPin>> {
        timed!(self, "embedding_pin", self.inner.embedding_pin().await)
    }

    async fn ping(&self) -> Result<()> {
        timed!(self, "ping", self.inner.ping().await)
    }

    async fn scrub(&self, namespaces: &[String]) -> Result<Vec<String>> {
        timed!(self, "scrub", self.inner.scrub(namespaces).await)
    }

    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}

//! A forget stopped part way by a failing store reports exactly what it deleted before the
//! failure, and a rerun finishes the erasure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use memlayer::memory::InMemoryStore;
use memlayer::{
    Capabilities, ClearRequest, CountOptions, DynStore, EmbeddingPin, Error, ErrorKind,
    ExpiredItem, Kind, ListRequest, MemoryItem, MemoryStore, Page, Result, SearchRequest,
    SearchResults, Timestamp,
};

/// The memory backend, with deletes failing once `allowed` of them have succeeded.
#[derive(Debug)]
struct FailingDeletes {
    inner: InMemoryStore,
    allowed: AtomicUsize,
}

#[async_trait]
impl MemoryStore for FailingDeletes {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    async fn upsert_many(&self, items: Vec<MemoryItem>) -> Result<Vec<MemoryItem>> {
        self.inner.upsert_many(items).await
    }
    async fn get(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        self.inner.get(namespace, id).await
    }
    async fn delete(&self, namespace: &str, id: &str) -> Result<()> {
        let left = self.allowed.load(Ordering::SeqCst);
        if left == 0 {
            return Err(Error::new(ErrorKind::Unavailable, "the disk went away"));
        }
        self.allowed.store(left - 1, Ordering::SeqCst);
        self.inner.delete(namespace, id).await
    }
    async fn clear(&self, namespace: &str, request: &ClearRequest) -> Result<u64> {
        self.inner.clear(namespace, request).await
    }
    async fn count(&self, namespace: &str, options: CountOptions) -> Result<u64> {
        self.inner.count(namespace, options).await
    }
    async fn search(&self, namespace: &str, request: &SearchRequest) -> Result<SearchResults> {
        self.inner.search(namespace, request).await
    }
    async fn list(&self, namespace: &str, request: &ListRequest) -> Result<Page> {
        self.inner.list(namespace, request).await
    }
    async fn supersede(&self, namespace: &str, id: &str, by: &str) -> Result<MemoryItem> {
        self.inner.supersede(namespace, id, by).await
    }
    async fn restore(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        self.inner.restore(namespace, id).await
    }
    async fn predecessors(&self, namespace: &str, id: &str) -> Result<Vec<MemoryItem>> {
        self.inner.predecessors(namespace, id).await
    }
    async fn reinforce(&self, namespace: &str, ids: &[String], at: Timestamp) -> Result<u64> {
        self.inner.reinforce(namespace, ids, at).await
    }
    async fn decay(
        &self,
        namespace: &str,
        idle: Timestamp,
        factor: f32,
        floor: f32,
    ) -> Result<u64> {
        self.inner.decay(namespace, idle, factor, floor).await
    }
    async fn list_expired(&self, now: Timestamp, limit: usize) -> Result<Vec<ExpiredItem>> {
        self.inner.list_expired(now, limit).await
    }
    async fn delete_if_expired_before(
        &self,
        namespace: &str,
        id: &str,
        cutoff: Timestamp,
    ) -> Result<()> {
        self.inner
            .delete_if_expired_before(namespace, id, cutoff)
            .await
    }
    async fn list_namespaces(&self) -> Result<Vec<String>> {
        self.inner.list_namespaces().await
    }
    async fn delete_namespace(&self, namespace: &str) -> Result<u64> {
        self.inner.delete_namespace(namespace).await
    }
    async fn reassign(&self, ids: &[String], from: &str, to: &str) -> Result<u64> {
        self.inner.reassign(ids, from, to).await
    }
    async fn embedding_pin(&self) -> Result<Option<EmbeddingPin>> {
        self.inner.embedding_pin().await
    }
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
    async fn close(&self) -> Result<()> {
        self.inner.close().await
    }
}

#[tokio::test]
async fn a_forget_stopped_part_way_reports_what_it_deleted() {
    let store = Arc::new(FailingDeletes {
        inner: InMemoryStore::new(),
        allowed: AtomicUsize::new(3),
    });
    for ns in ["a", "b"] {
        for i in 0..2 {
            store
                .upsert(
                    MemoryItem::new(ns, Kind::Fact, format!("alice fact {i}")).with_user("alice"),
                )
                .await
                .unwrap();
        }
    }
    let dyn_store: DynStore = store.clone();
    let namespaces = vec!["a".to_owned(), "b".to_owned()];
    let done = memlayer_cli::forget::forget_user(&dyn_store, "alice", &namespaces).await;
    assert_eq!(
        done.items(),
        3,
        "the three deletes that succeeded are counted"
    );
    assert_eq!(done.report["a"].items, 2);
    assert_eq!(done.report["b"].items, 1);
    assert_eq!(
        done.failure.as_ref().map(Error::kind),
        Some(ErrorKind::Unavailable)
    );
    // The rest is still stored, and a rerun finishes.
    let left = store.count("b", CountOptions::all()).await.unwrap();
    assert_eq!(left, 1);
    store.allowed.store(10, Ordering::SeqCst);
    let rest = memlayer_cli::forget::forget_user(&dyn_store, "alice", &namespaces).await;
    assert!(rest.failure.is_none());
    assert_eq!(rest.items(), 1);
}

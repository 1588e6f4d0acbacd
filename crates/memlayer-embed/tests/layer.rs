//! The embedding cache and the store layer that embeds on write and on query.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use memlayer_embed::{CachedEmbedder, DynEmbedder, Embedder, EmbeddingStore, HashEmbedder};
use memlayer_store::types::{Kind, MemoryItem};
use memlayer_store::{DynStore, ErrorKind, MemoryStore, RankedBy, SearchRequest};
use memlayer_store_memory::InMemoryStore;

/// Counts every text it is asked to embed.
#[derive(Debug, Default)]
struct Counting {
    texts: AtomicUsize,
    inner: HashEmbedder,
}

#[async_trait]
impl Embedder for Counting {
    fn model_id(&self) -> &str {
        self.inner.model_id()
    }
    fn dimension(&self) -> usize {
        self.inner.dimension()
    }
    fn max_batch(&self) -> usize {
        3
    }
    async fn embed(&self, texts: &[String]) -> memlayer_store::Result<Vec<Vec<f32>>> {
        assert!(texts.len() <= 3, "batches respect max_batch");
        self.texts.fetch_add(texts.len(), Ordering::SeqCst);
        self.inner.embed(texts).await
    }
}

#[tokio::test]
async fn cache_never_embeds_a_text_twice() {
    let counting = Arc::new(Counting::default());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cache.bin");
    let cache = CachedEmbedder::with_file(counting.clone(), 100, &file).unwrap();
    let texts: Vec<String> = ["a b", "c d", "a b", "e f", "g h"]
        .map(String::from)
        .to_vec();
    let first = cache.embed(&texts).await.unwrap();
    assert_eq!(
        counting.texts.load(Ordering::SeqCst),
        4,
        "the repeated text is embedded once"
    );
    assert_eq!(first[0], first[2]);
    let again = cache.embed(&texts).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(counting.texts.load(Ordering::SeqCst), 4);
    assert_eq!(cache.stats(), (6, 4));
    drop(cache);
    // A new process (a new cache over the same file) still embeds nothing.
    let reopened = CachedEmbedder::with_file(counting.clone(), 100, &file).unwrap();
    assert_eq!(reopened.embed(&texts).await.unwrap(), first);
    assert_eq!(counting.texts.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn store_layer_embeds_items_and_queries() {
    let raw: DynStore = Arc::new(InMemoryStore::new());
    let embedder: DynEmbedder = Arc::new(HashEmbedder::new());
    let store = EmbeddingStore::new(raw.clone(), embedder.clone())
        .await
        .unwrap();
    store
        .upsert_many(vec![
            MemoryItem::new("ns", Kind::Fact, "The user owns two cats").with_id("cats"),
            MemoryItem::new("ns", Kind::Fact, "Quarterly revenue grew").with_id("rev"),
            MemoryItem::new("ns", Kind::Fact, "given vector")
                .with_id("given")
                .with_embedding(embedder.model_id(), vec![0.0; 384]),
        ])
        .await
        .unwrap();
    let cats = raw.get("ns", "cats").await.unwrap();
    let e = cats.embedding.unwrap();
    assert_eq!(
        (e.model.as_str(), e.vector.len()),
        ("memlayer/hash-v1-384", 384)
    );
    assert!(
        raw.get("ns", "given")
            .await
            .unwrap()
            .embedding
            .unwrap()
            .vector
            .iter()
            .all(|x| *x == 0.0),
        "given vectors are kept"
    );
    let hits = store
        .search(
            "ns",
            &SearchRequest::new(memlayer_store::SearchMode::Vector).with_query("a cat"),
        )
        .await
        .unwrap();
    assert_eq!(hits.hits[0].item.id, "cats");
    let hybrid = store
        .search("ns", &SearchRequest::hybrid("cats"))
        .await
        .unwrap();
    assert_eq!(hybrid.hits[0].item.id, "cats");
    assert_eq!(hybrid.hits[0].ranked_by, RankedBy::Hybrid);
    assert!(hybrid.hits[0].keyword_score.is_some() && hybrid.hits[0].vector_score.is_some());
    // A store pinned to another model refuses this embedder up front.
    let other: DynEmbedder = Arc::new(HashEmbedder::with_dimension(64));
    let err = EmbeddingStore::new(raw, other).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
    assert!(
        err.to_string().contains("384") && err.to_string().contains("64"),
        "{err}"
    );
}

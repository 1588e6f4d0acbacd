use async_trait::async_trait;
use memlayer_store::types::MemoryItem;
use memlayer_store::{
    DynStore, Error, ErrorKind, Layer, Result, SearchMode, SearchRequest, SearchResults,
};

use crate::DynEmbedder;

/// A store layer that embeds: items written without a vector get one from the embedder, and
/// vector or hybrid searches with text but no vector embed the query once.
///
/// Everything else passes straight through to the wrapped store, which pins the embedder's
/// model and dimension on the first write.
#[derive(Debug, Clone)]
pub struct EmbeddingStore {
    inner: DynStore,
    embedder: DynEmbedder,
}

impl EmbeddingStore {
    /// Wraps `inner`.
    ///
    /// # Errors
    /// `ConfigInvalid` when `inner` is already pinned to another model or dimension.
    pub async fn new(inner: DynStore, embedder: DynEmbedder) -> Result<Self> {
        if let Some(pin) = inner.embedding_pin().await?
            && (pin.model != embedder.model_id() || pin.dim != embedder.dimension())
        {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!(
                    "the store is pinned to model {:?} ({} dimensions) but the embedder is {:?} ({} dimensions); re-embed the store or use the pinned model",
                    pin.model,
                    pin.dim,
                    embedder.model_id(),
                    embedder.dimension()
                ),
            ));
        }
        Ok(EmbeddingStore { inner, embedder })
    }

    /// The embedder.
    pub fn embedder(&self) -> &DynEmbedder {
        &self.embedder
    }

    /// The wrapped store.
    pub fn inner(&self) -> &DynStore {
        &self.inner
    }

    /// Validates the items, then embeds those that carry no vector.
    ///
    /// Validation comes first, so a refused item costs no embedding (a 1 MiB content is
    /// refused before anything reads it). A vector the caller sends must come from this
    /// layer's model and have its dimension: otherwise it would pin a new store to a model no
    /// query is embedded with, or fail on a pinned one after the others were embedded.
    async fn fill(&self, items: &mut [MemoryItem]) -> Result<()> {
        memlayer_store::limits::check_batch(items)?;
        for item in items.iter() {
            if let Some(e) = &item.embedding
                && (e.model != self.embedder.model_id() || e.dim() != self.embedder.dimension())
            {
                return Err(Error::invalid(
                    "embedding",
                    format!(
                        "comes from model {:?} with {} dimensions, but this store embeds with \
                         {:?} ({} dimensions); send the item without a vector and it is \
                         embedded here",
                        e.model,
                        e.dim(),
                        self.embedder.model_id(),
                        self.embedder.dimension()
                    ),
                )
                .with_context("id", &item.id));
            }
        }
        let missing: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(_, i)| i.embedding.is_none() && !i.content.trim().is_empty())
            .map(|(n, _)| n)
            .collect();
        for chunk in missing.chunks(self.embedder.max_batch().max(1)) {
            let texts: Vec<String> = chunk.iter().map(|&n| items[n].content.clone()).collect();
            let vectors = self.embedder.embed(&texts).await?;
            for (&n, v) in chunk.iter().zip(vectors) {
                items[n].embedding = Some(memlayer_store::types::Embedding::new(
                    self.embedder.model_id(),
                    v,
                ));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Layer for EmbeddingStore {
    fn beneath(&self) -> Option<&DynStore> {
        Some(&self.inner)
    }

    async fn upsert(&self, item: MemoryItem) -> Result<MemoryItem> {
        let mut items = [item];
        self.fill(&mut items).await?;
        let [item] = items;
        self.inner.upsert(item).await
    }

    async fn upsert_many(&self, mut items: Vec<MemoryItem>) -> Result<Vec<MemoryItem>> {
        self.fill(&mut items).await?;
        self.inner.upsert_many(items).await
    }

    async fn search(&self, namespace: &str, request: &SearchRequest) -> Result<SearchResults> {
        let wants_vector = matches!(request.mode, SearchMode::Vector | SearchMode::Hybrid);
        let text = request.query.as_deref().unwrap_or("").trim();
        if wants_vector && request.vector.is_none() && !text.is_empty() {
            let mut request = request.clone();
            let v = self.embedder.embed(&[text.to_owned()]).await?;
            request.vector = v.into_iter().next();
            return self.inner.search(namespace, &request).await;
        }
        self.inner.search(namespace, request).await
    }
}

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use memlayer_types::{MemoryItem, Timestamp};

use crate::{
    Capabilities, ClearRequest, CountOptions, ExpiredItem, Filter, ListRequest, Page, Result,
    SearchRequest, SearchResults,
};

/// The pinned embedding model of a store: every vector it holds comes from this model.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EmbeddingPin {
    /// The model id.
    pub model: String,
    /// The vector dimension.
    pub dim: usize,
}

/// A memory store: one namespace-partitioned collection of memory items.
///
/// Every backend behaves identically; `memlayer-conformance` proves it. Every method names the
/// namespace it works on (except the cross-namespace ones), and an id that lives in another
/// namespace is invisible.
#[async_trait]
pub trait MemoryStore: Send + Sync + Debug + 'static {
    /// The short backend id: `memory`, `sqlite`, `postgres`, `redis` or `chroma`.
    fn backend(&self) -> &'static str;

    /// What this backend can do.
    fn capabilities(&self) -> Capabilities;

    /// Inserts or replaces one item, returning it as stored.
    ///
    /// # Behavior
    /// - A new id gets version 1; an existing id keeps its `created_at` and gets `version + 1`
    ///   and a later `updated_at`; a soft-deleted id is revived.
    /// - An item without `expires_at` gets its tier's default time to live.
    /// - The first embedding pins the store's model and dimension.
    ///
    /// # Errors
    /// - `InvalidInput` for an empty content, out-of-range scores, non-finite vector
    ///   components, a dimension or model other than the pinned one, an illegal status move.
    /// - `Conflict` when the id exists in another namespace; nothing is written.
    ///
    /// The provided implementation is a batch of one.
    async fn upsert(&self, item: MemoryItem) -> Result<MemoryItem> {
        let mut out = self
            .upsert_many(vec![item])
            .await
            .map_err(|e| e.with_operation("upsert"))?;
        out.pop().ok_or_else(|| {
            crate::Error::new(
                crate::ErrorKind::Unexpected,
                "a batch of one stored nothing",
            )
            .with_backend(self.backend())
            .with_operation("upsert")
        })
    }

    /// Inserts or replaces many items, returning them as stored, in order.
    ///
    /// # Behavior
    /// - All-or-nothing where `capabilities().atomic_batch`: one invalid item stores none.
    /// - An id repeated in the batch is applied in order.
    ///
    /// # Errors
    /// As [`MemoryStore::upsert`], for the first failing item; `InvalidInput` above `max_batch`.
    async fn upsert_many(&self, items: Vec<MemoryItem>) -> Result<Vec<MemoryItem>>;

    /// Reads one live item.
    ///
    /// # Errors
    /// `NotFound` when the id is missing, soft-deleted, or in another namespace.
    async fn get(&self, namespace: &str, id: &str) -> Result<MemoryItem>;

    /// Hard-deletes one item and its vector.
    ///
    /// # Errors
    /// `NotFound` when the id is missing or in another namespace (so a second delete fails).
    async fn delete(&self, namespace: &str, id: &str) -> Result<()>;

    /// Soft-deletes the live items matching the filter and returns exactly how many.
    ///
    /// # Errors
    /// `InvalidInput` when the filter selects everything and `all` is not set.
    async fn clear(&self, namespace: &str, request: &ClearRequest) -> Result<u64>;

    /// Counts items: live ones, or every one not hard-deleted.
    ///
    /// # Errors
    /// `Unavailable` and friends only.
    async fn count(&self, namespace: &str, options: CountOptions) -> Result<u64>;

    /// Searches in one of four modes, best hit first.
    ///
    /// # Behavior
    /// - `recent`: newest first by creation time, then id; pages by offset or cursor.
    /// - `keyword`: BM25; query syntax is never interpreted; no query terms gives no hits.
    /// - `vector`: cosine; vectorless items are never hits.
    /// - `hybrid`: both legs fused; when neither has a signal, recency (`RankedBy::Recency`).
    /// - The filter is applied inside the query, so `limit` hits come back when that many match.
    ///
    /// # Errors
    /// `InvalidInput` for a limit above the maximum, a bad cursor, a vector of the wrong
    /// dimension, or a vector mode request without a vector.
    async fn search(&self, namespace: &str, request: &SearchRequest) -> Result<SearchResults>;

    /// Lists items in a stable order with keyset pagination.
    ///
    /// # Behavior
    /// Ties on the sort key are broken by id in the same direction; a cursor page never repeats
    /// or skips an item, even while items are inserted.
    ///
    /// # Errors
    /// `InvalidInput` for a bad cursor or limit.
    async fn list(&self, namespace: &str, request: &ListRequest) -> Result<Page>;

    /// Marks `id` as replaced by `by`: stamps `superseded_by` and `valid_to` = now.
    ///
    /// # Errors
    /// `NotFound` when either id is not a live item of the namespace; `InvalidInput` when
    /// `id == by`.
    async fn supersede(&self, namespace: &str, id: &str, by: &str) -> Result<MemoryItem>;

    /// Undoes a supersession: clears `superseded_by` and `valid_to`.
    ///
    /// # Errors
    /// `NotFound` when the id is not a live item of the namespace.
    async fn restore(&self, namespace: &str, id: &str) -> Result<MemoryItem>;

    /// Every live item that `id` replaced, oldest first.
    ///
    /// # Errors
    /// `Unavailable` and friends only; an unknown id has no predecessors.
    async fn predecessors(&self, namespace: &str, id: &str) -> Result<Vec<MemoryItem>>;

    /// Records an access to each id: `access_count + 1`, `last_accessed_at = at`, and an
    /// expiry slid forward by the tier's time to live for items that expire.
    ///
    /// # Behavior
    /// Missing ids are ignored; returns how many items were reinforced.
    async fn reinforce(&self, namespace: &str, ids: &[String], at: Timestamp) -> Result<u64>;

    /// Decays the scores of the namespace's items idle since before `idle_before` (last
    /// access, or creation when never accessed), soft-deleted items aside.
    ///
    /// # Behavior
    /// - Each of importance and confidence above `floor` is multiplied by `factor` and never
    ///   goes below `floor`; a score at or below the floor is left as it is.
    /// - One atomic update per item, applied to its current scores, so a concurrent write is
    ///   never lost. Like `reinforce` it is bookkeeping: `version` and `updated_at` stay.
    /// - Returns how many items changed.
    ///
    /// # Errors
    /// `InvalidInput` naming `factor` or `floor` when outside 0..=1.
    async fn decay(
        &self,
        namespace: &str,
        idle_before: Timestamp,
        factor: f32,
        floor: f32,
    ) -> Result<u64>;

    /// Items of every namespace whose expiry is at or before `now`, soonest first.
    async fn list_expired(&self, now: Timestamp, limit: usize) -> Result<Vec<ExpiredItem>>;

    /// Hard-deletes `id` only if it is still expired at `cutoff` (race-safe sweeping).
    ///
    /// # Errors
    /// `NotFound` when the id is missing or no longer expired at `cutoff`.
    async fn delete_if_expired_before(
        &self,
        namespace: &str,
        id: &str,
        cutoff: Timestamp,
    ) -> Result<()>;

    /// Every namespace holding at least one item, each once, sorted.
    async fn list_namespaces(&self) -> Result<Vec<String>>;

    /// Hard-deletes a namespace with its vectors; returns how many items it held.
    async fn delete_namespace(&self, namespace: &str) -> Result<u64>;

    /// Moves the listed ids that live in `from` to `to`, vectors included; returns how many.
    async fn reassign(&self, ids: &[String], from: &str, to: &str) -> Result<u64>;

    /// The pinned embedding model, if any vector was ever stored.
    async fn embedding_pin(&self) -> Result<Option<EmbeddingPin>>;

    /// Erases what deleted items may have left in the backend's own files: saved indexes,
    /// freed pages, a write-ahead log. Run after hard deletes that must leave no copy (a
    /// `forget --user`); returns one line per thing cleaned, for the caller to report.
    ///
    /// # Behavior
    /// The provided implementation cleans nothing and says so: a backend that writes no copy
    /// of its own keeps it. Copies an engine keeps in its own logs (Postgres WAL, Redis AOF)
    /// are the engine's (`docs/security.md`).
    ///
    /// # Errors
    /// `Unavailable` and friends.
    async fn scrub(&self, namespaces: &[String]) -> Result<Vec<String>> {
        let _ = namespaces;
        Ok(vec![format!(
            "{}: no copies of its own to clean",
            self.backend()
        )])
    }

    /// Checks the backend answers.
    ///
    /// # Errors
    /// `Unavailable` when it does not.
    async fn ping(&self) -> Result<()>;

    /// Flushes and releases resources; later calls fail with `Unavailable`.
    async fn close(&self) -> Result<()>;
}

/// A shared, type-erased store: what every upper layer takes.
pub type DynStore = Arc<dyn MemoryStore>;

// Keep the trait object safe: this line stops compiling if a method breaks it.
const _: Option<&dyn MemoryStore> = None;

/// Conveniences over any [`MemoryStore`].
#[async_trait]
pub trait MemoryStoreExt: MemoryStore {
    /// Whether a live item with this id exists in the namespace.
    async fn exists(&self, namespace: &str, id: &str) -> Result<bool> {
        match self.get(namespace, id).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == crate::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Lists every item matching `filter`, following cursors to the end.
    async fn list_all(&self, namespace: &str, filter: Filter) -> Result<Vec<MemoryItem>> {
        let mut out = Vec::new();
        let mut request = ListRequest::new()
            .with_filter(filter)
            .with_limit(crate::MAX_LIMIT);
        loop {
            let page = self.list(namespace, &request).await?;
            out.extend(page.items);
            match page.next_cursor {
                Some(c) => request.cursor = Some(c),
                None => return Ok(out),
            }
        }
    }
}

impl<T: MemoryStore + ?Sized> MemoryStoreExt for T {}

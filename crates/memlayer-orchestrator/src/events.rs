//! Events: a store wrapper that tells subscribers what changed.
//!
//! [`EventStore`] is a store [`Layer`] over any [`DynStore`], so it slots in
//! wherever a store is expected; every successful write, search and clear is published on a
//! tokio broadcast channel (slow subscribers lose the oldest events and are told how many,
//! never block writers) and handed to every registered [`EventSink`].

use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use memlayer_store::types::{MemoryItem, Timestamp};
use memlayer_store::{ClearRequest, DynStore, Layer, Result, SearchRequest, SearchResults};
use tokio::sync::broadcast;

/// What happened.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum MemoryEvent {
    /// Items were written for the first time (version 1).
    Added {
        /// Namespace.
        namespace: String,
        /// Ids, in write order.
        ids: Vec<String>,
    },
    /// Existing items were replaced, superseded, restored, reinforced or moved.
    Updated {
        /// Namespace (for a move, the destination).
        namespace: String,
        /// Ids (for reinforce and reassign, the ids asked for).
        ids: Vec<String>,
    },
    /// Items were hard-deleted.
    Deleted {
        /// Namespace.
        namespace: String,
        /// Ids (empty when a whole namespace went: see `count`).
        ids: Vec<String>,
        /// How many.
        count: u64,
    },
    /// A search ran.
    Searched {
        /// Namespace.
        namespace: String,
        /// The hits' ids, best first.
        ids: Vec<String>,
    },
    /// Items were soft-deleted by a clear.
    Cleared {
        /// Namespace.
        namespace: String,
        /// How many.
        count: u64,
    },
    /// Idle items' scores decayed.
    Decayed {
        /// Namespace.
        namespace: String,
        /// How many items.
        count: u64,
    },
    /// An expired item was swept.
    Expired {
        /// Namespace.
        namespace: String,
        /// Id.
        id: String,
    },
}

/// Somewhere events are delivered to, in order, besides the broadcast channel (a log, a
/// stream). A sink's failure is its own: it never fails the store operation.
#[async_trait]
pub trait EventSink: Send + Sync + std::fmt::Debug {
    /// Delivers one event.
    async fn deliver(&self, event: &MemoryEvent);
}

/// A store layer that publishes [`MemoryEvent`]s.
#[derive(Clone, Debug)]
pub struct EventStore {
    inner: DynStore,
    sender: broadcast::Sender<MemoryEvent>,
    sinks: Arc<RwLock<Vec<Arc<dyn EventSink>>>>,
}

/// The earlier name of [`EventStore`].
#[deprecated(note = "renamed to EventStore")]
pub type MemoryEventEmitter = EventStore;

impl EventStore {
    /// Wraps `inner`; subscribers may fall up to `capacity` events behind.
    pub fn new(inner: DynStore, capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        EventStore {
            inner,
            sender,
            sinks: Arc::new(RwLock::new(Vec::new())),
        }
    }

    /// A new subscriber, seeing events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<MemoryEvent> {
        self.sender.subscribe()
    }

    /// Adds a sink.
    pub fn add_sink(&self, sink: Arc<dyn EventSink>) {
        if let Ok(mut sinks) = self.sinks.write() {
            sinks.push(sink);
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &DynStore {
        &self.inner
    }

    /// Publishes an event (the sweeper uses this for `Expired`).
    pub async fn emit(&self, event: MemoryEvent) {
        let sinks: Vec<Arc<dyn EventSink>> =
            self.sinks.read().map(|s| s.clone()).unwrap_or_default();
        for sink in sinks {
            sink.deliver(&event).await;
        }
        // No subscriber is not an error.
        let _ = self.sender.send(event);
    }

    async fn written(&self, items: &[MemoryItem]) {
        let Some(first) = items.first() else { return };
        let namespace = first.namespace.clone();
        let (added, updated): (Vec<&MemoryItem>, Vec<&MemoryItem>) =
            items.iter().partition(|i| i.version == 1);
        if !added.is_empty() {
            let ids = added.iter().map(|i| i.id.clone()).collect();
            self.emit(MemoryEvent::Added {
                namespace: namespace.clone(),
                ids,
            })
            .await;
        }
        if !updated.is_empty() {
            let ids = updated.iter().map(|i| i.id.clone()).collect();
            self.emit(MemoryEvent::Updated { namespace, ids }).await;
        }
    }

    /// The ids of `ids` that are live in `namespace`, each once.
    async fn live_in(&self, namespace: &str, ids: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for id in ids {
            if !out.contains(id) && self.inner.get(namespace, id).await.is_ok() {
                out.push(id.clone());
            }
        }
        out
    }

    async fn updated(&self, namespace: &str, ids: Vec<String>) {
        if !ids.is_empty() {
            self.emit(MemoryEvent::Updated {
                namespace: namespace.to_owned(),
                ids,
            })
            .await;
        }
    }
}

#[async_trait]
impl Layer for EventStore {
    fn beneath(&self) -> Option<&DynStore> {
        Some(&self.inner)
    }

    async fn upsert(&self, item: MemoryItem) -> Result<MemoryItem> {
        let stored = self.inner.upsert(item).await?;
        self.written(std::slice::from_ref(&stored)).await;
        Ok(stored)
    }

    async fn upsert_many(&self, items: Vec<MemoryItem>) -> Result<Vec<MemoryItem>> {
        let stored = self.inner.upsert_many(items).await?;
        // A batch may span namespaces: one pair of events per namespace.
        let mut by_ns: Vec<(String, Vec<MemoryItem>)> = Vec::new();
        for item in &stored {
            match by_ns.iter_mut().find(|(ns, _)| *ns == item.namespace) {
                Some((_, v)) => v.push(item.clone()),
                None => by_ns.push((item.namespace.clone(), vec![item.clone()])),
            }
        }
        for (_, items) in by_ns {
            self.written(&items).await;
        }
        Ok(stored)
    }

    async fn delete(&self, namespace: &str, id: &str) -> Result<()> {
        self.inner.delete(namespace, id).await?;
        self.emit(MemoryEvent::Deleted {
            namespace: namespace.to_owned(),
            ids: vec![id.to_owned()],
            count: 1,
        })
        .await;
        Ok(())
    }

    async fn clear(&self, namespace: &str, request: &ClearRequest) -> Result<u64> {
        let count = self.inner.clear(namespace, request).await?;
        self.emit(MemoryEvent::Cleared {
            namespace: namespace.to_owned(),
            count,
        })
        .await;
        Ok(count)
    }

    async fn search(&self, namespace: &str, request: &SearchRequest) -> Result<SearchResults> {
        let results = self.inner.search(namespace, request).await?;
        self.emit(MemoryEvent::Searched {
            namespace: namespace.to_owned(),
            ids: results.hits.iter().map(|h| h.item.id.clone()).collect(),
        })
        .await;
        Ok(results)
    }

    async fn supersede(&self, namespace: &str, id: &str, by: &str) -> Result<MemoryItem> {
        let item = self.inner.supersede(namespace, id, by).await?;
        self.updated(namespace, vec![id.to_owned()]).await;
        Ok(item)
    }

    async fn restore(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        let item = self.inner.restore(namespace, id).await?;
        self.updated(namespace, vec![id.to_owned()]).await;
        Ok(item)
    }

    async fn reinforce(&self, namespace: &str, ids: &[String], at: Timestamp) -> Result<u64> {
        let n = self.inner.reinforce(namespace, ids, at).await?;
        if n > 0 {
            let touched = if n as usize == ids.len() {
                ids.to_vec()
            } else {
                // Fewer changed than asked for: announce only the ids live in the namespace.
                self.live_in(namespace, ids).await
            };
            self.updated(namespace, touched).await;
        }
        Ok(n)
    }

    async fn decay(
        &self,
        namespace: &str,
        idle_before: Timestamp,
        factor: f32,
        floor: f32,
    ) -> Result<u64> {
        let n = self
            .inner
            .decay(namespace, idle_before, factor, floor)
            .await?;
        if n > 0 {
            self.emit(MemoryEvent::Decayed {
                namespace: namespace.to_owned(),
                count: n,
            })
            .await;
        }
        Ok(n)
    }

    async fn delete_if_expired_before(
        &self,
        namespace: &str,
        id: &str,
        cutoff: Timestamp,
    ) -> Result<()> {
        self.inner
            .delete_if_expired_before(namespace, id, cutoff)
            .await?;
        self.emit(MemoryEvent::Expired {
            namespace: namespace.to_owned(),
            id: id.to_owned(),
        })
        .await;
        Ok(())
    }

    async fn delete_namespace(&self, namespace: &str) -> Result<u64> {
        let count = self.inner.delete_namespace(namespace).await?;
        if count > 0 {
            self.emit(MemoryEvent::Deleted {
                namespace: namespace.to_owned(),
                ids: Vec::new(),
                count,
            })
            .await;
        }
        Ok(count)
    }

    async fn reassign(&self, ids: &[String], from: &str, to: &str) -> Result<u64> {
        // Only the ids that live in `from` move; read them first, so the event names those.
        let moving = self.live_in(from, ids).await;
        let n = self.inner.reassign(ids, from, to).await?;
        if n > 0 {
            self.updated(to, moving).await;
        }
        Ok(n)
    }
}

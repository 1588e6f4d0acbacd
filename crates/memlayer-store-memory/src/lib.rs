#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_trait::async_trait;
use memlayer_ann::VectorSet;
pub use memlayer_ann::{AnnConfig, Quantization, ScanSharing};
use memlayer_store::backend::lifecycle::{
    decay_item, is_idle, merge_upsert, reassign_conflict, reinforce_item, touch,
};
use memlayer_store::backend::search::{SearchLegs, leg_hit, run_list, run_search, sort_page};
use memlayer_store::limits::{self, check_item, check_namespace, check_pin, check_query_dim};
use memlayer_store::ranking::bm25::Bm25Index;
use memlayer_store::ranking::vector::TopK;
use memlayer_store::types::{MemoryItem, Timestamp};
use memlayer_store::{
    Capabilities, ClearRequest, CountOptions, Cursor, EmbeddingPin, Error, ErrorKind, ExpiredItem,
    FieldMatch, Filter, ListRequest, MemoryStore, Page, RankedBy, Result, SearchHit, SearchRequest,
    SearchResults,
};

const BACKEND: &str = "memory";

#[derive(Debug)]
struct Stored {
    item: MemoryItem,
}

/// The owner fields a filter can pin to one value (`FieldMatch::Is`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Owner {
    User,
    Session,
    Task,
    Agent,
}

impl Owner {
    const ALL: [Owner; 4] = [Owner::User, Owner::Session, Owner::Task, Owner::Agent];

    fn of(self, item: &MemoryItem) -> Option<&str> {
        match self {
            Owner::User => item.metadata.user_id.as_deref(),
            Owner::Session => item.metadata.session_id.as_deref(),
            Owner::Task => item.metadata.task_id.as_deref(),
            Owner::Agent => item.metadata.agent_id.as_deref(),
        }
    }

    fn wanted(self, filter: &Filter) -> Option<&str> {
        let m = match self {
            Owner::User => &filter.user,
            Owner::Session => &filter.session,
            Owner::Task => &filter.task,
            Owner::Agent => &filter.agent,
        };
        match m {
            FieldMatch::Is(v) => Some(v),
            _ => None,
        }
    }
}

#[derive(Debug, Default)]
struct Namespace {
    ids: HashSet<String>,
    /// Ids by owner value, so that a filter naming a user, session, task or agent visits
    /// only that owner's items (a 1% filter over 1M items reads 10k, not 1M).
    owners: HashMap<(Owner, String), HashSet<String>>,
    bm25: Bm25Index<String>,
    /// The namespace's embeddings by item id: exact below the ANN threshold, HNSW above.
    vectors: Option<VectorSet<String>>,
}

impl Namespace {
    fn index_owners(&mut self, item: &MemoryItem) {
        for owner in Owner::ALL {
            if let Some(v) = owner.of(item) {
                self.owners
                    .entry((owner, v.to_owned()))
                    .or_default()
                    .insert(item.id.clone());
            }
        }
    }

    fn unindex_owners(&mut self, item: &MemoryItem) {
        for owner in Owner::ALL {
            if let Some(v) = owner.of(item) {
                let key = (owner, v.to_owned());
                if let Some(ids) = self.owners.get_mut(&key) {
                    ids.remove(&item.id);
                    if ids.is_empty() {
                        self.owners.remove(&key);
                    }
                }
            }
        }
    }

    /// The smallest id set that holds every item the filter can accept: the smallest set of
    /// an owner value the filter pins, else every id. `None` when a pinned owner has no items.
    fn candidates(&self, filter: &Filter) -> Option<&HashSet<String>> {
        let mut best = &self.ids;
        for owner in Owner::ALL {
            if let Some(v) = owner.wanted(filter) {
                let ids = self.owners.get(&(owner, v.to_owned()))?;
                if ids.len() < best.len() {
                    best = ids;
                }
            }
        }
        Some(best)
    }
}

#[derive(Debug, Default)]
struct State {
    /// Items by namespace, then id: an item's identity is the pair, so the same id in two
    /// namespaces is two items (decisions/0007).
    items: HashMap<String, HashMap<String, Stored>>,
    namespaces: HashMap<String, Namespace>,
    pin: Option<EmbeddingPin>,
    ann: AnnConfig,
}

impl State {
    fn stored(&self, namespace: &str, id: &str) -> Option<&Stored> {
        self.items.get(namespace)?.get(id)
    }

    fn stored_mut(&mut self, namespace: &str, id: &str) -> Option<&mut Stored> {
        self.items.get_mut(namespace)?.get_mut(id)
    }

    fn live(&self, namespace: &str, id: &str) -> Option<&Stored> {
        self.stored(namespace, id).filter(|s| !s.item.deleted)
    }

    fn check_embedding(&self, item: &MemoryItem) -> Result<()> {
        match (&self.pin, &item.embedding) {
            (Some(pin), Some(e)) => check_pin(pin, &e.model, e.dim()),
            _ => Ok(()),
        }
    }

    /// Writes merged rows, keeping each namespace's ids, BM25 and vectors in step; the
    /// vectors of one namespace go in as one batch (one graph insertion for many rows).
    fn put_all(&mut self, items: Vec<MemoryItem>) -> Result<()> {
        if self.pin.is_none()
            && let Some(e) = items.iter().find_map(|i| i.embedding.as_ref())
        {
            self.pin = Some(EmbeddingPin {
                model: e.model.clone(),
                dim: e.dim(),
            });
        }
        let mut by_namespace: HashMap<String, Vec<MemoryItem>> = HashMap::new();
        for item in items {
            by_namespace
                .entry(item.namespace.clone())
                .or_default()
                .push(item);
        }
        let ann = self.ann;
        for (name, items) in by_namespace {
            let ns = self.namespaces.entry(name.clone()).or_default();
            if let Some(pin) = &self.pin
                && ns.vectors.is_none()
                && items.iter().any(|i| i.embedding.is_some())
            {
                ns.vectors = Some(VectorSet::new(pin.dim, ann));
            }
            if let Some(vectors) = &mut ns.vectors {
                for item in items.iter().filter(|i| i.embedding.is_none()) {
                    vectors.remove(&item.id)?;
                }
                vectors.upsert_many(items.iter().filter_map(|i| {
                    Some((i.id.clone(), i.embedding.as_ref()?.vector.as_slice()))
                }))?;
            }
            let stored = self.items.entry(name).or_default();
            for item in items {
                if let Some(old) = stored.get(&item.id) {
                    ns.unindex_owners(&old.item);
                }
                ns.index_owners(&item);
                ns.ids.insert(item.id.clone());
                ns.bm25.insert(item.id.clone(), &item.content);
                stored.insert(item.id.clone(), Stored { item });
            }
        }
        Ok(())
    }

    fn remove(&mut self, namespace: &str, id: &str) -> Result<Option<Stored>> {
        let Some(stored) = self.items.get_mut(namespace).and_then(|m| m.remove(id)) else {
            return Ok(None);
        };
        if let Some(ns) = self.namespaces.get_mut(namespace) {
            ns.ids.remove(id);
            ns.unindex_owners(&stored.item);
            ns.bm25.remove(&stored.item.id);
            if let Some(vectors) = &mut ns.vectors {
                vectors.remove(&stored.item.id)?;
            }
            if ns.ids.is_empty() {
                self.namespaces.remove(namespace);
                self.items.remove(namespace);
            }
        }
        Ok(Some(stored))
    }

    fn upsert_one(&mut self, item: MemoryItem, now: Timestamp) -> Result<MemoryItem> {
        self.check_embedding(&item)?;
        let existing = self.stored(&item.namespace, &item.id).map(|s| &s.item);
        let merged = merge_upsert(existing, item, now)?;
        self.put_all(vec![merged.clone()])?;
        Ok(merged)
    }

    /// Items of a namespace passing the filter at `now`.
    fn visible<'a>(
        &'a self,
        namespace: &'a str,
        filter: &'a Filter,
        now: Timestamp,
    ) -> impl Iterator<Item = &'a Stored> + 'a {
        self.namespaces
            .get(namespace)
            .and_then(|ns| ns.candidates(filter))
            .into_iter()
            .flatten()
            .filter_map(move |id| self.stored(namespace, id))
            .filter(move |s| filter.matches(&s.item, now))
    }
}

/// The in-memory store.
#[derive(Debug, Default)]
pub struct InMemoryStore {
    state: RwLock<State>,
    closed: AtomicBool,
}

impl InMemoryStore {
    /// An empty store, with the default ANN configuration: namespaces of 20,000 vectors or
    /// more are searched through an HNSW graph.
    pub fn new() -> Self {
        InMemoryStore::default()
    }

    /// An empty store with its own ANN configuration ([`AnnConfig::exact`] keeps every
    /// namespace on the exact scan).
    pub fn with_ann(ann: AnnConfig) -> Self {
        let store = InMemoryStore::default();
        store.state.write().unwrap_or_else(|e| e.into_inner()).ann = ann;
        store
    }

    fn read(&self) -> Result<RwLockReadGuard<'_, State>> {
        self.check_open()?;
        // A panic while holding the lock cannot leave a half-applied write behind (every write
        // is computed before it is applied), so a poisoned lock is safe to keep using.
        Ok(self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    fn write(&self) -> Result<RwLockWriteGuard<'_, State>> {
        self.check_open()?;
        Ok(self.state.write().unwrap_or_else(|e| e.into_inner()))
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::Unavailable, "the store is closed")
                .with_backend(BACKEND)
                .set_temporary(false));
        }
        Ok(())
    }
}

fn tag(e: Error, operation: &'static str) -> Error {
    e.with_backend(BACKEND).with_operation(operation)
}

#[async_trait]
impl SearchLegs for InMemoryStore {
    async fn page(
        &self,
        namespace: &str,
        request: &ListRequest,
        cursor: Option<Cursor>,
        offset: usize,
    ) -> Result<(Vec<MemoryItem>, Option<String>)> {
        let state = self.read()?;
        let now = request.filter.effective_now();
        let items = state
            .visible(namespace, &request.filter, now)
            .map(|s| s.item.clone())
            .collect();
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
        let state = self.read()?;
        let Some(ns) = state.namespaces.get(namespace) else {
            return Ok(Vec::new());
        };
        let now = filter.effective_now();
        let mut top = TopK::new(k);
        for (id, score) in ns.bm25.score_refs(terms) {
            if !top.admits_pair(score, id) {
                continue;
            }
            if let Some(s) = state.stored(namespace, id)
                && filter.matches(&s.item, now)
            {
                top.offer(score, id.clone());
            }
        }
        Ok(top
            .into_sorted()
            .into_iter()
            .filter_map(|(score, id)| {
                let item = state.stored(namespace, &id)?.item.clone();
                Some(leg_hit(item, score, RankedBy::Keyword))
            })
            .collect())
    }

    async fn vector_leg(
        &self,
        namespace: &str,
        vector: &[f32],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<SearchHit>> {
        let state = self.read()?;
        let Some(pin) = &state.pin else {
            return Ok(Vec::new());
        };
        check_query_dim(pin, vector)?;
        let Some(vectors) = state
            .namespaces
            .get(namespace)
            .and_then(|ns| ns.vectors.as_ref())
        else {
            return Ok(Vec::new());
        };
        let now = filter.effective_now();
        let passes = |id: &str| {
            state
                .stored(namespace, id)
                .is_some_and(|s| filter.matches(&s.item, now))
        };
        let found = vectors.search(
            vector,
            k,
            &mut |ids: &[&String]| Ok(ids.iter().map(|id| passes(id)).collect()),
            &mut || {
                Ok(Some(
                    state
                        .visible(namespace, filter, now)
                        .filter(|s| s.item.embedding.is_some())
                        .map(|s| s.item.id.clone())
                        .collect(),
                ))
            },
        )?;
        Ok(found
            .hits
            .into_iter()
            .filter_map(|(score, id)| {
                let item = state.stored(namespace, &id)?.item.clone();
                Some(leg_hit(item, score, RankedBy::Vector))
            })
            .collect())
    }
}

#[async_trait]
impl MemoryStore for InMemoryStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::full();
        caps.persistent = false;
        caps.approximate_vectors = self
            .state
            .read()
            .map_or(true, |s| s.ann.threshold != usize::MAX);
        caps
    }

    async fn upsert(&self, item: MemoryItem) -> Result<MemoryItem> {
        check_item(&item).map_err(|e| tag(e, "upsert"))?;
        let mut state = self.write()?;
        state
            .upsert_one(item, Timestamp::now())
            .map_err(|e| tag(e, "upsert"))
    }

    async fn upsert_many(&self, items: Vec<MemoryItem>) -> Result<Vec<MemoryItem>> {
        limits::check_batch(&items).map_err(|e| tag(e, "upsert_many"))?;
        let mut state = self.write()?;
        // All-or-nothing: apply to a scratch overlay first, then commit every row at once.
        let now = Timestamp::now();
        let mut overlay: HashMap<(String, String), MemoryItem> = HashMap::new();
        let mut pin = state.pin.clone();
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let (Some(p), Some(e)) = (&pin, &item.embedding) {
                check_pin(p, &e.model, e.dim()).map_err(|e| tag(e, "upsert_many"))?;
            }
            if pin.is_none() {
                pin = item.embedding.as_ref().map(|e| EmbeddingPin {
                    model: e.model.clone(),
                    dim: e.dim(),
                });
            }
            let key = (item.namespace.clone(), item.id.clone());
            let existing = overlay
                .get(&key)
                .or_else(|| state.stored(&key.0, &key.1).map(|s| &s.item));
            let merged = merge_upsert(existing, item, now).map_err(|e| tag(e, "upsert_many"))?;
            overlay.insert(key, merged.clone());
            out.push(merged);
        }
        state
            .put_all(overlay.into_values().collect())
            .map_err(|e| tag(e, "upsert_many"))?;
        Ok(out)
    }

    async fn get(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        let state = self.read()?;
        state
            .live(namespace, id)
            .map(|s| s.item.clone())
            .ok_or_else(|| tag(Error::not_found(namespace, id), "get"))
    }

    async fn delete(&self, namespace: &str, id: &str) -> Result<()> {
        let mut state = self.write()?;
        match state.remove(namespace, id).map_err(|e| tag(e, "delete"))? {
            Some(_) => Ok(()),
            None => Err(tag(Error::not_found(namespace, id), "delete")),
        }
    }

    async fn clear(&self, namespace: &str, request: &ClearRequest) -> Result<u64> {
        limits::check_clear(namespace, request).map_err(|e| tag(e, "clear"))?;
        let mut state = self.write()?;
        let now = request.filter.effective_now();
        let ids: Vec<String> = state
            .visible(namespace, &request.filter, now)
            .filter(|s| !s.item.deleted)
            .map(|s| s.item.id.clone())
            .collect();
        let stamp = Timestamp::now();
        for id in &ids {
            if let Some(s) = state.stored_mut(namespace, id) {
                s.item.deleted = true;
                touch(&mut s.item, stamp);
            }
        }
        Ok(ids.len() as u64)
    }

    async fn count(&self, namespace: &str, options: CountOptions) -> Result<u64> {
        let state = self.read()?;
        let Some(ns) = state.namespaces.get(namespace) else {
            return Ok(0);
        };
        Ok(ns
            .ids
            .iter()
            .filter_map(|id| state.stored(namespace, id))
            .filter(|s| options.include_deleted || !s.item.deleted)
            .count() as u64)
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
        let mut state = self.write()?;
        if state.live(namespace, by).is_none() {
            return Err(tag(Error::not_found(namespace, by), "supersede"));
        }
        let now = Timestamp::now();
        match state.stored_mut(namespace, id) {
            Some(s) if !s.item.deleted => {
                s.item.superseded_by = Some(by.to_owned());
                s.item.valid_to = Some(now);
                touch(&mut s.item, now);
                Ok(s.item.clone())
            }
            _ => Err(tag(Error::not_found(namespace, id), "supersede")),
        }
    }

    async fn restore(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        let mut state = self.write()?;
        match state.stored_mut(namespace, id) {
            Some(s) if !s.item.deleted => {
                s.item.superseded_by = None;
                s.item.valid_to = None;
                touch(&mut s.item, Timestamp::now());
                Ok(s.item.clone())
            }
            _ => Err(tag(Error::not_found(namespace, id), "restore")),
        }
    }

    async fn predecessors(&self, namespace: &str, id: &str) -> Result<Vec<MemoryItem>> {
        let state = self.read()?;
        let Some(ns) = state.namespaces.get(namespace) else {
            return Ok(Vec::new());
        };
        let mut out: Vec<MemoryItem> = ns
            .ids
            .iter()
            .filter_map(|i| state.stored(namespace, i))
            .filter(|s| !s.item.deleted && s.item.superseded_by.as_deref() == Some(id))
            .map(|s| s.item.clone())
            .collect();
        out.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    async fn reinforce(&self, namespace: &str, ids: &[String], at: Timestamp) -> Result<u64> {
        limits::check_ids("ids", ids).map_err(|e| tag(e, "reinforce"))?;
        let mut state = self.write()?;
        let mut n = 0;
        let unique: HashSet<&String> = ids.iter().collect();
        for id in unique {
            if let Some(s) = state.stored_mut(namespace, id)
                && !s.item.deleted
            {
                reinforce_item(&mut s.item, at);
                n += 1;
            }
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
        limits::check_decay(factor, floor).map_err(|e| tag(e, "decay"))?;
        let mut state = self.write()?;
        let ids: Vec<String> = match state.namespaces.get(namespace) {
            Some(ns) => ns.ids.iter().cloned().collect(),
            None => return Ok(0),
        };
        let mut n = 0;
        for id in ids {
            if let Some(s) = state.stored_mut(namespace, &id)
                && !s.item.deleted
                && is_idle(&s.item, idle_before)
                && decay_item(&mut s.item, factor, floor)
            {
                n += 1;
            }
        }
        Ok(n)
    }

    async fn list_expired(&self, now: Timestamp, limit: usize) -> Result<Vec<ExpiredItem>> {
        let state = self.read()?;
        let mut out: Vec<ExpiredItem> = state
            .items
            .values()
            .flat_map(HashMap::values)
            .filter_map(|s| {
                let at = s.item.expires_at.filter(|e| *e <= now)?;
                Some(ExpiredItem {
                    namespace: s.item.namespace.clone(),
                    id: s.item.id.clone(),
                    expires_at: at,
                })
            })
            .collect();
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
        let mut state = self.write()?;
        match state.stored(namespace, id) {
            Some(s) if s.item.is_expired_at(cutoff) => {
                state
                    .remove(namespace, id)
                    .map_err(|e| tag(e, "delete_if_expired_before"))?;
                Ok(())
            }
            _ => Err(tag(
                Error::not_found(namespace, id).with_context("cutoff", cutoff),
                "delete_if_expired_before",
            )),
        }
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        let state = self.read()?;
        let mut out: Vec<String> = state.namespaces.keys().cloned().collect();
        out.sort();
        Ok(out)
    }

    async fn delete_namespace(&self, namespace: &str) -> Result<u64> {
        let mut state = self.write()?;
        let Some(ns) = state.namespaces.remove(namespace) else {
            return Ok(0);
        };
        state.items.remove(namespace);
        Ok(ns.ids.len() as u64)
    }

    async fn reassign(&self, ids: &[String], from: &str, to: &str) -> Result<u64> {
        check_namespace(to).map_err(|e| tag(e, "reassign"))?;
        limits::check_ids("ids", ids).map_err(|e| tag(e, "reassign"))?;
        let mut state = self.write()?;
        let unique: BTreeSet<&String> = ids.iter().collect();
        let present: Vec<&String> = unique
            .into_iter()
            .filter(|id| state.stored(from, id).is_some())
            .collect();
        if from == to {
            return Ok(present.len() as u64);
        }
        // All or nothing: an id the target already holds stops the move before anything moves.
        if let Some(id) = present.iter().find(|id| state.stored(to, id).is_some()) {
            return Err(tag(reassign_conflict(id, to), "reassign"));
        }
        for id in &present {
            if let Some(mut stored) = state.remove(from, id).map_err(|e| tag(e, "reassign"))? {
                stored.item.namespace = to.to_owned();
                state
                    .put_all(vec![stored.item])
                    .map_err(|e| tag(e, "reassign"))?;
            }
        }
        Ok(present.len() as u64)
    }

    async fn embedding_pin(&self) -> Result<Option<EmbeddingPin>> {
        Ok(self.read()?.pin.clone())
    }

    async fn ping(&self) -> Result<()> {
        self.check_open()
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

//! The search legs' in-process indexes, per namespace: a `VectorSet` (an exact SIMD scan below
//! the ANN threshold, an HNSW graph above it), loaded from `items.embedding` on the namespace's first
//! vector search, and a BM25 index of the contents (memlayer's own analysis and scoring, as in
//! the memory backend), loaded from `items` on its first keyword search. Both are kept in step
//! with this store's writes.
//!
//! The file stays the truth; the indexes are rebuilt from it after a restart. Every write that
//! adds, removes or rewrites rows or moves them between namespaces bumps `index_generation` in
//! `meta` inside its transaction, and applies the same change to the indexes while holding
//! their write lock across the commit. A search compares the generation it reads with the
//! indexes': a newer one in the file means another handle or process wrote, and they reload.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use memlayer_ann::{AnnConfig, Origin, VectorSet};
use memlayer_store::backend::sql::SqlDialect;
use memlayer_store::ranking::bm25::Bm25Index;
use memlayer_store::ranking::vector::{TopK, best_first};
use memlayer_store::types::MemoryItem;
use memlayer_store::{Filter, Result};
use rusqlite::{Connection, params_from_iter};

use crate::error::map_sqlite;
use crate::sql::{ITEM_COLUMNS, Query};
use crate::vectors;

/// A change to apply to the indexes after the transaction that made it commits.
#[derive(Debug)]
pub(crate) enum Change {
    /// The item was written with this content and vector (`None`: it has none).
    Put {
        namespace: String,
        id: String,
        content: String,
        vector: Option<Vec<f32>>,
    },
    /// The item is gone.
    Removed { namespace: String, id: String },
    /// Too much changed in the namespace to follow: reload it on its next search.
    Reload { namespace: String },
}

#[derive(Debug, Default)]
struct State {
    /// The generation the indexes reflect.
    generation: i64,
    sets: HashMap<String, VectorSet<String>>,
    texts: HashMap<String, Bm25Index<String>>,
    /// How each namespace's vector set was last loaded (kept across resets).
    origins: HashMap<String, Origin>,
    /// When each namespace with an index was last searched (a tick of [`SearchIndex`]'s
    /// clock), for dropping the least recently used past the budget.
    used: HashMap<String, AtomicU64>,
}

impl State {
    fn reset(&mut self, generation: i64) {
        self.sets.clear();
        self.texts.clear();
        self.used.clear();
        self.generation = generation;
    }

    /// About how many bytes a namespace's indexes take: each vector's components and graph
    /// links, each text's postings and keys (estimates, for the cache budget).
    fn bytes_of(&self, namespace: &str) -> usize {
        let vectors = self
            .sets
            .get(namespace)
            .map_or(0, |s| s.len() * (s.dim() * 4 + VECTOR_OVERHEAD));
        let texts = self
            .texts
            .get(namespace)
            .map_or(0, |t| t.len() * TEXT_BYTES);
        vectors + texts
    }

    /// Drops the least recently searched namespaces' indexes, never `keep`'s, until the
    /// estimate is within `budget`.
    fn evict(&mut self, budget: usize, keep: &str) {
        let mut total: usize = self.used.keys().map(|ns| self.bytes_of(ns)).sum();
        while total > budget {
            let oldest = self
                .used
                .iter()
                .filter(|(ns, _)| ns.as_str() != keep)
                .min_by_key(|(_, tick)| tick.load(Ordering::Relaxed))
                .map(|(ns, _)| ns.clone());
            let Some(ns) = oldest else { return };
            total = total.saturating_sub(self.bytes_of(&ns));
            self.sets.remove(&ns);
            self.texts.remove(&ns);
            self.used.remove(&ns);
        }
    }
}

/// Graph links, key and bookkeeping of one indexed vector, beyond its components (estimate).
const VECTOR_OVERHEAD: usize = 256;
/// One indexed text's postings, key and length (estimate for short memories).
const TEXT_BYTES: usize = 512;

/// The per-namespace indexes of one store.
#[derive(Debug)]
pub(crate) struct SearchIndex {
    config: AnnConfig,
    /// Where graphs are saved (`<file>.graphs`), if they are.
    graphs: Option<PathBuf>,
    /// The estimated bytes the indexes may take (see [`State::evict`]).
    budget: usize,
    /// A clock for [`State::used`].
    clock: AtomicU64,
    state: RwLock<State>,
}

/// The file name a namespace's saved graph goes by: its safe characters (up to 40), then a
/// 64-bit FNV-1a hash of the whole name, so that any name gives a short, distinct file name.
fn graph_file_name(namespace: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in namespace.bytes() {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let safe: String = namespace
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(40)
        .collect();
    format!("{safe}-{hash:016x}")
}

/// The generation of the searchable state in the file.
pub(crate) fn generation(conn: &Connection) -> Result<i64> {
    conn.prepare_cached("SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'index_generation'")
        .map_err(map_sqlite)?
        .query_row([], |r| r.get(0))
        .map_err(map_sqlite)
}

/// Bumps the generation inside the caller's transaction; returns the new one.
pub(crate) fn bump_generation(conn: &Connection) -> Result<i64> {
    conn.prepare_cached(
        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'index_generation' \
         RETURNING CAST(value AS INTEGER)",
    )
    .map_err(map_sqlite)?
    .query_row([], |r| r.get(0))
    .map_err(map_sqlite)
}

/// A write lock on the indexes, held by the writer from before its commit until its changes
/// are applied, so no search sees the file ahead of the cache.
pub(crate) struct Pending<'a> {
    state: RwLockWriteGuard<'a, State>,
}

impl Pending<'_> {
    /// Applies the committed changes of generation `generation`. Should the index fail, its
    /// sets are dropped and reloaded from the file on their next search: the commit stands.
    pub(crate) fn apply(mut self, generation: i64, changes: Vec<Change>) {
        let state = &mut *self.state;
        if apply_to(state, generation, changes).is_err() {
            state.reset(generation);
        }
    }
}

fn apply_to(state: &mut State, generation: i64, changes: Vec<Change>) -> Result<()> {
    {
        if generation != state.generation + 1 {
            // Another handle wrote in between: what it changed is unknown.
            state.reset(generation);
            return Ok(());
        }
        state.generation = generation;
        let mut puts: HashMap<String, Vec<(String, Vec<f32>)>> = HashMap::new();
        for change in changes {
            match change {
                Change::Put {
                    namespace,
                    id,
                    content,
                    vector,
                } => {
                    if let Some(text) = state.texts.get_mut(&namespace) {
                        text.insert(id.clone(), &content);
                    }
                    if let Some(set) = state.sets.get_mut(&namespace) {
                        match vector {
                            Some(v) => puts.entry(namespace).or_default().push((id, v)),
                            None => {
                                set.remove(&id)?;
                            }
                        }
                    }
                }
                Change::Removed { namespace, id } => {
                    if let Some(text) = state.texts.get_mut(&namespace) {
                        text.remove(&id);
                    }
                    if let Some(set) = state.sets.get_mut(&namespace) {
                        set.remove(&id)?;
                    }
                    if let Some(batch) = puts.get_mut(&namespace) {
                        batch.retain(|(i, _)| *i != id);
                    }
                }
                Change::Reload { namespace } => {
                    state.sets.remove(&namespace);
                    state.texts.remove(&namespace);
                    state.used.remove(&namespace);
                    puts.remove(&namespace);
                }
            }
        }
        for (namespace, batch) in puts {
            if let Some(set) = state.sets.get_mut(&namespace) {
                set.upsert_many(batch.iter().map(|(id, v)| (id.clone(), v.as_slice())))?;
            }
        }
        Ok(())
    }
}

impl SearchIndex {
    pub(crate) fn new(config: AnnConfig, graphs: Option<PathBuf>, budget: usize) -> Self {
        SearchIndex {
            config,
            graphs,
            budget,
            clock: AtomicU64::new(0),
            state: RwLock::new(State::default()),
        }
    }

    /// Notes a search of `namespace` (under the read lock: the tick is atomic).
    fn touch(&self, state: &State, namespace: &str) {
        if let Some(tick) = state.used.get(namespace) {
            tick.store(
                self.clock.fetch_add(1, Ordering::Relaxed),
                Ordering::Relaxed,
            );
        }
    }

    /// Records a load of `namespace` and keeps the indexes within the budget.
    fn loaded_now(&self, state: &mut State, namespace: &str) {
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
        state
            .used
            .entry(namespace.to_owned())
            .or_insert_with(|| AtomicU64::new(tick))
            .store(tick, Ordering::Relaxed);
        state.evict(self.budget, namespace);
    }

    /// Where the graph of `namespace` is saved, if graphs are.
    fn graph_base(&self, namespace: &str) -> Option<PathBuf> {
        Some(self.graphs.as_ref()?.join(graph_file_name(namespace)))
    }

    /// Removes the saved graph of `namespace` (deleted: its graph would only cost disk).
    pub(crate) fn forget_saved_graph(&self, namespace: &str) {
        if let Some(base) = self.graph_base(namespace)
            && let Err(e) = memlayer_ann::remove_saved_graph(&base)
        {
            tracing::warn!(namespace, error = %e, "could not remove the namespace's saved graph");
        }
    }

    /// How the vector set of `namespace` was last loaded.
    pub(crate) fn origin(&self, namespace: &str) -> Option<Origin> {
        self.read().origins.get(namespace).copied()
    }

    /// Saves every graph changed since it was built, restored or saved; the first failure is
    /// returned after the others are tried.
    pub(crate) fn save_graphs(&self) -> Result<()> {
        let mut state = self.write();
        let mut first = Ok(());
        for (namespace, set) in &mut state.sets {
            if let Some(base) = self.graph_base(namespace)
                && set.has_unsaved_graph()
                && let Err(e) = set.save_graph(&base)
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // Every change is validated before it is applied, so a poisoned lock holds a
        // consistent state (at worst behind the file, which the generation check catches).
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// How many namespaces have an index in memory (vector sets, keyword indexes).
    pub(crate) fn loaded(&self) -> (usize, usize) {
        let state = self.read();
        (state.sets.len(), state.texts.len())
    }

    /// Whether large namespaces are searched through a graph.
    pub(crate) fn approximate(&self) -> bool {
        self.config.threshold != usize::MAX
    }

    /// Locks the indexes for a writer about to commit.
    pub(crate) fn pending(&self) -> Pending<'_> {
        Pending {
            state: self.write(),
        }
    }

    /// The `k` best (cosine, id) of `namespace` passing `filter`, best first. `conn` is a
    /// reader; `seen` the generation it read before calling; `query` has the pinned dimension.
    /// Given `rows`, the filter's questions about `k` ids or fewer (the exact scan's first)
    /// read the passing rows whole into it, so that the hits need no second read.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn search(
        &self,
        conn: &Connection,
        seen: i64,
        namespace: &str,
        query: &[f32],
        filter: &Filter,
        k: usize,
        rows: Option<&mut HashMap<String, MemoryItem>>,
    ) -> Result<Vec<(f32, String)>> {
        loop {
            {
                let state = self.read();
                if state.generation >= seen
                    && let Some(set) = state.sets.get(namespace)
                {
                    self.touch(&state, namespace);
                    return search_set(conn, set, namespace, query, filter, k, rows);
                }
            }
            if !self.load(conn, namespace, query.len())? {
                return Ok(Vec::new());
            }
        }
    }

    /// The write lock, and a read transaction on `conn` begun under it (so this store's
    /// writers cannot commit in between), with the indexes reset if the file moved on.
    fn lock_at_file_generation<'a>(
        &'a self,
        conn: &'a Connection,
    ) -> Result<(RwLockWriteGuard<'a, State>, rusqlite::Transaction<'a>)> {
        let mut state = self.write();
        let tx = conn.unchecked_transaction().map_err(map_sqlite)?;
        let now = generation(&tx)?;
        if now != state.generation {
            state.reset(now);
        }
        Ok((state, tx))
    }

    /// Loads `namespace` from the file, in one read transaction taken while holding the write
    /// lock (so this store's writers cannot commit in between). A namespace without vectors
    /// gets no set (a search of any name must not grow memory): returns whether it has one.
    fn load(&self, conn: &Connection, namespace: &str, dim: usize) -> Result<bool> {
        let (mut state, tx) = self.lock_at_file_generation(conn)?;
        if state.sets.contains_key(namespace) {
            return Ok(true);
        }
        let mut any = false;
        let mut loader = VectorSet::loader(dim, self.config);
        {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT id, embedding FROM items \
                     WHERE namespace = ?1 AND embedding IS NOT NULL",
                )
                .map_err(map_sqlite)?;
            let mut rows = stmt.query([namespace]).map_err(map_sqlite)?;
            let mut batch: Vec<(String, Vec<f32>)> = Vec::with_capacity(4096);
            while let Some(row) = rows.next().map_err(map_sqlite)? {
                any = true;
                let id: String = row.get(0).map_err(map_sqlite)?;
                let blob = row.get_ref(1).map_err(map_sqlite)?;
                if let Ok(bytes) = blob.as_blob() {
                    batch.push((id, vectors::from_blob(bytes)));
                }
                if batch.len() == 4096 {
                    loader.add_many(batch.iter().map(|(id, v)| (id.clone(), v.as_slice())))?;
                    batch.clear();
                }
            }
            loader.add_many(batch.iter().map(|(id, v)| (id.clone(), v.as_slice())))?;
        }
        tx.finish().map_err(map_sqlite)?;
        if !any {
            return Ok(false);
        }
        let base = self.graph_base(namespace);
        let (mut set, origin) = loader.finish(base.as_deref())?;
        if let Some(base) = &base {
            save_after_load(&mut set, base, namespace);
        }
        state.origins.insert(namespace.to_owned(), origin);
        state.sets.insert(namespace.to_owned(), set);
        self.loaded_now(&mut state, namespace);
        Ok(true)
    }

    /// The `k` best (BM25 score, id) of `namespace` for the analysed query `terms`, passing
    /// `filter`, best first (ties by id). `conn` is a reader; `seen` the generation it read.
    /// Given `rows`, as [`SearchIndex::search`].
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn keyword(
        &self,
        conn: &Connection,
        seen: i64,
        namespace: &str,
        terms: &[String],
        filter: &Filter,
        k: usize,
        rows: Option<&mut HashMap<String, MemoryItem>>,
    ) -> Result<Vec<(f32, String)>> {
        loop {
            {
                let state = self.read();
                if state.generation >= seen
                    && let Some(text) = state.texts.get(namespace)
                {
                    self.touch(&state, namespace);
                    let mut ranked: Vec<(f32, &String)> = text
                        .score_refs(terms)
                        .into_iter()
                        .map(|(key, score)| (score, key))
                        .collect();
                    return top_passing(conn, namespace, &mut ranked, filter, k, rows);
                }
            }
            if !self.load_text(conn, namespace)? {
                return Ok(Vec::new());
            }
        }
    }

    /// Loads the contents of `namespace`, as [`SearchIndex::load`] loads its vectors: an
    /// empty namespace gets no index, and the answer says whether it has one.
    fn load_text(&self, conn: &Connection, namespace: &str) -> Result<bool> {
        let (mut state, tx) = self.lock_at_file_generation(conn)?;
        if state.texts.contains_key(namespace) {
            return Ok(true);
        }
        let mut text = Bm25Index::default();
        let mut any = false;
        {
            let mut stmt = tx
                .prepare_cached("SELECT id, content FROM items WHERE namespace = ?1")
                .map_err(map_sqlite)?;
            let mut rows = stmt.query([namespace]).map_err(map_sqlite)?;
            while let Some(row) = rows.next().map_err(map_sqlite)? {
                any = true;
                let id: String = row.get(0).map_err(map_sqlite)?;
                let content = row.get_ref(1).map_err(map_sqlite)?;
                text.insert(
                    id,
                    content
                        .as_str()
                        .map_err(rusqlite::Error::from)
                        .map_err(map_sqlite)?,
                );
            }
        }
        tx.finish().map_err(map_sqlite)?;
        if !any {
            return Ok(false);
        }
        state.texts.insert(namespace.to_owned(), text);
        self.loaded_now(&mut state, namespace);
        Ok(true)
    }
}

/// Saves a graph that its load built or patched, so that a process that stops without
/// closing the store still finds it. The graph is a cache of the file: a failed save costs
/// the next process a build, not a search, so it is logged rather than returned.
fn save_after_load(set: &mut VectorSet<String>, base: &Path, namespace: &str) {
    if set.has_unsaved_graph()
        && let Err(e) = set.save_graph(base)
    {
        tracing::warn!(namespace, error = %e, "could not save the namespace's HNSW graph");
    }
}

/// The first `k` of `ranked` (best first) that pass `filter`. The filter is asked about the
/// best `k` first (given `rows`, reading the passing rows whole into it, so that when they all
/// pass the hits need no second read), then about the best `max(4k, 40)`, then about fourfold
/// longer runs of the ranking; when under 2% of what it was asked about passed, it runs once
/// as a query of its own and the ranking is intersected with its answer instead.
///
/// `ranked` comes unordered: only its best `max(4k, 40)` are sorted at first (most searches
/// need no more), the rest once the filter asks beyond them.
fn top_passing(
    conn: &Connection,
    namespace: &str,
    ranked: &mut [(f32, &String)],
    filter: &Filter,
    k: usize,
    mut rows: Option<&mut HashMap<String, MemoryItem>>,
) -> Result<Vec<(f32, String)>> {
    let now = filter.effective_now();
    let mut top = Vec::with_capacity(k);
    let mut start = 0;
    let mut step = (4 * k).max(40);
    let mut asked = 0usize;
    let mut sorted = step.min(ranked.len());
    best_to_front(ranked, sorted);
    ranked[..sorted].sort_by(best_first);
    // The best `k` first, when their rows are wanted whole.
    let mut head = rows.is_some() && k < step;
    while start < ranked.len() && top.len() < k {
        let end = if head { k } else { start + step }.min(ranked.len());
        let narrow = asked >= 4 * k.max(10) && top.len() * 50 < asked;
        if sorted < ranked.len() && (narrow || end > sorted) {
            ranked[sorted..].sort_by(best_first);
            sorted = ranked.len();
        }
        if narrow {
            let accepted: std::collections::HashSet<String> =
                accepted(conn, namespace, filter, now)?
                    .into_iter()
                    .collect();
            for (score, id) in &ranked[start..] {
                if top.len() == k {
                    break;
                }
                if accepted.contains(*id) {
                    top.push((*score, (*id).clone()));
                }
            }
            return Ok(top);
        }
        let slice = &ranked[start..end];
        let ids: Vec<&String> = slice.iter().map(|p| p.1).collect();
        let pass = ask(conn, namespace, filter, now, &ids, k, rows.as_deref_mut())?;
        for ((score, id), ok) in slice.iter().zip(pass) {
            if ok && top.len() < k {
                top.push((*score, (*id).clone()));
            }
        }
        asked += slice.len();
        start = end;
        if head {
            head = false;
        } else {
            step *= 4;
        }
    }
    Ok(top)
}

/// Moves the best `n` of `ranked` (by [`best_first`]) to its front, in no particular order.
///
/// BM25 scores tie by the thousand (every document with the same term counts and length
/// scores the same), and a selection that compares pairs with each other breaks each tie on
/// the ids, a string comparison. Here each pair is compared once with the worst of a running
/// top `n`, by score alone unless it ties with that worst one; then one pass moves the pairs
/// no worse than the final worst to the front.
fn best_to_front(ranked: &mut [(f32, &String)], n: usize) {
    if n == 0 || n >= ranked.len() {
        return;
    }
    let mut top = TopK::new(n);
    for (score, id) in ranked.iter() {
        top.offer(*score, *id);
    }
    let Some(worst) = top.into_sorted().pop() else {
        return;
    };
    let mut front = 0;
    for i in 0..ranked.len() {
        if best_first(&ranked[i], &worst) != std::cmp::Ordering::Greater {
            ranked.swap(front, i);
            front += 1;
        }
    }
}

/// The query for `columns` of those of `ids` (of `namespace`) that pass `filter`. The
/// candidates drive the join (CROSS JOIN fixes the order), each found through the id index:
/// given `id IN (...)` beside the namespace clause, the planner would rather walk the whole
/// namespace.
fn candidates_query(
    namespace: &str,
    filter: &Filter,
    now: memlayer_store::types::Timestamp,
    ids: &[&String],
    columns: &str,
) -> (String, Query) {
    let mut q = Query::default();
    let values = ids
        .iter()
        .map(|id| format!("({})", q.bind((*id).clone())))
        .collect::<Vec<_>>()
        .join(", ");
    q.filter(namespace, filter, now);
    let sql = format!(
        "WITH c(id) AS (VALUES {values}) \
         SELECT {columns} FROM c CROSS JOIN items i ON i.id = c.id {}",
        q.where_sql()
    );
    (sql, q)
}

/// Which of `ids` (of `namespace`) pass `filter`, in their order.
fn accept(
    conn: &Connection,
    namespace: &str,
    filter: &Filter,
    now: memlayer_store::types::Timestamp,
    ids: &[&String],
) -> Result<Vec<bool>> {
    let mut passing = std::collections::HashSet::new();
    for chunk in ids.chunks(512) {
        let (sql, q) = candidates_query(namespace, filter, now, chunk, "i.id");
        let mut stmt = conn.prepare_cached(&sql).map_err(map_sqlite)?;
        let rows = stmt
            .query_map(params_from_iter(q.params.iter()), |r| r.get::<_, String>(0))
            .map_err(map_sqlite)?;
        for id in rows {
            passing.insert(id.map_err(map_sqlite)?);
        }
    }
    Ok(ids.iter().map(|id| passing.contains(*id)).collect())
}

/// Which of `ids` pass `filter`: a question about `k` ids or fewer (a search's first, about
/// its best `k`), given `rows`, reads the passing rows whole into it, since they are then most
/// likely the hits; any other asks for their ids alone.
#[allow(clippy::too_many_arguments)]
fn ask(
    conn: &Connection,
    namespace: &str,
    filter: &Filter,
    now: memlayer_store::types::Timestamp,
    ids: &[&String],
    k: usize,
    rows: Option<&mut HashMap<String, MemoryItem>>,
) -> Result<Vec<bool>> {
    match rows {
        Some(rows) if ids.len() <= k => accept_rows(conn, namespace, filter, now, ids, rows),
        _ => accept(conn, namespace, filter, now, ids),
    }
}

/// [`accept`], reading the passing rows whole (with their vectors) into `rows`.
fn accept_rows(
    conn: &Connection,
    namespace: &str,
    filter: &Filter,
    now: memlayer_store::types::Timestamp,
    ids: &[&String],
    rows: &mut HashMap<String, MemoryItem>,
) -> Result<Vec<bool>> {
    let columns = format!("{ITEM_COLUMNS}, i.embedding");
    let (sql, q) = candidates_query(namespace, filter, now, ids, &columns);
    let mut passing = std::collections::HashSet::new();
    for item in crate::rows::query_items(conn, &sql, &q)? {
        passing.insert(item.id.clone());
        rows.insert(item.id.clone(), item);
    }
    Ok(ids.iter().map(|id| passing.contains(*id)).collect())
}

/// Every id of `namespace` passing `filter`: the filter run as a query.
fn accepted(
    conn: &Connection,
    namespace: &str,
    filter: &Filter,
    now: memlayer_store::types::Timestamp,
) -> Result<Vec<String>> {
    let mut q = Query::default();
    q.filter(namespace, filter, now);
    let sql = format!("SELECT i.id FROM items i {}", q.where_sql());
    let mut stmt = conn.prepare_cached(&sql).map_err(map_sqlite)?;
    let rows = stmt
        .query_map(params_from_iter(q.params.iter()), |r| r.get::<_, String>(0))
        .map_err(map_sqlite)?;
    rows.collect::<rusqlite::Result<Vec<String>>>()
        .map_err(map_sqlite)
}

/// Runs one search over a loaded set, with the filter checked in SQL: for the graph's
/// candidates by id, and as a whole query when the filter is too narrow for the graph.
fn search_set(
    conn: &Connection,
    set: &VectorSet<String>,
    namespace: &str,
    query: &[f32],
    filter: &Filter,
    k: usize,
    mut rows: Option<&mut HashMap<String, MemoryItem>>,
) -> Result<Vec<(f32, String)>> {
    let now = filter.effective_now();
    let mut accept =
        |ids: &[&String]| ask(conn, namespace, filter, now, ids, k, rows.as_deref_mut());
    let mut accepted = || accepted(conn, namespace, filter, now).map(Some);
    Ok(set.search(query, k, &mut accept, &mut accepted)?.hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_to_front_moves_exactly_the_best_n_to_the_front() {
        // Five score classes over 300 distinct ids: ties everywhere, as BM25 gives them.
        let ids: Vec<String> = (0..300u32)
            .map(|i| format!("i{:04}", (i * 7) % 300))
            .collect();
        let pairs: Vec<(f32, &String)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (((i * 13) % 5) as f32 * 0.5, id))
            .collect();
        let mut want = pairs.clone();
        want.sort_by(best_first);
        for n in [0, 1, 7, 40, 299, 300, 301] {
            let mut ranked = pairs.clone();
            best_to_front(&mut ranked, n);
            let cut = n.min(ranked.len());
            let mut front = ranked[..cut].to_vec();
            front.sort_by(best_first);
            assert_eq!(front, want[..cut].to_vec(), "n {n}");
            let mut all = ranked.clone();
            all.sort_by(best_first);
            assert_eq!(all, want, "n {n}: the pairs are the same pairs");
        }
    }
}

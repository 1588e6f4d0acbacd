#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod saved;
pub mod synthetic;

pub use saved::Origin;

use std::collections::HashMap;
use std::hash::Hash;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};

use memlayer_store::ranking::ints::IntMap;
use memlayer_store::ranking::sketch::{self, QuerySketch, Sketches};
use memlayer_store::ranking::vector::{
    MAX_SCAN_BATCH, TopK, best_first, dot, dots_into, dots_many_into,
};
use memlayer_store::{Error, ErrorKind, Result};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

/// When a vector set switches to a graph, and how the graph is built and searched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AnnConfig {
    /// A set of this many vectors or more is searched through an HNSW graph; smaller sets are
    /// scanned exactly. `usize::MAX` keeps every set exact.
    pub threshold: usize,
    /// Graph degree (HNSW `M`).
    pub connectivity: usize,
    /// Candidate list while inserting (HNSW `ef_construction`).
    pub expansion_add: usize,
    /// Candidate list while searching (HNSW `ef`), raised to the number of hits asked for.
    /// `None` (the default) grows with the set: see [`AnnConfig::expansion_at`].
    pub expansion_search: Option<usize>,
    /// Threads that insert a large batch into the graph together.
    pub build_threads: usize,
    /// The element type the graph stores and navigates by. Its candidates are always
    /// re-ranked by the exact f32 dot product, so a narrower type costs recall only where the
    /// graph's order hides a neighbour beyond its candidate list.
    pub quantization: Quantization,
    /// How concurrent exact scans of one set share passes over its vectors.
    pub scan_sharing: ScanSharing,
}

/// How concurrent exact scans of one set share passes over the vectors (see [`VectorSet`]).
/// Either way, a search alone runs its pass at once, and a pass scores every query waiting
/// (up to eight).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScanSharing {
    /// For searches run on an async executor's worker threads, one per core, which should
    /// not wait: a search that finds fewer passes running than there are cores runs one at
    /// once, and only waits when every core has one.
    #[default]
    PerCore,
    /// For searches run on a pool of threads that may wait (a blocking pool): while a pass
    /// runs, the queries arriving gather for the next one, and a second pass starts beside it
    /// only when a full batch waits. A pass for eight queries costs about three times a pass
    /// for one, so under load this scores more queries per core.
    Gather,
}

/// The graph's element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Quantization {
    /// 32-bit floats: 1,536 bytes per 384-d vector.
    F32,
    /// Half precision: half the memory traffic.
    F16,
    /// 8-bit integers (usearch scales unit vectors by 127): a quarter.
    I8,
}

impl Quantization {
    fn scalar_kind(self) -> ScalarKind {
        match self {
            Quantization::F32 => ScalarKind::F32,
            Quantization::F16 => ScalarKind::F16,
            Quantization::I8 => ScalarKind::I8,
        }
    }
}

impl Default for AnnConfig {
    /// 20,000 vectors (an exact scan of that many takes about 1 ms on one core with the f32
    /// kernel, a third of that through sketches: twice the 10k kernel rows of
    /// `docs/benchmarks.md`), M = 16,
    /// ef_construction = 128, ef growing with the set (64 up to 100,000 vectors, 192 from
    /// 1,000,000), i8 elements: recall@10 0.98 at under 1 ms on 1M clustered 384-d vectors
    /// here, where f32 elements at ef 64 gave 0.82 (`--example tune`; the figures are in
    /// `docs/benchmarks.md`).
    fn default() -> Self {
        AnnConfig {
            threshold: 20_000,
            connectivity: 16,
            expansion_add: 128,
            expansion_search: None,
            build_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            quantization: Quantization::I8,
            scan_sharing: ScanSharing::PerCore,
        }
    }
}

impl AnnConfig {
    /// Every set exact, whatever its size.
    pub fn exact() -> Self {
        AnnConfig {
            threshold: usize::MAX,
            ..AnnConfig::default()
        }
    }

    /// The default configuration with another threshold.
    pub fn with_threshold(mut self, threshold: usize) -> Self {
        self.threshold = threshold.max(1);
        self
    }

    /// The default configuration with a fixed search expansion, whatever the set's size.
    pub fn with_expansion_search(mut self, ef: usize) -> Self {
        self.expansion_search = Some(ef.max(1));
        self
    }

    /// The search expansion for a set of `n` vectors: the fixed one if set, otherwise 64 up
    /// to 100,000 vectors and 192 from 1,000,000, growing with the logarithm of `n` between.
    ///
    /// A graph needs a wider candidate list as a query's near neighbours grow more numerous.
    /// On the bench's clustered vectors (`cargo run --release -p memlayer-ann --example tune
    /// -- N 16 i8 EFS 40`), re-ranked recall@10 was 1.000 at ef 64 for 100,000 vectors,
    /// 0.988 at ef 64 and 1.000 at ef 96 for 300,000 (this rule gives 125), and 0.951 at ef
    /// 128 and 0.981 at ef 192 for 1,000,000; ef 192 searched 100,000 vectors in twice the
    /// time ef 64 did.
    pub fn expansion_at(&self, n: usize) -> usize {
        if let Some(ef) = self.expansion_search {
            return ef;
        }
        let (small, large) = (100_000f64, 1_000_000f64);
        let x = ((n as f64).clamp(small, large) / small).log10() / (large / small).log10();
        (MIN_EXPANSION as f64 + x * (MAX_EXPANSION - MIN_EXPANSION) as f64).round() as usize
    }

    /// The expansion a graph keeps as its own, below every search's.
    fn expansion_floor(&self) -> usize {
        self.expansion_search.unwrap_or(MIN_EXPANSION)
    }

    /// The default configuration with another graph degree.
    pub fn with_connectivity(mut self, m: usize) -> Self {
        self.connectivity = m.max(2);
        self
    }

    /// The default configuration with another graph element type.
    pub fn with_quantization(mut self, quantization: Quantization) -> Self {
        self.quantization = quantization;
        self
    }

    /// The configuration with another way of sharing exact scans.
    pub fn with_scan_sharing(mut self, sharing: ScanSharing) -> Self {
        self.scan_sharing = sharing;
        self
    }
}

/// The size-grown search expansion at 100,000 vectors and fewer.
const MIN_EXPANSION: usize = 64;
/// The size-grown search expansion at 1,000,000 vectors and more.
const MAX_EXPANSION: usize = 192;

/// Runs `each` over `batch` in chunks of `per`, one thread per chunk; the first error wins.
fn in_parallel<'a, T: Sync>(
    batch: &'a [T],
    per: usize,
    each: impl Fn(&'a T) -> Result<()> + Sync,
) -> Result<()> {
    let each = &each;
    std::thread::scope(|s| {
        let workers: Vec<_> = batch
            .chunks(per.max(1))
            .map(|chunk| s.spawn(move || chunk.iter().try_for_each(each)))
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .map_err(|_| index_error("build", "a worker thread panicked"))?
        })
    })
}

/// The search expansion of the first check for stranded nodes: every node of a parallel
/// insert searches for itself among its 10 nearest at this width, which is cheap.
const STRANDED_CHECK_EF: usize = 16;

/// The search expansion of the second check, for the nodes the first one flagged; the ones
/// this does not find either are re-inserted. Measured on 300k clustered i8 vectors built by
/// two threads (`cargo run --release -p memlayer-ann --example stranded -- 300000 2`): ef 16
/// flagged 37,137 nodes (12.4%), of which 13,241 were not found at ef 32, 2,437 at ef 64, 85
/// at ef 192 and 63 at ef 1000 (the truly stranded). Searching the flagged again at ef 64
/// took 16.3 s on one thread, half that on two, and spared re-inserting 34,700 of them, which
/// one thread does at about 0.6 ms each (21.7 s for all 37,137).
const STRANDED_RECHECK_EF: usize = 64;

/// The nodes of `batch` the graph may have stranded: usearch's concurrent `add` can leave a
/// node stored but unreachable from the entry point (unum-cloud/USearch#735), here 3-5 of
/// 20,000 vectors inserted by two threads and none by one, 63 of 300,000 (`--example
/// stranded`), and a stranded node is never found again.
///
/// Each node searches for itself at ef 16, in parallel; the ones it does not find search again
/// at ef 64, and those still not found are returned, to be re-inserted by one thread (a lone
/// inserter does not strand nodes). The graph's own search expansion is `expansion_search`
/// afterwards (the floor every search widens from).
fn stranded<'b>(
    index: &Index,
    batch: &'b [(u64, Vec<f32>)],
    threads: usize,
    expansion_search: usize,
) -> Result<Vec<&'b (u64, Vec<f32>)>> {
    let all: Vec<&(u64, Vec<f32>)> = batch.iter().collect();
    let found = not_finding_themselves(index, &all, threads, STRANDED_CHECK_EF)
        .and_then(|flagged| not_finding_themselves(index, &flagged, threads, STRANDED_RECHECK_EF));
    index.change_expansion_search(expansion_search);
    found
}

/// The nodes of `entries` that do not find themselves among their 10 nearest at search
/// expansion `ef`, searched for from `threads` threads.
fn not_finding_themselves<'b>(
    index: &Index,
    entries: &[&'b (u64, Vec<f32>)],
    threads: usize,
    ef: usize,
) -> Result<Vec<&'b (u64, Vec<f32>)>> {
    let found = Mutex::new(Vec::new());
    index.change_expansion_search(ef);
    in_parallel(entries, entries.len().div_ceil(threads.max(1)), |entry| {
        let hits = index
            .search(&entry.1, 10)
            .map_err(|e| index_error("search", e))?;
        if !hits.keys.contains(&entry.0) {
            found.lock().unwrap_or_else(|e| e.into_inner()).push(*entry);
        }
        Ok(())
    })?;
    Ok(found.into_inner().unwrap_or_else(|e| e.into_inner()))
}

pub(crate) fn index_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Unexpected, format!("HNSW index {what}: {e}"))
}

/// The share of graph candidates a filter must pass for the graph search to widen; a
/// narrower filter goes to the exact scan of the vectors it accepts.
const MIN_GRAPH_PASS_RATE: f64 = 0.02;

/// Search contexts the graph reserves: usearch fails a search when more threads search at
/// once than it has contexts for, so searches beyond this many wait for a free one.
const SEARCH_SLOTS: usize = 32;

/// A counting gate over the graph's search contexts.
#[derive(Debug)]
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

struct Slot<'a>(&'a Slots);

impl Slots {
    fn new(n: usize) -> Self {
        Slots {
            free: Mutex::new(n),
            freed: Condvar::new(),
        }
    }

    fn acquire(&self) -> Slot<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.freed.notify_one();
    }
}

/// Exact scans waiting for a pass over the matrix. Concurrent searches of one set share
/// passes: a search that may start a pass ([`ScanSharing`] says when) runs one for every
/// query waiting (up to [`MAX_SCAN_BATCH`]); otherwise it waits for a pass to score its
/// query. Each row is read once per pass and meets every query from the L1 cache, so a pass
/// for eight queries costs about three times a pass for one. At most one pass per core runs.
#[derive(Debug, Default)]
struct Scans {
    state: Mutex<ScanState>,
}

#[derive(Debug, Default)]
struct ScanState {
    /// Queries waiting for a pass, oldest first.
    waiting: Vec<Waiting>,
    /// Outcomes of the queries whose pass has ended, by ticket: their scores, or `None`
    /// when the pass did not finish.
    done: HashMap<u64, Option<Vec<f32>>>,
    next_ticket: u64,
    /// Passes running.
    running: usize,
}

/// A query waiting for a pass, and how to wake its search: each search sleeps on a condition
/// of its own, so the end of a pass wakes the searches it scored and the oldest one still
/// waiting (to run the next), not every search waiting.
#[derive(Debug)]
struct Waiting {
    ticket: u64,
    query: Vec<f32>,
    /// The query's sketch, when the set scans sketches: the pass then estimates its scores.
    sketch: Option<QuerySketch>,
    wake: Arc<Condvar>,
}

impl ScanState {
    /// Whether a search may start a pass now (see [`ScanSharing`]).
    fn may_run(&self, sharing: ScanSharing) -> bool {
        let room = self.running < pass_limit();
        !self.waiting.is_empty()
            && match sharing {
                ScanSharing::PerCore => room,
                ScanSharing::Gather => {
                    self.running == 0 || (room && self.waiting.len() >= MAX_SCAN_BATCH)
                }
            }
    }
}

/// How many passes may run at once: one per core.
fn pass_limit() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A running pass: its queries, and their scores once computed. Dropped, whichever way the
/// pass ends, it records every query's outcome (`None` for those it did not score), counts
/// itself out, and wakes the searches it served and the oldest one still waiting.
struct Pass<'a> {
    scans: &'a Scans,
    batch: Vec<Waiting>,
    scores: Vec<Vec<f32>>,
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let mut state = self.scans.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut scores = std::mem::take(&mut self.scores).into_iter();
        for w in &self.batch {
            state.done.insert(w.ticket, scores.next());
        }
        state.running -= 1;
        for w in &self.batch {
            w.wake.notify_one();
        }
        if let Some(next) = state.waiting.first() {
            next.wake.notify_one();
        }
    }
}

/// The bit a removed node's label carries in the graph (see [`bury`]); live labels count up
/// from 0 and never reach it.
const BURIED: u64 = 1 << 63;

/// Takes `label`'s node out of the answers but leaves it in the graph, vector and links and
/// all, as a waypoint: its label gains the [`BURIED`] bit, and searches pass it over.
///
/// usearch's own `remove` frees the node's slot for the next insert, which rewrites the
/// node's vector and out-links but leaves its old neighbours' links to it: they then lead to
/// an unrelated vector. A graph restored from a save with 70 of 600 nodes removed and 100
/// inserted that way found 0.945-0.970 of the exact scan's top 10 in 30 runs of
/// memlayer-store-sqlite's `tests/indexes.rs`, where one built afresh found 1.0; buried, it
/// finds 1.0 too (and `a_graph_kept_through_changes_keeps_its_recall` here).
fn bury(index: &Index, label: u64) -> Result<()> {
    index
        .rename(label, label | BURIED)
        .map_err(|e| index_error("remove", e))?;
    Ok(())
}

/// The graph and the maps between the caller's keys and the graph's labels.
struct Graph {
    index: Index,
    /// Buried nodes (see [`bury`]): the graph is rebuilt when they outnumber the live
    /// vectors, as they still cost traversal time.
    removed: usize,
    slots: Slots,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("size", &self.index.size())
            .field("removed", &self.removed)
            .finish()
    }
}

/// The vectors of one namespace, keyed by `K` (an item id, a row id): stored normalised, so
/// that a dot product is the cosine, in one contiguous f32 matrix. Below
/// [`AnnConfig::threshold`] that matrix is scanned exactly; from the threshold on, an HNSW
/// graph (usearch, inner product, of [`AnnConfig::quantization`] elements) finds candidates,
/// kept in step with every upsert and removal, and the matrix re-ranks them exactly.
///
/// Search takes a predicate (the caller's filter, by key) and always returns the `k` best
/// accepted vectors that the graph finds, widening the graph search while too few pass and
/// falling back to an exact scan over the accepted keys when the filter is too narrow for the
/// graph (see [`VectorSet::search`]).
#[derive(Debug)]
pub struct VectorSet<K> {
    dim: usize,
    config: AnnConfig,
    /// Label of each key; labels are never reused.
    label_of: HashMap<K, u64>,
    /// Key of each label, for the graph's answers.
    key_of: IntMap<u64, K>,
    next_label: u64,
    /// Row `i` of `rows` belongs to `row_labels[i]`; `row_of` maps back.
    rows: Vec<f32>,
    row_labels: Vec<u64>,
    row_of: IntMap<u64, usize>,
    /// Eight-bit sketches of the rows, row for row, while the set is scanned exactly on a CPU
    /// with the sketch kernel (see [`sketch`]): a scan reads them and scores only the rows
    /// that may be among the best with the f32 kernel.
    sketches: Option<Sketches>,
    graph: Option<Graph>,
    /// Whether the graph changed since it was saved or restored.
    unsaved: bool,
    /// Exact scans of concurrent searches, run together.
    scans: Scans,
}

/// One search's outcome: the hits, and how they were found (for reports and tests).
#[derive(Clone, Debug, PartialEq)]
pub struct Found<K> {
    /// (cosine, key), best first, ties by key.
    pub hits: Vec<(f32, K)>,
    /// Whether the graph answered (false: an exact scan did).
    pub approximate: bool,
}

impl<K: Clone + Eq + Hash + Ord> VectorSet<K> {
    /// An empty set of `dim`-dimensional vectors.
    pub fn new(dim: usize, config: AnnConfig) -> Self {
        VectorSet {
            dim,
            config,
            label_of: HashMap::new(),
            key_of: IntMap::default(),
            next_label: 0,
            rows: Vec::new(),
            row_labels: Vec::new(),
            row_of: IntMap::default(),
            sketches: sketch::fast().then(|| Sketches::new(dim)),
            graph: None,
            unsaved: false,
            scans: Scans::default(),
        }
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// How many vectors the set holds.
    pub fn len(&self) -> usize {
        self.label_of.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.label_of.is_empty()
    }

    /// Whether searches go through the graph.
    pub fn is_approximate(&self) -> bool {
        self.graph.is_some()
    }

    /// Whether `key` has a vector here.
    pub fn contains(&self, key: &K) -> bool {
        self.label_of.contains_key(key)
    }

    fn check_dim(&self, v: &[f32]) -> Result<()> {
        if v.len() != self.dim {
            return Err(Error::invalid(
                "vector",
                format!(
                    "has dimension {}, but this set holds dimension {}",
                    v.len(),
                    self.dim
                ),
            ));
        }
        Ok(())
    }

    /// Adds or replaces the vector of `key`.
    ///
    /// # Errors
    /// `InvalidInput` for a vector of another dimension; `Unexpected` if the graph fails.
    pub fn upsert(&mut self, key: K, vector: &[f32]) -> Result<()> {
        self.upsert_many(std::iter::once((key, vector)))
    }

    /// Adds or replaces many vectors; a batch that takes the set over the threshold builds the
    /// graph once, and large batches are inserted into the graph by several threads.
    ///
    /// # Errors
    /// As [`VectorSet::upsert`]; vectors before a failing one stay written.
    pub fn upsert_many<'v>(
        &mut self,
        entries: impl IntoIterator<Item = (K, &'v [f32])>,
    ) -> Result<()> {
        let pending = self.add_rows(entries)?;
        if !pending.is_empty() {
            self.insert_into_graph(&pending)?;
        }
        if self.graph.is_none() && self.len() >= self.config.threshold {
            self.build_graph()?;
        }
        Ok(())
    }

    /// Writes the rows of `entries` (replacing their keys' old rows); returns the labelled,
    /// normalised vectors the graph, if there is one, has yet to take.
    fn add_rows<'v>(
        &mut self,
        entries: impl IntoIterator<Item = (K, &'v [f32])>,
    ) -> Result<Vec<(u64, Vec<f32>)>> {
        let mut pending: Vec<(u64, Vec<f32>)> = Vec::new();
        for (key, vector) in entries {
            self.check_dim(vector)?;
            self.remove(&key)?;
            let label = self.next_label;
            self.next_label += 1;
            self.label_of.insert(key.clone(), label);
            self.key_of.insert(label, key);
            let mut v = vector.to_vec();
            synthetic::normalise(&mut v);
            self.row_of.insert(label, self.row_labels.len());
            self.row_labels.push(label);
            self.rows.extend_from_slice(&v);
            if let Some(sketches) = &mut self.sketches {
                sketches.push(&v);
            }
            if self.graph.is_some() {
                pending.push((label, v));
            }
        }
        Ok(pending)
    }

    /// Removes the vector of `key`; whether there was one.
    ///
    /// # Errors
    /// `Unexpected` if the graph fails.
    pub fn remove(&mut self, key: &K) -> Result<bool> {
        let Some(label) = self.label_of.remove(key) else {
            return Ok(false);
        };
        self.key_of.remove(&label);
        if let Some(row) = self.row_of.remove(&label) {
            let last = self.row_labels.len() - 1;
            self.row_labels.swap_remove(row);
            if row != last {
                let moved = self.row_labels[row];
                self.row_of.insert(moved, row);
                let (head, tail) = self.rows.split_at_mut(last * self.dim);
                head[row * self.dim..(row + 1) * self.dim].copy_from_slice(&tail[..self.dim]);
            }
            self.rows.truncate(last * self.dim);
            if let Some(sketches) = &mut self.sketches {
                sketches.swap_remove(row);
            }
        }
        if let Some(graph) = &mut self.graph {
            bury(&graph.index, label)?;
            self.unsaved = true;
            graph.removed += 1;
            if graph.removed > self.label_of.len().max(1024) {
                self.build_graph()?;
            }
        }
        Ok(true)
    }

    /// Thread contexts to reserve: enough for the builders and for [`SEARCH_SLOTS`] searches.
    fn contexts(&self) -> usize {
        self.config.build_threads.max(SEARCH_SLOTS)
    }

    fn new_index(&self, capacity: usize) -> Result<Index> {
        let index = self.empty_index()?;
        index
            .reserve_capacity_and_threads(capacity.max(16), self.contexts())
            .map_err(|e| index_error("reservation", e))?;
        Ok(index)
    }

    /// A graph with this set's options and no room reserved (to load a saved graph into).
    fn empty_index(&self) -> Result<Index> {
        let options = IndexOptions {
            dimensions: self.dim,
            metric: MetricKind::IP,
            quantization: self.config.quantization.scalar_kind(),
            connectivity: self.config.connectivity,
            expansion_add: self.config.expansion_add,
            // Every search asks for `expansion_at` candidates or more, which widens the list.
            expansion_search: self.config.expansion_floor(),
            multi: false,
        };
        Index::new(&options).map_err(|e| index_error("creation", e))
    }

    /// (Re)builds the graph from every vector of the set.
    fn build_graph(&mut self) -> Result<()> {
        let all: Vec<(u64, Vec<f32>)> = self
            .row_labels
            .iter()
            .zip(self.rows.chunks_exact(self.dim))
            .map(|(label, v)| (*label, v.to_vec()))
            .collect();
        let index = self.new_index(all.len() + all.len() / 4)?;
        // The graph answers from now on; the sketches only served the exact scan.
        self.sketches = None;
        self.graph = Some(Graph {
            index,
            removed: 0,
            slots: Slots::new(SEARCH_SLOTS),
        });
        self.insert_into_graph(&all)
    }

    /// Inserts labelled, normalised vectors into the graph, growing it as needed.
    fn insert_into_graph(&mut self, batch: &[(u64, Vec<f32>)]) -> Result<()> {
        let threads = self.config.build_threads.max(1);
        let contexts = self.contexts();
        let Some(graph) = &mut self.graph else {
            return Ok(());
        };
        self.unsaved = true;
        let needed = graph.index.size() + batch.len();
        if needed > graph.index.capacity() {
            graph
                .index
                .reserve_capacity_and_threads(needed.saturating_mul(3) / 2, contexts)
                .map_err(|e| index_error("reservation", e))?;
        }
        let index = &graph.index;
        if threads == 1 || batch.len() < 256 {
            for (label, v) in batch {
                index.add(*label, v).map_err(|e| index_error("insert", e))?;
            }
            return Ok(());
        }
        let per = batch.len().div_ceil(threads);
        in_parallel(batch, per, |(label, v)| {
            index.add(*label, v).map_err(|e| index_error("insert", e))
        })?;
        let stranded = stranded(index, batch, threads, self.config.expansion_floor())?;
        for (label, v) in &stranded {
            // usearch's `remove` frees the slot and the `add` takes it back with the same
            // vector, linking it anew: the links that lead to it stay right.
            index.remove(*label).map_err(|e| index_error("remove", e))?;
            index.add(*label, v).map_err(|e| index_error("insert", e))?;
        }
        Ok(())
    }

    /// The keys of graph `labels` with their exact dot products with `q`, best first.
    fn reranked(&self, q: &[f32], labels: &[u64]) -> Vec<(f32, &K)> {
        let mut pairs: Vec<(f32, &K)> = labels
            .iter()
            .filter_map(|label| Some((dot(q, self.row(*label)?), self.key_of.get(label)?)))
            .collect();
        pairs.sort_by(best_first);
        pairs
    }

    /// The stored (normalised) vector of `label`.
    fn row(&self, label: u64) -> Option<&[f32]> {
        let row = *self.row_of.get(&label)?;
        self.rows.get(row * self.dim..(row + 1) * self.dim)
    }

    /// The `k` best vectors of the set by cosine with `query`, among those whose key
    /// `accept` admits.
    ///
    /// Below the threshold: an exact scan. Above it: the graph searches at expansion
    /// `max(ef, 2k)`, and its best `max(2k, 40)` are re-ranked by the exact dot product and
    /// filtered, the best `max(2k, 20)` first; the rest of its candidates are re-ranked and
    /// filtered only when too few of those pass. While fewer than `k` pass, the search widens by the
    /// pass rate seen, up to
    /// `max(4096, 4k)` candidates. A filter that passes under 2% of the candidates, or still
    /// too few after widening, gets an exact scan over the keys `accepted` lists (the caller's
    /// filter run as a query), or over every vector when the caller gives none. So a selective
    /// filter costs more, but never returns fewer hits than exist.
    ///
    /// # Errors
    /// `InvalidInput` for a query of another dimension; `Unexpected` if the graph fails; the
    /// predicate's own errors.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        accept: &mut dyn FnMut(&[&K]) -> Result<Vec<bool>>,
        accepted: &mut dyn FnMut() -> Result<Option<Vec<K>>>,
    ) -> Result<Found<K>> {
        self.check_dim(query)?;
        if k == 0 || self.is_empty() {
            return Ok(Found {
                hits: Vec::new(),
                approximate: self.is_approximate(),
            });
        }
        let mut found = self.search_normalised(query, k, accept, accepted)?;
        for hit in &mut found.hits {
            // Rounding can take a normalised dot product a hair past ±1.
            hit.0 = if hit.0.is_finite() {
                hit.0.clamp(-1.0, 1.0)
            } else {
                0.0
            };
        }
        Ok(found)
    }

    fn search_normalised(
        &self,
        query: &[f32],
        k: usize,
        accept: &mut dyn FnMut(&[&K]) -> Result<Vec<bool>>,
        accepted: &mut dyn FnMut() -> Result<Option<Vec<K>>>,
    ) -> Result<Found<K>> {
        let mut q = query.to_vec();
        synthetic::normalise(&mut q);
        let Some(graph) = &self.graph else {
            return Ok(Found {
                hits: self.scan_rows(&q, k, accept, accepted)?,
                approximate: false,
            });
        };
        let cap = (4 * k).max(4096).min(self.len());
        // Twice `k`: a hybrid search's 200-deep pool asked for 800 (4k) until the bench's
        // hybrid recall@10 at 100k showed 1.0 at 400 too, in a fifth to a third less time.
        let mut want = (2 * k).max(40).min(self.len());
        let ef = self.config.expansion_at(self.len());
        loop {
            let found = {
                let _slot = graph.slots.acquire();
                let wanted = want.max(ef).min(self.len());
                if graph.removed == 0 {
                    graph.index.search(&q, wanted)
                } else {
                    graph
                        .index
                        .filtered_search(&q, wanted, |label| label & BURIED == 0)
                }
                .map_err(|e| index_error("search", e))?
            };
            // The graph's best `want` are re-ranked by the exact dot product (its own
            // distances may be quantized) and filtered; the rest of its `ef` candidates only
            // when too few of those pass. Each re-ranked candidate is a random read of its
            // row: at 1M vectors the bench's p50 fell from 2.13 to 1.31 ms (SQLite) and from
            // 1.83 to 0.82 ms (memory) at recall@10 0.99 or more (`docs/benchmarks.md`).
            let head = want.min(found.keys.len());
            let pairs = self.reranked(&q, &found.keys[..head]);
            let (mut top, mut asked) = first_passing(&pairs, k, accept)?;
            if top.len() < k && found.keys.len() > head {
                let rest = self.reranked(&q, &found.keys[head..]);
                let (more, more_asked) = first_passing(&rest, k, accept)?;
                top.extend(more);
                top.sort_by(best_first);
                top.truncate(k);
                asked += more_asked;
            }
            let passed = top.len();
            if passed >= k || found.keys.len() >= self.len() {
                return Ok(Found {
                    hits: top,
                    approximate: true,
                });
            }
            // Below a 2% pass rate the k-th accepted vector lies hundreds of places down the
            // unfiltered ranking, where a graph's order is unreliable and a wide graph search
            // costs more than scanning the few accepted vectors exactly.
            let rate = passed as f64 / asked.max(1) as f64;
            if want >= cap || rate < MIN_GRAPH_PASS_RATE {
                break;
            }
            // Widen by the pass rate seen (with a margin), at least fourfold.
            want = (((k as f64 / rate) * 2.0) as usize).max(want * 4).min(cap);
        }
        // The filter is too narrow for the graph: exact over what it accepts.
        let (keys, prefiltered) = match accepted()? {
            Some(keys) => (keys, true),
            None => (self.label_of.keys().cloned().collect(), false),
        };
        let mut candidates: Vec<(f32, &K)> = Vec::with_capacity(keys.len());
        for key in &keys {
            if let Some(row) = self.label_of.get(key).and_then(|label| self.row(*label)) {
                candidates.push((dot(&q, row), key));
            }
        }
        let pass = if prefiltered {
            vec![true; candidates.len()]
        } else {
            accept(&candidates.iter().map(|c| c.1).collect::<Vec<_>>())?
        };
        let mut top = TopK::new(k);
        for ((score, key), ok) in candidates.into_iter().zip(pass) {
            if ok && top.admits(score) {
                top.offer(score, key.clone());
            }
        }
        Ok(Found {
            hits: top.into_sorted(),
            approximate: false,
        })
    }

    /// Every row's dot product with `q`, in row order, computed in a pass shared with the
    /// searches scanning this set at the same time (see [`Scans`]): the f32 kernel's scores,
    /// or, given `q`'s sketch, the sketches' estimates of them.
    fn scores(&self, q: &[f32], sketch: Option<QuerySketch>) -> Result<Vec<f32>> {
        let scans = &self.scans;
        let wake = Arc::new(Condvar::new());
        let mut state = scans.state.lock().unwrap_or_else(|e| e.into_inner());
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.waiting.push(Waiting {
            ticket,
            query: q.to_vec(),
            sketch,
            wake: wake.clone(),
        });
        loop {
            if let Some(outcome) = state.done.remove(&ticket) {
                return outcome.ok_or_else(|| {
                    Error::new(ErrorKind::Unexpected, "an exact scan did not finish")
                });
            }
            if !state.may_run(self.config.scan_sharing) {
                state = wake.wait(state).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            state.running += 1;
            let take = state.waiting.len().min(MAX_SCAN_BATCH);
            let mut pass = Pass {
                scans,
                batch: state.waiting.drain(..take).collect(),
                scores: Vec::new(),
            };
            drop(state);
            // Sketched queries first (outcomes go by ticket, so the order is free), so that
            // each kernel fills one run of the outputs.
            pass.batch.sort_by_key(|w| w.sketch.is_none());
            let mut outs = vec![Vec::new(); pass.batch.len()];
            let sketched: Vec<&QuerySketch> = pass
                .batch
                .iter()
                .filter_map(|w| w.sketch.as_ref())
                .collect();
            let (estimated, exact) = outs.split_at_mut(sketched.len());
            if let Some(sketches) = &self.sketches {
                sketch::estimates_many(&sketched, sketches, estimated);
            }
            let plain: Vec<&[f32]> = pass.batch[sketched.len()..]
                .iter()
                .map(|w| w.query.as_slice())
                .collect();
            dots_many_into(&plain, &self.rows, exact);
            pass.scores = outs;
            drop(pass);
            state = scans.state.lock().unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The `n` best rows by `scored`, best first, ties by key, with their f32 scores.
    fn best_rows(&self, scored: &Scored, n: usize) -> Vec<(f32, &K)> {
        match scored {
            Scored::Exact(scores) => self.best_of(scores.iter().copied().enumerate(), n),
            Scored::Estimated {
                query,
                sketch,
                estimates,
                sketches,
            } => {
                let found = sketches.candidates(sketch, query, estimates, &self.rows, n);
                self.best_of(found.into_iter().map(|(score, row)| (row, score)), n)
            }
        }
    }

    /// The `n` best of `(row, score)` pairs, best first, ties by key. The rows are ranked by
    /// position first, and only those scoring at least the `n`-th best score (`n` rows, more
    /// on a tie) are looked up by label, so a scan of 10,000 rows makes about `n` key lookups
    /// instead of one for every row the running top-k admits.
    fn best_of(
        &self,
        scores: impl Iterator<Item = (usize, f32)> + Clone,
        n: usize,
    ) -> Vec<(f32, &K)> {
        let mut by_row = TopK::new(n);
        for (row, score) in scores.clone() {
            if by_row.admits(score) {
                by_row.offer(score, row);
            }
        }
        let Some(&(cut, _)) = by_row.into_sorted().last() else {
            return Vec::new();
        };
        let mut best = TopK::new(n);
        for (row, score) in scores {
            // (A NaN cut, from a NaN score, leaves the check to the top-k alone.)
            if (score >= cut || cut.is_nan())
                && best.admits(score)
                && let Some(key) = self.row_labels.get(row).and_then(|l| self.key_of.get(l))
            {
                best.offer(score, key);
            }
        }
        best.into_sorted()
    }

    /// Exact mode: every row's dot product with `q` (from the sketches' estimates and the f32
    /// kernel where the set has sketches, see [`sketch`]; the f32 kernel alone elsewhere); the
    /// filter is asked about the best `k`, then about the next of the best `max(4k, 64)`
    /// (the first `max(2k, 20)` of those first), and about the rest of the ranking, in
    /// growing slices, only if too few of those pass.
    /// When under 2% of those asked about pass, the keys `accepted` lists are ranked instead
    /// (the ranking as is, when the caller gives none).
    fn scan_rows(
        &self,
        q: &[f32],
        k: usize,
        accept: &mut dyn FnMut(&[&K]) -> Result<Vec<bool>>,
        accepted: &mut dyn FnMut() -> Result<Option<Vec<K>>>,
    ) -> Result<Vec<(f32, K)>> {
        let sketched = self
            .sketches
            .as_ref()
            .filter(|s| s.bounded())
            .and_then(|s| Some((s, s.sketch_query(q)?)));
        let scored = match sketched {
            Some((sketches, sketch)) => Scored::Estimated {
                estimates: self.scores(q, Some(sketch.clone()))?,
                query: q,
                sketch,
                sketches,
            },
            None => Scored::Exact(self.scores(q, None)?),
        };
        // The filter is asked about the best `k` first: with sketches, finding the best `n`
        // scores about as many rows with the f32 kernel as there are rows within the
        // sketches' error of the `n`-th, and past the first few neighbours of a query the
        // scores crowd together.
        let head = self.best_rows(&scored, k);
        let (mut top, mut asked) = first_passing(&head, k, accept)?;
        if top.len() >= k || head.len() >= self.row_labels.len() {
            return Ok(top);
        }
        let first = (4 * k).max(64);
        let best = self.best_rows(&scored, first);
        let (more, more_asked) =
            first_passing(&best[head.len().min(best.len())..], k - top.len(), accept)?;
        top.extend(more);
        asked += more_asked;
        if top.len() >= k || best.len() >= self.row_labels.len() {
            return Ok(top);
        }
        // A filter passing under 2% of the best: rank what it accepts instead of asking it
        // about ever longer runs of the ranking.
        if (top.len() as f64) < MIN_GRAPH_PASS_RATE * asked as f64
            && let Some(keys) = accepted()?
        {
            let mut top = TopK::new(k);
            for key in &keys {
                if let Some(&label) = self.label_of.get(key)
                    && let Some(&row) = self.row_of.get(&label)
                {
                    let score = match &scored {
                        Scored::Exact(scores) => scores.get(row).copied(),
                        Scored::Estimated { .. } => self.row(label).map(|v| dot(q, v)),
                    };
                    if let Some(score) = score
                        && top.admits(score)
                    {
                        top.offer(score, key.clone());
                    }
                }
            }
            return Ok(top.into_sorted());
        }
        // Every row's f32 score, for the rest of the ranking.
        let scores = match scored {
            Scored::Exact(scores) => scores,
            Scored::Estimated { .. } => {
                let mut scores = Vec::new();
                dots_into(q, &self.rows, &mut scores);
                scores
            }
        };
        let mut order: Vec<(f32, &K)> = scores
            .iter()
            .zip(&self.row_labels)
            .filter_map(|(s, label)| Some((*s, self.key_of.get(label)?)))
            .collect();
        order.sort_by(best_first);
        let mut start = best.len();
        let mut step = first * 4;
        while start < order.len() && top.len() < k {
            let end = (start + step).min(order.len());
            let slice = &order[start..end];
            let pass = accept(&slice.iter().map(|p| p.1).collect::<Vec<_>>())?;
            for ((score, key), ok) in slice.iter().zip(pass) {
                if ok && top.len() < k {
                    top.push((*score, (*key).clone()));
                }
            }
            start = end;
            step *= 4;
        }
        Ok(top)
    }
}

/// A query's scores from an exact pass: the f32 kernel's, or the sketches' estimates.
enum Scored<'a> {
    /// Every row's f32 score, in row order.
    Exact(Vec<f32>),
    /// Every row's estimate, in row order, with what turns them into f32 scores.
    Estimated {
        query: &'a [f32],
        sketch: QuerySketch,
        estimates: Vec<f32>,
        sketches: &'a Sketches,
    },
}

/// The first `k` of `ranked` (best first) that `accept` passes, in order, and how many it was
/// asked about. It is asked about the best `k` first, which is enough when all pass (and lets
/// a caller that reads the rows it is asked about read just the hits), then up to the best
/// `max(2k, 20)`, and about the rest of `ranked` only if fewer than `k` of those pass: each
/// question may cost the caller a query.
fn first_passing<K: Clone>(
    ranked: &[(f32, &K)],
    k: usize,
    accept: &mut dyn FnMut(&[&K]) -> Result<Vec<bool>>,
) -> Result<(Vec<(f32, K)>, usize)> {
    let head = k.min(ranked.len());
    let first = (2 * k).max(20).clamp(head, ranked.len());
    let mut top = Vec::with_capacity(k);
    let mut asked = 0;
    for run in [&ranked[..head], &ranked[head..first], &ranked[first..]] {
        if top.len() >= k || run.is_empty() {
            break;
        }
        let pass = accept(&run.iter().map(|p| p.1).collect::<Vec<_>>())?;
        asked += run.len();
        top.extend(
            run.iter()
                .zip(pass)
                .filter(|(_, ok)| *ok)
                .take(k - top.len())
                .map(|((score, key), _)| (*score, (*key).clone())),
        );
    }
    Ok((top, asked))
}

/// Removes the graph saved under `base` by [`VectorSet::save_graph`], if there is one.
///
/// # Errors
/// `Unexpected` when a file exists but cannot be removed.
pub fn remove_saved_graph(base: &Path) -> Result<()> {
    saved::remove(base)
}

/// Vectors read into a new set whose graph is built, or restored from a saved one, once they
/// are all in: see [`VectorSet::loader`].
#[derive(Debug)]
pub struct Loader<K> {
    set: VectorSet<K>,
}

impl<K: Clone + Eq + Hash + Ord + AsRef<[u8]>> Loader<K> {
    /// Adds vectors (a key given twice keeps its last vector); no graph work yet.
    ///
    /// # Errors
    /// `InvalidInput` for a vector of another dimension.
    pub fn add_many<'v>(
        &mut self,
        entries: impl IntoIterator<Item = (K, &'v [f32])>,
    ) -> Result<()> {
        self.set.add_rows(entries).map(|_| ())
    }

    /// The set, searchable: exact below the threshold; above it, the graph saved under
    /// `saved` (see [`VectorSet::save_graph`]) brought in line with the vectors added, or,
    /// when there is no usable saved graph, one built from them. A saved graph is usable when
    /// its files are whole, it was saved with this set's dimension, degree, insertion width
    /// and element type, and at least half of the vectors are unchanged in it.
    ///
    /// # Errors
    /// `Unexpected` if the graph fails.
    pub fn finish(self, saved: Option<&Path>) -> Result<(VectorSet<K>, Origin)> {
        let mut set = self.set;
        if set.len() < set.config.threshold {
            if sketch::fast() {
                let mut sketches = Sketches::new(set.dim);
                for row in set.rows.chunks_exact(set.dim) {
                    sketches.push(row);
                }
                set.sketches = Some(sketches);
            }
            return Ok((set, Origin::Exact));
        }
        if let Some(base) = saved
            && let Some(origin) = set.restore_graph(base)?
        {
            return Ok((set, origin));
        }
        set.build_graph()?;
        Ok((set, Origin::Built))
    }
}

impl<K: Clone + Eq + Hash + Ord + AsRef<[u8]>> VectorSet<K> {
    /// A loader for a new set of `dim`-dimensional vectors: add them all, then
    /// [`Loader::finish`] builds the graph once, or restores a saved one.
    pub fn loader(dim: usize, config: AnnConfig) -> Loader<K> {
        let mut set = VectorSet::new(dim, config);
        // Sketched in `finish`, and only if the set stays exact.
        set.sketches = None;
        Loader { set }
    }

    /// Whether the set has a graph that changed since it was built, saved or restored as saved.
    pub fn has_unsaved_graph(&self) -> bool {
        self.graph.is_some() && self.unsaved
    }

    /// Saves the graph under `base` (`<base>.usearch` and `<base>.keys`, replacing what was
    /// there), for [`Loader::finish`] to restore; `false` when the set has no graph.
    ///
    /// # Errors
    /// `Unexpected` when the files cannot be written; whatever was saved before stays whole.
    pub fn save_graph(&mut self, base: &Path) -> Result<bool> {
        let Some(graph) = &self.graph else {
            return Ok(false);
        };
        let mut buf = Vec::new();
        let nodes: Vec<saved::SavedNode<'_>> = self
            .row_labels
            .iter()
            .zip(self.rows.chunks_exact(self.dim))
            .filter_map(|(label, v)| {
                Some(saved::SavedNode {
                    label: *label,
                    fingerprint: saved::fingerprint(v, &mut buf),
                    key: self.key_of.get(label)?.as_ref(),
                })
            })
            .collect();
        saved::write(
            base,
            &graph.index,
            self.dim,
            &self.config,
            self.next_label,
            graph.removed as u64,
            &nodes,
        )?;
        self.unsaved = false;
        Ok(true)
    }

    /// Restores the graph saved under `base` for this set's rows (labelled as loaded, no graph
    /// yet): nodes of unchanged vectors keep their saved labels, the others are removed, and
    /// new or changed vectors are inserted. `None` when there is no usable saved graph.
    fn restore_graph(&mut self, base: &Path) -> Result<Option<Origin>> {
        let Some(mut saved) = saved::read_keys(base, self.dim, &self.config) else {
            return Ok(None);
        };
        let mut buf = Vec::new();
        let mut labels = Vec::with_capacity(self.row_labels.len());
        let mut fresh = Vec::new();
        let mut next = saved.next_label;
        for (row, v) in self.rows.chunks_exact(self.dim).enumerate() {
            let Some(key) = self.key_of.get(&self.row_labels[row]) else {
                return Ok(None);
            };
            let fingerprint = saved::fingerprint(v, &mut buf);
            match saved.nodes.get(key.as_ref()) {
                Some(&(label, f)) if f == fingerprint => {
                    saved.nodes.remove(key.as_ref());
                    labels.push(label);
                }
                _ => {
                    labels.push(next);
                    next += 1;
                    fresh.push(row);
                }
            }
        }
        // What is left of the saved nodes: keys gone, or vectors changed.
        let stale: Vec<u64> = saved.nodes.values().map(|(label, _)| *label).collect();
        let kept = labels.len() - fresh.len();
        let removed = saved.removed as usize + stale.len();
        if kept * 2 < labels.len() || removed > labels.len().max(1024) {
            // Mostly new, or mostly dead nodes: building afresh costs less.
            return Ok(None);
        }
        let index = self.empty_index()?;
        if saved.load_graph(base, &index).is_none() {
            return Ok(None);
        }
        index
            .reserve_capacity_and_threads(
                (index.size() + fresh.len()).saturating_mul(5) / 4 + 16,
                self.contexts(),
            )
            .map_err(|e| index_error("reservation", e))?;
        index.change_expansion_add(self.config.expansion_add);
        index.change_expansion_search(self.config.expansion_floor());
        for label in &stale {
            bury(&index, *label)?;
        }
        // The rows take their saved (or new) labels.
        let mut key_of = IntMap::with_capacity_and_hasher(labels.len(), Default::default());
        self.row_of.clear();
        for (row, label) in labels.iter().enumerate() {
            let old = self.row_labels[row];
            if let Some(key) = self.key_of.remove(&old) {
                self.label_of.insert(key.clone(), *label);
                key_of.insert(*label, key);
            }
            self.row_of.insert(*label, row);
            self.row_labels[row] = *label;
        }
        self.key_of = key_of;
        self.next_label = next;
        self.sketches = None;
        self.graph = Some(Graph {
            index,
            removed,
            slots: Slots::new(SEARCH_SLOTS),
        });
        let pending: Vec<(u64, Vec<f32>)> = fresh
            .iter()
            .map(|&row| {
                (
                    labels[row],
                    self.rows[row * self.dim..(row + 1) * self.dim].to_vec(),
                )
            })
            .collect();
        self.insert_into_graph(&pending)?;
        self.unsaved = !(pending.is_empty() && stale.is_empty());
        Ok(Some(Origin::Restored {
            kept,
            inserted: pending.len(),
            removed: stale.len(),
        }))
    }
}

#[cfg(test)]
mod tests;

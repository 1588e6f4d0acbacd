//! The HNSW graph (usearch): building it in parallel, finding and repairing stranded nodes,
//! burying removed labels, and re-ranking its candidates exactly.

use std::hash::Hash;
use std::sync::Mutex;

use memlayer_store::ranking::vector::{best_first, dot};
use memlayer_store::{Error, ErrorKind, Result};
use usearch::{Index, IndexOptions, MetricKind};

use crate::scan::{SEARCH_SLOTS, Slots};
use crate::set::VectorSet;

/// Runs `each` over `batch` in chunks of `per`, one thread per chunk; the first error wins.
pub(crate) fn in_parallel<'a, T: Sync>(
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
pub(crate) const STRANDED_CHECK_EF: usize = 16;

/// The search expansion of the second check, for the nodes the first one flagged; the ones
/// this does not find either are re-inserted. Searching again at this width is much cheaper
/// than re-inserting every flagged node, and finds nearly all of them (ADR 0010, "Stranded
/// nodes").
pub(crate) const STRANDED_RECHECK_EF: usize = 64;

/// The nodes of `batch` the graph may have stranded: usearch's concurrent `add` can leave a
/// node stored but unreachable from the entry point (unum-cloud/USearch#735), here 3-5 of
/// 20,000 vectors inserted by two threads and none by one, 63 of 300,000 (`--example
/// stranded`), and a stranded node is never found again.
///
/// Each node searches for itself at ef 16, in parallel; the ones it does not find search again
/// at ef 64, and those still not found are returned, to be re-inserted by one thread (a lone
/// inserter does not strand nodes). The graph's own search expansion is `expansion_search`
/// afterwards (the floor every search widens from).
pub(crate) fn stranded<'b>(
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
pub(crate) fn not_finding_themselves<'b>(
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

/// The bit a removed node's label carries in the graph (see [`bury`]); live labels count up
/// from 0 and never reach it.
pub(crate) const BURIED: u64 = 1 << 63;

/// Takes `label`'s node out of the answers but leaves it in the graph, vector and links and
/// all, as a waypoint: its label gains the [`BURIED`] bit, and searches pass it over.
///
/// usearch's own `remove` frees the node's slot for the next insert, which rewrites the
/// node's vector and out-links but leaves its old neighbours' links to it: they then lead to
/// an unrelated vector, and a graph changed that way loses recall; buried, it keeps it (ADR
/// 0010, "Removed graph nodes"; `a_graph_kept_through_changes_keeps_its_recall`).
pub(crate) fn bury(index: &Index, label: u64) -> Result<()> {
    index
        .rename(label, label | BURIED)
        .map_err(|e| index_error("remove", e))?;
    Ok(())
}

/// The graph and the maps between the caller's keys and the graph's labels.
pub(crate) struct Graph {
    pub(crate) index: Index,
    /// Buried nodes (see [`bury`]): the graph is rebuilt when they outnumber the live
    /// vectors, as they still cost traversal time.
    pub(crate) removed: usize,
    pub(crate) slots: Slots,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("size", &self.index.size())
            .field("removed", &self.removed)
            .finish()
    }
}

impl<K: Clone + Eq + Hash + Ord> VectorSet<K> {
    /// Thread contexts to reserve: enough for the builders and for [`SEARCH_SLOTS`] searches.
    pub(crate) fn contexts(&self) -> usize {
        self.config.build_threads.max(SEARCH_SLOTS)
    }

    pub(crate) fn new_index(&self, capacity: usize) -> Result<Index> {
        let index = self.empty_index()?;
        index
            .reserve_capacity_and_threads(capacity.max(16), self.contexts())
            .map_err(|e| index_error("reservation", e))?;
        Ok(index)
    }

    /// A graph with this set's options and no room reserved (to load a saved graph into).
    pub(crate) fn empty_index(&self) -> Result<Index> {
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
    pub(crate) fn build_graph(&mut self) -> Result<()> {
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
    pub(crate) fn insert_into_graph(&mut self, batch: &[(u64, Vec<f32>)]) -> Result<()> {
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
    pub(crate) fn reranked(&self, q: &[f32], labels: &[u64]) -> Vec<(f32, &K)> {
        let mut pairs: Vec<(f32, &K)> = labels
            .iter()
            .filter_map(|label| Some((dot(q, self.row(*label)?), self.key_of.get(label)?)))
            .collect();
        pairs.sort_by(best_first);
        pairs
    }

    /// The stored (normalised) vector of `label`.
    pub(crate) fn row(&self, label: u64) -> Option<&[f32]> {
        let row = *self.row_of.get(&label)?;
        self.rows.get(row * self.dim..(row + 1) * self.dim)
    }
}

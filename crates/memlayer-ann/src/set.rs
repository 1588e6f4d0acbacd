//! [`VectorSet`]: one namespace's vectors, searched exactly or through the graph.

use std::collections::HashMap;
use std::hash::Hash;

use memlayer_store::ranking::ints::IntMap;
use memlayer_store::ranking::sketch::{self, Sketches};
use memlayer_store::ranking::vector::{TopK, best_first, dot};
use memlayer_store::{Error, Result};

use crate::config::AnnConfig;
use crate::graph::{BURIED, Graph, bury, index_error};
use crate::scan::{MIN_GRAPH_PASS_RATE, Scans, first_passing};
use crate::synthetic;

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
    pub(crate) dim: usize,
    pub(crate) config: AnnConfig,
    /// Label of each key; labels are never reused.
    pub(crate) label_of: HashMap<K, u64>,
    /// Key of each label, for the graph's answers.
    pub(crate) key_of: IntMap<u64, K>,
    pub(crate) next_label: u64,
    /// Row `i` of `rows` belongs to `row_labels[i]`; `row_of` maps back.
    pub(crate) rows: Vec<f32>,
    pub(crate) row_labels: Vec<u64>,
    pub(crate) row_of: IntMap<u64, usize>,
    /// Eight-bit sketches of the rows, row for row, while the set is scanned exactly on a CPU
    /// with the sketch kernel (see [`sketch`]): a scan reads them and scores only the rows
    /// that may be among the best with the f32 kernel.
    pub(crate) sketches: Option<Sketches>,
    pub(crate) graph: Option<Graph>,
    /// Whether the graph changed since it was saved or restored.
    pub(crate) unsaved: bool,
    /// Exact scans of concurrent searches, run together.
    pub(crate) scans: Scans,
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

    pub(crate) fn check_dim(&self, v: &[f32]) -> Result<()> {
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
    pub(crate) fn add_rows<'v>(
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
}

impl<K: Clone + Eq + Hash + Ord> VectorSet<K> {
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

    pub(crate) fn search_normalised(
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
            // row, so re-ranking fewer keeps large sets fast (ADR 0010).
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
}

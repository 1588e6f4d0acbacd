//! Loading a set in bulk, and saving and restoring its graph beside a database file.

use std::hash::Hash;
use std::path::Path;

use memlayer_store::Result;
use memlayer_store::ranking::ints::IntMap;
use memlayer_store::ranking::sketch::{self, Sketches};

use crate::config::AnnConfig;
use crate::graph::{Graph, bury, index_error};
use crate::saved::{self, Origin};
use crate::scan::{SEARCH_SLOTS, Slots};
use crate::set::VectorSet;

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
    pub(crate) set: VectorSet<K>,
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
    pub(crate) fn restore_graph(&mut self, base: &Path) -> Result<Option<Origin>> {
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

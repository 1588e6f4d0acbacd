//! The exact scan: passes over a set's rows shared by the searches running at once, over the
//! f32 matrix or its sketches.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Condvar, Mutex};

use memlayer_store::ranking::sketch::{self, QuerySketch, Sketches};
use memlayer_store::ranking::vector::{
    MAX_SCAN_BATCH, TopK, best_first, dot, dots_into, dots_many_into,
};
use memlayer_store::{Error, ErrorKind, Result};

use crate::config::ScanSharing;
use crate::set::VectorSet;

/// The share of graph candidates a filter must pass for the graph search to widen; a
/// narrower filter goes to the exact scan of the vectors it accepts.
pub(crate) const MIN_GRAPH_PASS_RATE: f64 = 0.02;

/// Search contexts the graph reserves: usearch fails a search when more threads search at
/// once than it has contexts for, so searches beyond this many wait for a free one.
pub(crate) const SEARCH_SLOTS: usize = 32;

/// A counting gate over the graph's search contexts.
#[derive(Debug)]
pub(crate) struct Slots {
    pub(crate) free: Mutex<usize>,
    pub(crate) freed: Condvar,
}

pub(crate) struct Slot<'a>(&'a Slots);

impl Slots {
    pub(crate) fn new(n: usize) -> Self {
        Slots {
            free: Mutex::new(n),
            freed: Condvar::new(),
        }
    }

    pub(crate) fn acquire(&self) -> Slot<'_> {
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
pub(crate) struct Scans {
    pub(crate) state: Mutex<ScanState>,
}

#[derive(Debug, Default)]
pub(crate) struct ScanState {
    /// Queries waiting for a pass, oldest first.
    pub(crate) waiting: Vec<Waiting>,
    /// Outcomes of the queries whose pass has ended, by ticket: their scores, or `None`
    /// when the pass did not finish.
    pub(crate) done: HashMap<u64, Option<Vec<f32>>>,
    pub(crate) next_ticket: u64,
    /// Passes running.
    pub(crate) running: usize,
}

/// A query waiting for a pass, and how to wake its search: each search sleeps on a condition
/// of its own, so the end of a pass wakes the searches it scored and the oldest one still
/// waiting (to run the next), not every search waiting.
#[derive(Debug)]
pub(crate) struct Waiting {
    pub(crate) ticket: u64,
    pub(crate) query: Vec<f32>,
    /// The query's sketch, when the set scans sketches: the pass then estimates its scores.
    pub(crate) sketch: Option<QuerySketch>,
    pub(crate) wake: Arc<Condvar>,
}

impl ScanState {
    /// Whether a search may start a pass now (see [`ScanSharing`]).
    pub(crate) fn may_run(&self, sharing: ScanSharing) -> bool {
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
pub(crate) fn pass_limit() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A running pass: its queries, and their scores once computed. Dropped, whichever way the
/// pass ends, it records every query's outcome (`None` for those it did not score), counts
/// itself out, and wakes the searches it served and the oldest one still waiting.
pub(crate) struct Pass<'a> {
    pub(crate) scans: &'a Scans,
    pub(crate) batch: Vec<Waiting>,
    pub(crate) scores: Vec<Vec<f32>>,
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

impl<K: Clone + Eq + Hash + Ord> VectorSet<K> {
    /// Every row's dot product with `q`, in row order, computed in a pass shared with the
    /// searches scanning this set at the same time (see [`Scans`]): the f32 kernel's scores,
    /// or, given `q`'s sketch, the sketches' estimates of them.
    pub(crate) fn scores(&self, q: &[f32], sketch: Option<QuerySketch>) -> Result<Vec<f32>> {
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
    pub(crate) fn best_rows(&self, scored: &Scored, n: usize) -> Vec<(f32, &K)> {
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
    pub(crate) fn best_of(
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
    pub(crate) fn scan_rows(
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
pub(crate) enum Scored<'a> {
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
pub(crate) fn first_passing<K: Clone>(
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

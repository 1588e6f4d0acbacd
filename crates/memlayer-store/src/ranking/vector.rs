//! Cosine similarity over f32, written as eight independent accumulators so the compiler
//! emits SIMD, and a bounded top-k.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

const LANES: usize = 8;

/// The dot product of two equally long vectors (extra components of the longer are ignored).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let chunks = n / LANES;
    for i in 0..chunks {
        let x = &a[i * LANES..(i + 1) * LANES];
        let y = &b[i * LANES..(i + 1) * LANES];
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in chunks * LANES..n {
        sum += a[i] * b[i];
    }
    sum
}

/// The Euclidean norm.
pub fn norm(a: &[f32]) -> f32 {
    dot(a, a).sqrt()
}

/// Cosine similarity given precomputed norms; 0 when either norm is 0, never NaN.
pub fn cosine_with_norms(a: &[f32], b: &[f32], norm_a: f32, norm_b: f32) -> f32 {
    if norm_a == 0.0 || norm_b == 0.0 {
        return 0.0;
    }
    let c = dot(a, b) / (norm_a * norm_b);
    if c.is_finite() {
        c.clamp(-1.0, 1.0)
    } else {
        0.0
    }
}

/// Cosine similarity; 0 when either vector is zero, never NaN.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    cosine_with_norms(a, b, norm(a), norm(b))
}

/// Orders (score, key) best first: higher score, then smaller key.
pub fn best_first<K: Ord>(a: &(f32, K), b: &(f32, K)) -> Ordering {
    b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1))
}

struct Entry<K>(f32, K);

impl<K: Ord> PartialEq for Entry<K> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<K: Ord> Eq for Entry<K> {}
impl<K: Ord> PartialOrd for Entry<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<K: Ord> Ord for Entry<K> {
    // The heap's maximum is the worst entry kept: lowest score, then largest key.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .0
            .total_cmp(&self.0)
            .then_with(|| self.1.cmp(&other.1))
    }
}

/// Keeps the `k` best (score, key) pairs seen, in O(log k) per push and no other allocation.
pub struct TopK<K: Ord> {
    k: usize,
    heap: BinaryHeap<Entry<K>>,
}

impl<K: Ord> std::fmt::Debug for TopK<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopK")
            .field("k", &self.k)
            .field("len", &self.heap.len())
            .finish()
    }
}

impl<K: Ord> TopK<K> {
    /// An empty top-k.
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.saturating_add(1).min(1 << 16)),
        }
    }

    /// Whether `score` could enter (lets callers skip building a key).
    pub fn admits(&self, score: f32) -> bool {
        self.k > 0 && (self.heap.len() < self.k || self.heap.peek().is_some_and(|w| score > w.0))
    }

    /// Offers one pair, replacing the worst kept pair when better.
    pub fn offer(&mut self, score: f32, key: K) {
        if self.k == 0 {
            return;
        }
        let entry = Entry(score, key);
        if self.heap.len() < self.k {
            self.heap.push(entry);
        } else if self
            .heap
            .peek()
            .is_some_and(|worst| entry.cmp(worst) == Ordering::Less)
        {
            self.heap.pop();
            self.heap.push(entry);
        }
    }

    /// The kept pairs, best first.
    pub fn into_sorted(self) -> Vec<(f32, K)> {
        let mut v: Vec<(f32, K)> = self.heap.into_iter().map(|Entry(s, k)| (s, k)).collect();
        v.sort_by(best_first);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_basics() {
        assert!((cosine(&[1.0, 0.0], &[1.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!(cosine(&[1.0, 0.0], &[0.0, 1.0]).abs() < 1e-6);
        assert_eq!(cosine(&[0.0; 3], &[1.0, 2.0, 3.0]), 0.0);
        let a: Vec<f32> = (0..37).map(|i| i as f32).collect();
        let naive: f32 = a.iter().map(|x| x * x).sum();
        assert!((dot(&a, &a) - naive).abs() < 1e-2);
    }

    #[test]
    fn top_k_keeps_best_and_breaks_ties_by_key() {
        let mut top = TopK::new(3);
        for (s, k) in [
            (0.5, "e"),
            (0.9, "b"),
            (0.5, "a"),
            (0.1, "z"),
            (0.9, "c"),
            (0.5, "d"),
        ] {
            top.offer(s, k);
        }
        assert_eq!(top.into_sorted(), vec![(0.9, "b"), (0.9, "c"), (0.5, "a")]);
    }
}

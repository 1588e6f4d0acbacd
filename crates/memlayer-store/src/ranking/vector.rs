//! Cosine similarity over f32, written as eight independent accumulators so the compiler
//! emits SIMD, and a bounded top-k.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

const LANES: usize = 16;

/// The dot product of two equally long vectors (extra components of the longer are ignored).
///
/// Sixteen independent accumulators over fixed-size chunks: no bounds checks in the loop and
/// enough independent adds to keep the SIMD units busy. On x86-64 CPUs with AVX2 (detected at
/// run time, once per process) the same loop runs compiled for AVX2, twice the width of the
/// baseline SSE2.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: `dot_avx2` only needs AVX2, which the CPU was just checked to have.
        return unsafe { dot_avx2(a, b) };
    }
    dot_body(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_body(a, b)
}

#[inline(always)]
fn dot_body(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        if let (Ok(x), Ok(y)) = (<&[f32; LANES]>::try_from(x), <&[f32; LANES]>::try_from(y)) {
            for l in 0..LANES {
                acc[l] += x[l] * y[l];
            }
        }
    }
    let mut sum = 0.0f32;
    for pair in acc.chunks_exact(2) {
        sum += pair[0] + pair[1];
    }
    for (x, y) in ra.iter().zip(rb) {
        sum += x * y;
    }
    sum
}

/// The dot products of `query` with every row of a contiguous row-major matrix of
/// `query.len()` columns, written into `out` (cleared first): the exact scan's inner loop, with
/// the CPU's widest SIMD (AVX2 with FMA when present) chosen once for the whole matrix.
pub fn dots_into(query: &[f32], matrix: &[f32], out: &mut Vec<f32>) {
    out.clear();
    let dim = query.len();
    if dim == 0 {
        return;
    }
    out.reserve(matrix.len() / dim);
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        #[allow(unsafe_code)]
        // SAFETY: `dots_fma` only needs AVX2 and FMA, which the CPU was just checked to have.
        unsafe {
            dots_fma(query, matrix, out);
        }
        return;
    }
    for row in matrix.chunks_exact(dim) {
        out.push(dot_body(query, row));
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn dots_fma(query: &[f32], matrix: &[f32], out: &mut Vec<f32>) {
    for row in matrix.chunks_exact(query.len()) {
        let mut acc = [0.0f32; LANES];
        let (ca, cb) = (query.chunks_exact(LANES), row.chunks_exact(LANES));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            if let (Ok(x), Ok(y)) = (<&[f32; LANES]>::try_from(x), <&[f32; LANES]>::try_from(y)) {
                for l in 0..LANES {
                    acc[l] = x[l].mul_add(y[l], acc[l]);
                }
            }
        }
        let mut sum = 0.0f32;
        for pair in acc.chunks_exact(2) {
            sum += pair[0] + pair[1];
        }
        for (x, y) in ra.iter().zip(rb) {
            sum = x.mul_add(*y, sum);
        }
        out.push(sum);
    }
}

/// The exact top-`k` rows of a contiguous row-major matrix by dot product with `query`, best
/// first (ties by row index): [`dots_into`] then a bounded heap, no per-row allocation.
/// `scratch` holds the scores between calls, so a scan allocates nothing once warm.
pub fn exact_top_k(
    query: &[f32],
    matrix: &[f32],
    k: usize,
    scratch: &mut Vec<f32>,
) -> Vec<(f32, usize)> {
    dots_into(query, matrix, scratch);
    let mut top = TopK::new(k);
    for (i, &score) in scratch.iter().enumerate() {
        if top.admits(score) {
            top.offer(score, i);
        }
    }
    top.into_sorted()
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

    /// Whether `score` could enter (lets callers skip building a key): a score equal to the
    /// worst kept one may still enter on a smaller key.
    pub fn admits(&self, score: f32) -> bool {
        self.k > 0 && (self.heap.len() < self.k || self.heap.peek().is_some_and(|w| score >= w.0))
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
    fn dots_into_matches_dot_on_every_row() {
        let dim = 37; // not a multiple of the lane count: the remainder is covered
        let matrix: Vec<f32> = (0..dim * 5)
            .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let query: Vec<f32> = (0..dim).map(|i| (i as f32 / 10.0).sin()).collect();
        let mut out = Vec::new();
        dots_into(&query, &matrix, &mut out);
        assert_eq!(out.len(), 5);
        for (row, got) in matrix.chunks_exact(dim).zip(&out) {
            let naive: f32 = row.iter().zip(&query).map(|(a, b)| a * b).sum();
            assert!((got - naive).abs() < 1e-4, "{got} vs {naive}");
            assert!((dot(&query, row) - naive).abs() < 1e-4);
        }
        dots_into(&[], &matrix, &mut out);
        assert!(out.is_empty());
        let top = exact_top_k(&query, &matrix, 2, &mut out);
        let mut naive: Vec<(f32, usize)> = matrix
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, r)| (r.iter().zip(&query).map(|(a, b)| a * b).sum(), i))
            .collect();
        naive.sort_by(|a, b| b.0.total_cmp(&a.0));
        assert_eq!(
            top.iter().map(|p| p.1).collect::<Vec<_>>(),
            [naive[0].1, naive[1].1]
        );
    }

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

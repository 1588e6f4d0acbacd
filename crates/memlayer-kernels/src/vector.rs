//! Cosine similarity over f32 and a bounded top-k. The dot product keeps four independent
//! sums of eight lanes; on x86-64 with AVX2 and FMA (detected at run time) they are four
//! 256-bit registers, elsewhere the same arithmetic in portable code.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Floats per accumulator (one 256-bit register).
const WIDTH: usize = 8;
/// Independent accumulators: enough to cover the multiply-add's latency.
const SUMS: usize = 4;
/// Floats consumed per step of the main loop.
const STEP: usize = WIDTH * SUMS;

/// Whether the CPU runs the AVX2 + FMA kernels (checked once, then cached by std).
#[cfg(target_arch = "x86_64")]
#[inline]
fn fused() -> bool {
    std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
}

/// The dot product of two vectors over the shorter one's length (the longer one's extra
/// components are ignored). Every dot product and scan here computes it the same way, so a
/// score is the same number whichever function produced it.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if fused() {
        #[allow(unsafe_code)]
        // SAFETY: `x86::dot_one` only needs AVX2 and FMA, which the CPU was just checked to
        // have.
        return unsafe { x86::dot_one(a, b) };
    }
    portable::dot(a, b)
}

/// The dot products of `query` with every row of a contiguous row-major matrix of
/// `query.len()` columns, written into `out` (cleared first): the exact scan's inner loop.
pub fn dots_into(query: &[f32], matrix: &[f32], out: &mut Vec<f32>) {
    dots_many_into(&[query], matrix, std::slice::from_mut(out));
}

/// The most queries [`dots_many_into`] scores in one pass over the matrix.
pub const MAX_SCAN_BATCH: usize = 8;

/// The dot products of each of `queries` with every row of `matrix`, query `i`'s into
/// `outs[i]` (cleared first): the same numbers as [`dots_into`] gives each query alone, bit
/// for bit, but up to [`MAX_SCAN_BATCH`] queries share each pass over the matrix. One
/// query's scan is bound by memory bandwidth: each 1.5 KB row (384-d) read from memory feeds
/// 384 multiply-adds; in a batch it feeds them for every query of the batch, from the L1
/// cache. Queries past `outs.len()` are ignored; a query whose length differs from the
/// first's is scanned on its own, over rows of its own length.
pub fn dots_many_into(queries: &[&[f32]], matrix: &[f32], outs: &mut [Vec<f32>]) {
    let n = queries.len().min(outs.len());
    let (queries, outs) = (&queries[..n], &mut outs[..n]);
    for (group, outs) in queries
        .chunks(MAX_SCAN_BATCH)
        .zip(outs.chunks_mut(MAX_SCAN_BATCH))
    {
        let dim = group.first().map_or(0, |q| q.len());
        if group.iter().any(|q| q.len() != dim) {
            for (q, out) in group.iter().zip(outs.iter_mut()) {
                dots_many_into(&[q], matrix, std::slice::from_mut(out));
            }
            continue;
        }
        for out in outs.iter_mut() {
            out.clear();
        }
        if dim == 0 {
            continue;
        }
        for out in outs.iter_mut() {
            out.reserve(matrix.len() / dim);
        }
        #[cfg(target_arch = "x86_64")]
        if fused() {
            #[allow(unsafe_code)]
            // SAFETY: `x86::scan` only needs AVX2 and FMA, which the CPU was just checked to
            // have.
            unsafe {
                x86::scan(group, dim, matrix, outs);
            }
            continue;
        }
        for row in matrix.chunks_exact(dim) {
            for (q, out) in group.iter().zip(outs.iter_mut()) {
                out.push(portable::dot(q, row));
            }
        }
    }
}

/// The kernels for x86-64 with AVX2 and FMA, written with its intrinsics: the compiler's own
/// vectorisation of the portable loop used two-float registers and shuffles.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{STEP, SUMS, WIDTH};
    use std::arch::x86_64::{
        __m256, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehdup_ps, _mm_movehl_ps,
        _mm256_add_ps, _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_fmadd_ps,
        _mm256_setr_ps, _mm256_setzero_ps,
    };

    /// Eight floats from `x` at `at` (the compiler emits one unaligned load).
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn load(x: &[f32; STEP], at: usize) -> __m256 {
        _mm256_setr_ps(
            x[at],
            x[at + 1],
            x[at + 2],
            x[at + 3],
            x[at + 4],
            x[at + 5],
            x[at + 6],
            x[at + 7],
        )
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn load_one(x: &[f32; WIDTH]) -> __m256 {
        _mm256_setr_ps(x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7])
    }

    /// [`super::portable::dot`]'s arithmetic, each multiply-add fused.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(super) fn dot_one(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [_mm256_setzero_ps(); SUMS];
        let (ca, cb) = (a.chunks_exact(STEP), b.chunks_exact(STEP));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            if let (Ok(x), Ok(y)) = (<&[f32; STEP]>::try_from(x), <&[f32; STEP]>::try_from(y)) {
                for (j, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm256_fmadd_ps(load(x, j * WIDTH), load(y, j * WIDTH), *acc);
                }
            }
        }
        finish(ra, rb, acc)
    }

    /// Every row of `matrix` (rows of `dim`) against every query of `group` (all of `dim`):
    /// each row is read from memory once and then meets the queries from the L1 cache.
    /// Rows go in pairs, so that each load of a query's eight floats feeds two rows: the
    /// batch is bound by loads from the L1 cache, not by arithmetic.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn scan(group: &[&[f32]], dim: usize, matrix: &[f32], outs: &mut [Vec<f32>]) {
        let pairs = matrix.chunks_exact(2 * dim);
        let last = pairs.remainder();
        for pair in pairs {
            let (a, b) = pair.split_at(dim);
            for (q, out) in group.iter().zip(outs.iter_mut()) {
                let (x, y) = dot_two(q, a, b);
                out.push(x);
                out.push(y);
            }
        }
        if last.len() == dim {
            for (q, out) in group.iter().zip(outs.iter_mut()) {
                out.push(dot_one(q, last));
            }
        }
    }

    /// [`dot_one`] of `q` with `a` and with `b` (all three of one length), each exactly as
    /// [`dot_one`] computes it.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn dot_two(q: &[f32], a: &[f32], b: &[f32]) -> (f32, f32) {
        let n = q.len().min(a.len()).min(b.len());
        let (q, a, b) = (&q[..n], &a[..n], &b[..n]);
        let mut acc_a = [_mm256_setzero_ps(); SUMS];
        let mut acc_b = [_mm256_setzero_ps(); SUMS];
        let (cq, ca, cb) = (
            q.chunks_exact(STEP),
            a.chunks_exact(STEP),
            b.chunks_exact(STEP),
        );
        let (rq, ra, rb) = (cq.remainder(), ca.remainder(), cb.remainder());
        for ((x, y), z) in cq.zip(ca).zip(cb) {
            if let (Ok(x), Ok(y), Ok(z)) = (
                <&[f32; STEP]>::try_from(x),
                <&[f32; STEP]>::try_from(y),
                <&[f32; STEP]>::try_from(z),
            ) {
                for j in 0..SUMS {
                    let qx = load(x, j * WIDTH);
                    acc_a[j] = _mm256_fmadd_ps(qx, load(y, j * WIDTH), acc_a[j]);
                    acc_b[j] = _mm256_fmadd_ps(qx, load(z, j * WIDTH), acc_b[j]);
                }
            }
        }
        let (x, y) = (finish(rq, ra, acc_a), finish(rq, rb, acc_b));
        (x, y)
    }

    /// The rest of a dot product after its full steps: the remaining eights into the first
    /// sum, the sums folded, then the last floats one by one.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn finish(a: &[f32], b: &[f32], mut acc: [__m256; SUMS]) -> f32 {
        let (ca, cb) = (a.chunks_exact(WIDTH), b.chunks_exact(WIDTH));
        let (ta, tb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            if let (Ok(x), Ok(y)) = (<&[f32; WIDTH]>::try_from(x), <&[f32; WIDTH]>::try_from(y)) {
                acc[0] = _mm256_fmadd_ps(load_one(x), load_one(y), acc[0]);
            }
        }
        let all = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let four = _mm_add_ps(_mm256_castps256_ps128(all), _mm256_extractf128_ps::<1>(all));
        let two = _mm_add_ps(four, _mm_movehl_ps(four, four));
        let mut sum = _mm_cvtss_f32(_mm_add_ss(two, _mm_movehdup_ps(two)));
        for (x, y) in ta.iter().zip(tb) {
            sum = x.mul_add(*y, sum);
        }
        sum
    }
}

/// The portable kernel: the x86 kernel's order of operations, lane by lane, unfused.
mod portable {
    use super::{STEP, SUMS, WIDTH};

    pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [[0.0f32; WIDTH]; SUMS];
        let (ca, cb) = (a.chunks_exact(STEP), b.chunks_exact(STEP));
        let (ra, rb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            if let (Ok(x), Ok(y)) = (<&[f32; STEP]>::try_from(x), <&[f32; STEP]>::try_from(y)) {
                for (j, acc) in acc.iter_mut().enumerate() {
                    for (l, acc) in acc.iter_mut().enumerate() {
                        *acc += x[j * WIDTH + l] * y[j * WIDTH + l];
                    }
                }
            }
        }
        let (ca, cb) = (ra.chunks_exact(WIDTH), rb.chunks_exact(WIDTH));
        let (ta, tb) = (ca.remainder(), cb.remainder());
        for (x, y) in ca.zip(cb) {
            for (l, acc) in acc[0].iter_mut().enumerate() {
                *acc += x[l] * y[l];
            }
        }
        let mut all = [0.0f32; WIDTH];
        for (l, all) in all.iter_mut().enumerate() {
            *all = (acc[0][l] + acc[1][l]) + (acc[2][l] + acc[3][l]);
        }
        let four = [0, 1, 2, 3].map(|l| all[l] + all[l + 4]);
        let mut sum = (four[0] + four[2]) + (four[1] + four[3]);
        for (x, y) in ta.iter().zip(tb) {
            sum += x * y;
        }
        sum
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
    top_k_rows(scratch, k)
}

/// The `k` best of `scores` by row index, best first (ties by row index), through a bounded
/// heap.
pub fn top_k_rows(scores: &[f32], k: usize) -> Vec<(f32, usize)> {
    let mut top = TopK::new(k);
    for (i, &score) in scores.iter().enumerate() {
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

    /// Whether the pair `(score, key)` would enter: as [`TopK::admits`], but a score equal to
    /// the worst kept one enters only on a smaller key. Where many candidates tie (BM25 gives
    /// every document with the same term counts and length the same score), this spares the
    /// caller's per-candidate work (a lookup, a filter) for the ties that cannot enter.
    pub fn admits_pair<Q: Ord + ?Sized>(&self, score: f32, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.k > 0
            && (self.heap.len() < self.k
                || self
                    .heap
                    .peek()
                    .is_some_and(|worst| match score.total_cmp(&worst.0) {
                        Ordering::Greater => true,
                        Ordering::Equal => key < worst.1.borrow(),
                        Ordering::Less => false,
                    }))
    }

    /// The worst kept score once `k` pairs are kept (the k-th best so far), else `None`.
    pub fn kth(&self) -> Option<f32> {
        if self.k > 0 && self.heap.len() >= self.k {
            self.heap.peek().map(|worst| worst.0)
        } else {
            None
        }
    }

    /// Offers one pair, replacing the worst kept pair when better.
    pub fn offer(&mut self, score: f32, key: K) {
        if !self.admits_pair(score, &key) {
            return;
        }
        if self.heap.len() >= self.k {
            self.heap.pop();
        }
        self.heap.push(Entry(score, key));
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
    fn batched_scores_equal_single_scores_bit_for_bit() {
        for dim in [384, 37, 16, 5] {
            let rows = 23;
            let matrix: Vec<f32> = (0..dim * rows)
                .map(|i| ((i * 7919) % 211) as f32 / 105.0 - 1.0)
                .collect();
            let queries: Vec<Vec<f32>> = (0..11)
                .map(|j| (0..dim).map(|i| ((i * 31 + j * 17) as f32).sin()).collect())
                .collect();
            for n in 1..=queries.len() {
                let refs: Vec<&[f32]> = queries[..n].iter().map(Vec::as_slice).collect();
                let mut outs = vec![vec![9.0]; n];
                dots_many_into(&refs, &matrix, &mut outs);
                for (q, got) in refs.iter().zip(&outs) {
                    let mut alone = Vec::new();
                    dots_into(q, &matrix, &mut alone);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(got), bits(&alone), "dim {dim}, batch of {n}");
                }
                // `dot` gives the scan's numbers too.
                for (q, got) in refs.iter().zip(&outs) {
                    for (row, score) in matrix.chunks_exact(dim).zip(got) {
                        assert_eq!(dot(q, row).to_bits(), score.to_bits(), "dot, dim {dim}");
                    }
                }
            }
            // The portable kernel (unfused) agrees with the naive sum.
            for q in &queries {
                for row in matrix.chunks_exact(dim) {
                    let naive: f32 = q.iter().zip(row).map(|(a, b)| a * b).sum();
                    let got = portable::dot(q, row);
                    assert!((got - naive).abs() < 1e-3, "portable {got} vs {naive}");
                }
            }
        }
        // Queries of different lengths are scored one by one, each correctly.
        let matrix = [1.0f32, 2.0, 3.0, 4.0];
        let (a, b) = ([1.0f32, 1.0], [1.0f32, 0.0, 0.0, 1.0]);
        let mut outs = vec![Vec::new(), Vec::new()];
        dots_many_into(&[&a, &b], &matrix, &mut outs);
        assert_eq!(outs, [vec![3.0, 7.0], vec![5.0]]);
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

    #[test]
    fn kth_is_the_worst_kept_score_once_k_are_kept() {
        let mut top = TopK::new(2);
        assert_eq!(top.kth(), None);
        top.offer(0.4, "a");
        assert_eq!(top.kth(), None);
        top.offer(0.7, "b");
        assert_eq!(top.kth(), Some(0.4));
        top.offer(0.9, "c");
        assert_eq!(top.kth(), Some(0.7));
        assert_eq!(TopK::<u32>::new(0).kth(), None);
    }

    #[test]
    fn admits_pair_says_exactly_whether_offer_would_keep_the_pair() {
        // Many ties, as BM25 gives them: a pair the test admits must change the kept set,
        // and one it refuses must leave it as it was.
        let pairs: Vec<(f32, String)> = (0..400u32)
            .map(|i| (((i * 7919) % 5) as f32, format!("k{:03}", (i * 6151) % 400)))
            .collect();
        let kept = |top: &TopK<String>| {
            let mut v: Vec<(f32, String)> =
                top.heap.iter().map(|Entry(s, k)| (*s, k.clone())).collect();
            v.sort_by(best_first);
            v
        };
        for k in [0, 1, 3, 10] {
            let mut top: TopK<String> = TopK::new(k);
            for (score, key) in &pairs {
                let admitted = top.admits_pair(*score, key.as_str());
                let before = kept(&top);
                top.offer(*score, key.clone());
                assert_eq!(admitted, kept(&top) != before, "k {k}: {score} {key}");
                if admitted {
                    assert!(top.admits(*score));
                }
            }
            let mut want = pairs.clone();
            want.sort_by(best_first);
            want.truncate(k);
            assert_eq!(top.into_sorted(), want);
        }
    }
}

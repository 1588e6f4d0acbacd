//! Eight-bit sketches of unit vectors with a proven error bound, so that an exact scan can
//! read a quarter of the bytes and still return exactly what the f32 scan returns.
//!
//! Each row `x` (normalised) is stored as `s·x̃`, with `x̃` in `[-127, 127]` and
//! `s = max|xᵢ| / 127`, together with the length of its rounding error `e = x − s·x̃`. A query
//! is sketched the same way. For unit `q` and `x`,
//!
//! ```text
//! q·x − (s_q·s_x)(q̃·x̃) = q·e_x + e_q·(s_x·x̃),  so  |q·x − a| ≤ |e_x| + |e_q|·(1 + |e_x|)
//! ```
//!
//! where `a = (s_q·s_x)(q̃·x̃)` is the sketch's estimate, computed in integers. A scan
//! computes `a` for every row, finds the `n`-th best lower bound `a − bound`, and scores with
//! the f32 kernel only the rows whose upper bound reaches it: every row left out scores below
//! `n` rows that were scored, so the best `n` by the f32 score (ties included) are among those
//! scored, with the f32 score itself. A margin of four times the worst rounding of an f32 dot
//! product of that length (`dim·2⁻²⁴` for unit vectors) covers it and the estimate's rounding.
//!
//! The integer dot products use AVX-512 VNNI (`vpdpbusd`: 64 multiply-adds of bytes per
//! instruction) where the CPU has it, detected at run time; [`fast`] says whether it does.
//! Elsewhere the same integers come from portable code, which is slower than the f32 kernel,
//! so callers scan f32 there.

use super::vector::{TopK, dot};

/// Bytes per chunk of a sketch: one 512-bit register.
const CHUNK: usize = 64;
/// Rows per step of the VNNI kernel: tiles of `16 / Q` rows for `Q` queries (sixteen sums
/// each), as many as make sixteen rows.
const TILE: usize = 16;
/// The most queries one pass of [`estimates_many`] scores.
pub const MAX_QUERIES: usize = 8;
/// The longest vectors sketched: their integer dot products stay far inside `i32`.
pub const MAX_DIM: usize = 16_384;

/// Covers the rounding of the f32 dot product of two unit vectors of `dim` components (at
/// most `dim·2⁻²⁴·|q|·|x|` for a sum of products, fused or not) and of the estimate (a few
/// roundings of a number under one), four times over.
fn margin(dim: usize) -> f32 {
    dim as f32 * (4.0 / 16_777_216.0) + 1e-5
}

/// A bound on the length of a normalised f32 vector (one, plus rounding).
const UNIT: f32 = 1.000_01;

/// Whether the CPU runs the VNNI kernel (checked once, then cached by std).
pub fn fast() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The sketches of the rows of a matrix, row for row.
#[derive(Clone, Debug, Default)]
pub struct Sketches {
    dim: usize,
    /// Bytes per sketch: `dim` rounded up to a whole chunk, the tail zero.
    width: usize,
    /// The codes' bit patterns (two's complement), as the kernel reads them.
    codes: Vec<u8>,
    scale: Vec<f32>,
    /// The length of each row's rounding error, rounded up.
    slack: Vec<f32>,
    /// The sum of each row's codes (the kernel multiplies unsigned query bytes, offset by 128).
    sum: Vec<i32>,
    /// Rows with a non-finite component: no bound holds for them.
    nonfinite: usize,
    /// [`margin`] for `dim`.
    margin: f32,
}

/// A query's sketch: its codes offset by 128 (unsigned), its scale and error length.
#[derive(Clone, Debug)]
pub struct QuerySketch {
    codes: Vec<u8>,
    scale: f32,
    slack: f32,
}

/// Codes, scale and error length of `v`: `None` when a component is not finite.
fn quantise(v: &[f32], width: usize) -> Option<(Vec<i8>, f32, f32)> {
    let mut top = 0.0f32;
    for x in v {
        if !x.is_finite() {
            return None;
        }
        top = top.max(x.abs());
    }
    let mut codes = vec![0i8; width];
    if top == 0.0 {
        return Some((codes, 0.0, 0.0));
    }
    let scale = top / 127.0;
    let mut err = 0.0f64;
    for (c, x) in codes.iter_mut().zip(v) {
        let code = (x / scale).round().clamp(-127.0, 127.0);
        *c = code as i8;
        let e = f64::from(*x) - f64::from(scale) * f64::from(code);
        err += e * e;
    }
    // Rounded up: the bound must not be smaller than the true error.
    let slack = (err.sqrt() * (1.0 + 1e-6) + 1e-12) as f32;
    Some((codes, scale, slack))
}

impl Sketches {
    /// No rows yet, of `dim` components each.
    pub fn new(dim: usize) -> Self {
        Sketches {
            dim,
            width: dim.div_ceil(CHUNK) * CHUNK,
            margin: margin(dim),
            ..Sketches::default()
        }
    }

    /// Rows sketched.
    pub fn len(&self) -> usize {
        self.scale.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.scale.is_empty()
    }

    /// Whether every row has a bound (no non-finite component).
    pub fn bounded(&self) -> bool {
        self.nonfinite == 0
    }

    /// Appends the sketch of `row` (of `dim` components, normalised).
    pub fn push(&mut self, row: &[f32]) {
        match quantise(row, self.width) {
            Some((codes, scale, slack)) => {
                self.sum.push(codes.iter().map(|c| i32::from(*c)).sum());
                self.codes.extend(codes.iter().map(|c| *c as u8));
                self.scale.push(scale);
                self.slack.push(slack);
            }
            None => {
                self.codes.resize(self.codes.len() + self.width, 0);
                self.sum.push(0);
                self.scale.push(0.0);
                self.slack.push(f32::INFINITY);
                self.nonfinite += 1;
            }
        }
    }

    /// Removes row `row`, moving the last row into its place (as `Vec::swap_remove`).
    pub fn swap_remove(&mut self, row: usize) {
        let last = self.len().saturating_sub(1);
        if row > last || self.is_empty() {
            return;
        }
        if self.slack[row].is_infinite() {
            self.nonfinite -= 1;
        }
        if row != last {
            let w = self.width;
            let (head, tail) = self.codes.split_at_mut(last * w);
            head[row * w..(row + 1) * w].copy_from_slice(&tail[..w]);
        }
        self.codes.truncate(last * self.width);
        self.scale.swap_remove(row);
        self.slack.swap_remove(row);
        self.sum.swap_remove(row);
    }

    /// Removes every row.
    pub fn clear(&mut self) {
        *self = Sketches::new(self.dim);
    }

    /// The sketch of `query` (of `dim` components, normalised): `None` when a component is
    /// not finite, the dimension differs, or it is over [`MAX_DIM`].
    pub fn sketch_query(&self, query: &[f32]) -> Option<QuerySketch> {
        if query.len() != self.dim || self.dim > MAX_DIM {
            return None;
        }
        let (codes, scale, slack) = quantise(query, self.width)?;
        Some(QuerySketch {
            codes: codes.iter().map(|c| (i16::from(*c) + 128) as u8).collect(),
            scale,
            slack,
        })
    }

    /// How far row `row`'s estimate can lie from its f32 score with `query`.
    fn bound(&self, query: &QuerySketch, row: usize) -> f32 {
        let slack = self.slack[row];
        slack * UNIT + query.slack * (UNIT + slack) + self.margin
    }

    /// The rows whose f32 score with `query` may be among the best `n`, each with that score
    /// (the f32 kernel's, bit for bit), in no order: every row scoring at least the `n`-th best
    /// score is among them. `estimates` are `query`'s from [`estimates_many`]; `rows` is the
    /// f32 matrix these sketches were made from, `query_f32` the query they sketch.
    pub fn candidates(
        &self,
        query: &QuerySketch,
        query_f32: &[f32],
        estimates: &[f32],
        rows: &[f32],
        n: usize,
    ) -> Vec<(f32, usize)> {
        let count = self.len().min(estimates.len());
        if n == 0 || count == 0 {
            return Vec::new();
        }
        let score = |row: usize| dot(query_f32, &rows[row * self.dim..(row + 1) * self.dim]);
        if n >= count || !self.bounded() {
            return (0..count).map(|row| (score(row), row)).collect();
        }
        // The n-th best lower bound.
        let mut lows = TopK::new(n);
        for (row, &a) in estimates[..count].iter().enumerate() {
            let low = a - self.bound(query, row);
            if lows.admits(low) {
                lows.offer(low, row);
            }
        }
        let Some(&(cut, _)) = lows.into_sorted().last() else {
            return Vec::new();
        };
        estimates[..count]
            .iter()
            .enumerate()
            .filter(|&(row, &a)| a + self.bound(query, row) >= cut)
            .map(|(row, _)| (score(row), row))
            .collect()
    }
}

/// Each query's estimates of its dot product with every row, query `i`'s into `outs[i]`
/// (cleared first; queries past `outs.len()` are ignored). One pass over the sketches serves
/// up to [`MAX_QUERIES`] queries; more take more passes.
pub fn estimates_many(queries: &[&QuerySketch], sketches: &Sketches, outs: &mut [Vec<f32>]) {
    let n = queries.len().min(outs.len());
    for (group, outs) in queries[..n]
        .chunks(MAX_QUERIES)
        .zip(outs[..n].chunks_mut(MAX_QUERIES))
    {
        let rows = sketches.len();
        let mut raw = vec![0i32; rows * group.len()];
        raw_dots(group, sketches, &mut raw);
        for (i, (q, out)) in group.iter().zip(outs.iter_mut()).enumerate() {
            out.clear();
            out.extend(
                raw[i * rows..(i + 1) * rows]
                    .iter()
                    .zip(&sketches.sum)
                    .zip(&sketches.scale)
                    .map(|((raw, sum), scale)| q.scale * scale * (raw - 128 * sum) as f32),
            );
        }
    }
}

/// The integer dot products of up to [`MAX_QUERIES`] queries' offset codes with every row's
/// codes, query by query: `raw[i * n + row]` for query `i`, `n` rows.
fn raw_dots(group: &[&QuerySketch], sketches: &Sketches, raw: &mut [i32]) {
    #[cfg(target_arch = "x86_64")]
    if fast() {
        #[allow(unsafe_code)]
        // SAFETY: `vnni::raw_dots` needs AVX-512 F, BW and VNNI, which `fast` just checked.
        unsafe {
            vnni::raw_dots(group, sketches, raw);
        }
        return;
    }
    portable_raw_dots(group, sketches, 0, raw);
}

/// [`raw_dots`] in portable code, from row `from` on.
fn portable_raw_dots(group: &[&QuerySketch], sketches: &Sketches, from: usize, raw: &mut [i32]) {
    let w = sketches.width;
    for row in from..sketches.len() {
        let codes = &sketches.codes[row * w..(row + 1) * w];
        for (i, q) in group.iter().enumerate() {
            raw[i * sketches.len() + row] = q
                .codes
                .iter()
                .zip(codes)
                .map(|(a, b)| i32::from(*a) * i32::from(*b as i8))
                .sum();
        }
    }
}

/// The VNNI kernel: tiles of sixteen sums (rows × queries), each a 512-bit accumulator fed
/// 64 byte products per instruction, folded together into one register at the end of a tile.
#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::{CHUNK, MAX_QUERIES, QuerySketch, Sketches, TILE};
    use std::arch::x86_64::{
        __m512i, _mm512_add_epi32, _mm512_dpbusd_epi32, _mm512_loadu_si512, _mm512_setzero_si512,
        _mm512_shuffle_i32x4, _mm512_storeu_si512, _mm512_unpackhi_epi32, _mm512_unpackhi_epi64,
        _mm512_unpacklo_epi32, _mm512_unpacklo_epi64,
    };

    /// 64 bytes as a register.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    fn load(bytes: &[u8; CHUNK]) -> __m512i {
        #[allow(unsafe_code)]
        // SAFETY: the reference covers the 64 bytes read; the load is unaligned.
        unsafe {
            _mm512_loadu_si512(bytes.as_ptr().cast())
        }
    }

    /// The sixteen sums of sixteen accumulators, lane `j` holding the sum of `acc[j]`:
    /// pairs are interleaved and added, halving the registers at each of four steps.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    fn fold(acc: &[__m512i; 16]) -> __m512i {
        let mut s = [_mm512_setzero_si512(); 8];
        for (i, s) in s.iter_mut().enumerate() {
            let (a, b) = (acc[2 * i], acc[2 * i + 1]);
            *s = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
        }
        let mut v = [_mm512_setzero_si512(); 4];
        for (j, v) in v.iter_mut().enumerate() {
            let (a, b) = (s[2 * j], s[2 * j + 1]);
            *v = _mm512_add_epi32(_mm512_unpacklo_epi64(a, b), _mm512_unpackhi_epi64(a, b));
        }
        let lanes = |a: __m512i, b: __m512i| {
            _mm512_add_epi32(
                _mm512_shuffle_i32x4::<0b10_00_10_00>(a, b),
                _mm512_shuffle_i32x4::<0b11_01_11_01>(a, b),
            )
        };
        let w0 = lanes(v[0], v[1]);
        let w1 = lanes(v[2], v[3]);
        lanes(w0, w1)
    }

    /// One tile: `R` rows from `row` against `Q` queries (`R·Q = 16`), the sums of the first
    /// `live` in `raw`. The
    /// queries' chunk stays in registers while the rows' chunks stream past.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    fn tile<const Q: usize, const R: usize>(
        queries: &[&[u8]; Q],
        live: usize,
        sketches: &Sketches,
        row: usize,
        raw: &mut [i32],
    ) {
        let w = sketches.width;
        let block = &sketches.codes[row * w..(row + R) * w];
        let mut acc = [_mm512_setzero_si512(); 16];
        for c in (0..w).step_by(CHUNK) {
            let mut qv = [_mm512_setzero_si512(); Q];
            for (reg, q) in qv.iter_mut().zip(queries) {
                if let Ok(bytes) = <&[u8; CHUNK]>::try_from(&q[c..c + CHUNK]) {
                    *reg = load(bytes);
                }
            }
            for r in 0..R {
                let Ok(bytes) = <&[u8; CHUNK]>::try_from(&block[r * w + c..r * w + c + CHUNK])
                else {
                    continue;
                };
                let rv = load(bytes);
                for (qi, q) in qv.iter().enumerate() {
                    let a = &mut acc[r * Q + qi];
                    *a = _mm512_dpbusd_epi32(*a, *q, rv);
                }
            }
        }
        let mut sums = [0i32; 16];
        #[allow(unsafe_code)]
        // SAFETY: `sums` holds the 64 bytes stored; the store is unaligned.
        unsafe {
            _mm512_storeu_si512(sums.as_mut_ptr().cast(), fold(&acc));
        }
        // Queries past `live` pad the tile: their sums are dropped.
        for r in 0..R {
            for qi in 0..Q.min(live) {
                raw[qi * sketches.len() + row + r] = sums[r * Q + qi];
            }
        }
    }

    /// Every whole tile of rows, then the last rows in portable code.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) fn raw_dots(group: &[&QuerySketch], sketches: &Sketches, raw: &mut [i32]) {
        let zero = vec![128u8; sketches.width];
        let mut qs: [&[u8]; MAX_QUERIES] = [&zero; MAX_QUERIES];
        for (slot, q) in qs.iter_mut().zip(group) {
            *slot = &q.codes;
        }
        let n = sketches.len();
        let whole = n / TILE * TILE;
        let mut row = 0;
        while row < whole {
            // Each tile covers `16 / Q` rows: as many tiles as make sixteen rows.
            match group.len() {
                0 => return,
                1 => tile::<1, 16>(&[qs[0]], 1, sketches, row, raw),
                2 => {
                    for r in (0..TILE).step_by(8) {
                        tile::<2, 8>(&[qs[0], qs[1]], 2, sketches, row + r, raw);
                    }
                }
                3 | 4 => {
                    for r in (0..TILE).step_by(4) {
                        tile::<4, 4>(
                            &[qs[0], qs[1], qs[2], qs[3]],
                            group.len(),
                            sketches,
                            row + r,
                            raw,
                        );
                    }
                }
                _ => {
                    for r in (0..TILE).step_by(2) {
                        tile::<8, 2>(&qs, group.len(), sketches, row + r, raw);
                    }
                }
            }
            row += TILE;
        }
        super::portable_raw_dots(group, sketches, whole, raw);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vector::dots_into;

    /// A small deterministic generator (xorshift), normalised vectors with some structure.
    fn vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
        let mut s = seed | 1;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let mut out = Vec::with_capacity(n * dim);
        for i in 0..n {
            let mut v: Vec<f32> = (0..dim).map(|_| next()).collect();
            // Every fifth row near an earlier one: close scores and exact duplicates.
            if i % 5 == 4 {
                let j = (i / 2) * dim;
                for (x, y) in v.iter_mut().zip(&out[j..j + dim]) {
                    *x = *y + if i % 10 == 4 { 0.0 } else { *x * 1e-3 };
                }
            }
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            out.extend(v.iter().map(|x| x / norm));
        }
        out
    }

    fn sketched(rows: &[f32], dim: usize) -> Sketches {
        let mut s = Sketches::new(dim);
        for row in rows.chunks_exact(dim) {
            s.push(row);
        }
        s
    }

    #[test]
    fn the_kernel_and_the_portable_code_give_the_same_integers() {
        for (n, dim) in [(37, 384), (100, 50), (16, 64), (5, 1), (33, 200)] {
            let rows = vectors(n, dim, 7 + n as u64);
            let s = sketched(&rows, dim);
            let qs = vectors(8, dim, 99);
            let sk: Vec<QuerySketch> = qs
                .chunks_exact(dim)
                .filter_map(|q| s.sketch_query(q))
                .collect();
            for take in 1..=MAX_QUERIES {
                let group: Vec<&QuerySketch> = sk.iter().take(take).collect();
                let mut fast = vec![0i32; n * take];
                let mut slow = vec![0i32; n * take];
                raw_dots(&group, &s, &mut fast);
                portable_raw_dots(&group, &s, 0, &mut slow);
                for row in 0..n {
                    for i in 0..take {
                        assert_eq!(
                            fast[i * n + row],
                            slow[i * n + row],
                            "n {n} dim {dim} batch {take} row {row} query {i}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn estimates_lie_within_their_bounds() {
        let dim = 384;
        let rows = vectors(500, dim, 3);
        let s = sketched(&rows, dim);
        let qs = vectors(4, dim, 11);
        for q in qs.chunks_exact(dim) {
            let sk = s.sketch_query(q).unwrap_or_else(|| unreachable!());
            let mut est = vec![Vec::new()];
            estimates_many(&[&sk], &s, &mut est);
            let mut exact = Vec::new();
            dots_into(q, &rows, &mut exact);
            for (row, (a, x)) in est[0].iter().zip(&exact).enumerate() {
                // The margin's premise: the f32 score lies within dim·2⁻²⁴ of the true one.
                let truth: f64 = q
                    .iter()
                    .zip(&rows[row * dim..(row + 1) * dim])
                    .map(|(a, b)| f64::from(*a) * f64::from(*b))
                    .sum();
                assert!((f64::from(*x) - truth).abs() <= dim as f64 / 16_777_216.0);
                let b = s.bound(&sk, row);
                assert!((a - x).abs() <= b, "row {row}: {a} vs {x}, bound {b}");
                // The bound is useful: well under the spread of scores.
                assert!(b < 0.05, "bound {b}");
            }
        }
    }

    #[test]
    fn candidates_hold_the_best_n_with_their_f32_scores() {
        let dim = 96;
        let rows = vectors(2000, dim, 5);
        let mut s = sketched(&rows, dim);
        // Removals move rows; the sketches must follow.
        let mut rows = rows;
        for row in [7usize, 1500, 0] {
            s.swap_remove(row);
            let last = rows.len() / dim - 1;
            if row != last {
                let tail: Vec<f32> = rows[last * dim..].to_vec();
                rows[row * dim..(row + 1) * dim].copy_from_slice(&tail);
            }
            rows.truncate(last * dim);
        }
        let qs = vectors(12, dim, 17);
        let sks: Vec<QuerySketch> = qs
            .chunks_exact(dim)
            .filter_map(|q| s.sketch_query(q))
            .collect();
        let group: Vec<&QuerySketch> = sks.iter().collect();
        let mut est = vec![Vec::new(); group.len()];
        estimates_many(&group, &s, &mut est);
        for ((q, sk), est) in qs.chunks_exact(dim).zip(&sks).zip(&est) {
            let mut exact = Vec::new();
            dots_into(q, &rows, &mut exact);
            let mut sorted = exact.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            for n in [1, 10, 64, 1999] {
                let found = s.candidates(sk, q, est, &rows, n);
                let nth = sorted[n.min(sorted.len()) - 1];
                let mut want: Vec<usize> = (0..exact.len()).filter(|&r| exact[r] >= nth).collect();
                want.sort_unstable();
                let mut got: Vec<usize> = Vec::new();
                for (score, row) in &found {
                    assert_eq!(score.to_bits(), exact[*row].to_bits(), "f32 score of {row}");
                    if *score >= nth {
                        got.push(*row);
                    }
                }
                got.sort_unstable();
                assert_eq!(got, want, "n {n}");
                if n == 10 {
                    // And they are few: the point of the sketches.
                    assert!(found.len() < 400, "{} candidates for 10", found.len());
                }
            }
        }
    }

    #[test]
    fn rows_without_a_bound_are_always_scored() {
        let dim = 8;
        let mut s = Sketches::new(dim);
        let mut rows = vectors(40, dim, 9);
        rows[3 * dim] = f32::NAN;
        for row in rows.chunks_exact(dim) {
            s.push(row);
        }
        assert!(!s.bounded());
        let q = vectors(1, dim, 1);
        let sk = s.sketch_query(&q).unwrap_or_else(|| unreachable!());
        let mut est = vec![Vec::new()];
        estimates_many(&[&sk], &s, &mut est);
        assert_eq!(s.candidates(&sk, &q, &est[0], &rows, 3).len(), 40);
        s.swap_remove(3);
        assert!(s.bounded());
        let mut nan = q.clone();
        nan[0] = f32::INFINITY;
        assert!(s.sketch_query(&nan).is_none());
        assert!(s.sketch_query(&q[..4]).is_none());
    }
}

//! What the examples that time graph searches share.

use std::time::{Duration, Instant};

/// The `p` quantile of `v` (sorted in place), in milliseconds.
pub fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 * p) as usize).min(v.len() - 1);
    v[i].as_secs_f64() * 1e3
}

/// Times `search` (the keys it finds, best first) on every query, one after another, and
/// gives the latencies and the mean recall against `truth`, the exact answers.
pub fn timed<E>(
    queries: &[Vec<f32>],
    truth: &[Vec<usize>],
    mut search: impl FnMut(&[f32]) -> Result<Vec<u64>, E>,
) -> Result<(Vec<Duration>, f64), E> {
    let mut lat = Vec::with_capacity(queries.len());
    let mut hits = 0.0;
    for (q, want) in queries.iter().zip(truth) {
        let t = Instant::now();
        let got = search(q)?;
        lat.push(t.elapsed());
        hits +=
            want.iter().filter(|w| got.contains(&(**w as u64))).count() as f64 / want.len() as f64;
    }
    Ok((lat, hits / queries.len().max(1) as f64))
}

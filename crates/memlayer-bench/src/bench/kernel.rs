//! The exact-scan kernel on its own: f32 and sketched passes against numpy's product.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use memlayer_ann::synthetic::Clustered;
use serde_json::{Value, json};

use super::data::{DIM, TOPICS};
use super::timing::{pct, row, time_calls};

/// Queries per pass in the batched kernel rows: the width of `dots_many_into` with AVX-512.
pub(crate) const KERNEL_BATCH: usize = memlayer::ranking::vector::MAX_SCAN_BATCH;

/// The exact-scan kernel: dot products over a contiguous matrix with a bounded top-10, one
/// core, against numpy on the same vectors in the same run: one query at a time (`m @ v`),
/// and [`KERNEL_BATCH`] queries per pass (`dots_many_into` against numpy's `m @ Q`), whose row
/// gives the latency of the whole batch and the queries per second it makes.
pub(crate) fn kernel_rows(n: usize, calls: usize) -> Result<Vec<Value>> {
    use memlayer::ranking::vector::{dots_many_into, exact_top_k, top_k_rows};
    let mut vectors = Clustered::new(DIM, TOPICS, 0x5EED_0003);
    let mut matrix = Vec::with_capacity(n * DIM);
    for _ in 0..n {
        matrix.extend(vectors.next_vector());
    }
    let queries: Vec<Vec<f32>> = (0..32).map(|_| vectors.next_vector()).collect();
    let mut scores = Vec::with_capacity(n);
    let mut scan = |q: &[f32]| exact_top_k(q, &matrix, 10, &mut scores);
    let lat = time_calls(calls, |i| {
        std::hint::black_box(scan(&queries[i % queries.len()]));
    });
    let mut outs: Vec<Vec<f32>> = (0..KERNEL_BATCH).map(|_| Vec::with_capacity(n)).collect();
    let mut batch = |first: usize| {
        let group: Vec<&[f32]> = (0..KERNEL_BATCH)
            .map(|j| queries[(first + j) % queries.len()].as_slice())
            .collect();
        dots_many_into(&group, &matrix, &mut outs);
        outs.iter()
            .map(|scores| top_k_rows(scores, 10))
            .collect::<Vec<_>>()
    };
    let batch_calls = (calls / 4).max(50);
    let batch_lat = time_calls(batch_calls, |i| {
        std::hint::black_box(batch(i * KERNEL_BATCH));
    });
    let sketched = sketched_lat(&matrix, &queries, calls, batch_calls)?;
    let numpy = numpy_scan(&matrix, &queries, calls, batch_calls)?;
    let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
    let mut rows = Vec::new();
    for (op, lat, per_call, np) in [
        ("exact_scan", lat, 1, &numpy["single"]),
        (
            "exact_scan_batched",
            batch_lat,
            KERNEL_BATCH,
            &numpy["batched"],
        ),
    ] {
        let mut sorted = lat.clone();
        sorted.sort_unstable();
        let p50 = pct(&sorted, 0.5);
        let queries_per_s = per_call as f64 * 1000.0 / p50;
        let mut rust = row("kernel-rust", op, n, 1, None, lat, queries_per_s, None);
        rust["queries_per_call"] = json!(per_call);
        rust["vectors_per_s"] = json!((n as f64 * queries_per_s).round());
        rows.push(rust);
        let np_p50 = np["p50_ms"].as_f64().unwrap_or(f64::NAN);
        let np_per_s = per_call as f64 * 1000.0 / np_p50;
        rows.push(json!({
            "backend": "kernel-numpy",
            "op": op,
            "items": n,
            "dim": DIM,
            "clients": 1,
            "filter_selectivity": null,
            "p50_ms": r3(np_p50),
            "p95_ms": r3(np["p95_ms"].as_f64().unwrap_or(f64::NAN)),
            "p99_ms": r3(np["p99_ms"].as_f64().unwrap_or(f64::NAN)),
            "per_s": r3(np_per_s),
            "recall_at_10": null,
            "queries_per_call": per_call,
            "vectors_per_s": (n as f64 * np_per_s).round(),
            "rust_over_numpy": r3(np_p50 / p50),
            "data": "synthetic"}));
    }
    // The sketched scan has no numpy twin: it is the exact top-10 computed another way.
    for (op, lat, per_call) in [
        ("exact_scan_sketched", sketched.single, 1),
        (
            "exact_scan_sketched_batched",
            sketched.batched,
            KERNEL_BATCH,
        ),
    ] {
        let mut sorted = lat.clone();
        sorted.sort_unstable();
        let queries_per_s = per_call as f64 * 1000.0 / pct(&sorted, 0.5);
        let mut rust = row("kernel-rust", op, n, 1, None, lat, queries_per_s, None);
        rust["queries_per_call"] = json!(per_call);
        rust["vectors_per_s"] = json!((n as f64 * queries_per_s).round());
        // How many rows a query's best 10 and best 64 send to the f32 kernel, on average.
        rust["f32_rows_for_top10"] = json!(r3(sketched.rows_for_top10));
        rust["f32_rows_for_top64"] = json!(r3(sketched.rows_for_top64));
        rows.push(rust);
    }
    Ok(rows)
}

/// The exact top-10 through eight-bit sketches (`memlayer_store::ranking::sketch`, as memory
/// and SQLite scan below their ANN threshold where the CPU has AVX-512 VNNI): estimates for
/// every row, then the f32 kernel on the rows that may be among the best. One query at a
/// time, and [`KERNEL_BATCH`] per pass. Each answer is checked against the f32 scan's. Also
/// the mean number of rows the f32 kernel scores for a top-10 and for a top-64.
pub(crate) fn sketched_lat(
    matrix: &[f32],
    queries: &[Vec<f32>],
    calls: usize,
    batch_calls: usize,
) -> Result<SketchedScan> {
    use memlayer::ranking::sketch::{Sketches, estimates_many};
    use memlayer::ranking::vector::{dots_into, top_k_rows};
    let mut sketches = Sketches::new(DIM);
    for row in matrix.chunks_exact(DIM) {
        sketches.push(row);
    }
    let sketched: Vec<_> = queries
        .iter()
        .filter_map(|q| sketches.sketch_query(q))
        .collect();
    let top10 = |found: Vec<(f32, usize)>| {
        let mut found = found;
        found.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        found.truncate(10);
        found
    };
    let mut outs: Vec<Vec<f32>> = vec![Vec::new(); KERNEL_BATCH];
    let mut batch = |first: usize| {
        let idx: Vec<usize> = (0..KERNEL_BATCH)
            .map(|j| (first + j) % sketched.len())
            .collect();
        let group: Vec<_> = idx.iter().map(|&i| &sketched[i]).collect();
        estimates_many(&group, &sketches, &mut outs[..group.len()]);
        idx.iter()
            .zip(&outs)
            .map(|(&i, est)| top10(sketches.candidates(&sketched[i], &queries[i], est, matrix, 10)))
            .collect::<Vec<_>>()
    };
    let mut scores = Vec::new();
    if sketched.len() != queries.len() {
        bail!("bench: a query could not be sketched");
    }
    let mut scored = (0usize, 0usize);
    for (i, (q, sketch)) in queries.iter().zip(&sketched).enumerate() {
        let mut est = [Vec::new()];
        estimates_many(&[sketch], &sketches, &mut est);
        scored.0 += sketches.candidates(sketch, q, &est[0], matrix, 10).len();
        scored.1 += sketches.candidates(sketch, q, &est[0], matrix, 64).len();
        let first = i;
        let got = batch(first);
        dots_into(q, matrix, &mut scores);
        let want = top_k_rows(&scores, 10);
        let bits = |v: &[(f32, usize)]| v.iter().map(|p| (p.0.to_bits(), p.1)).collect::<Vec<_>>();
        if got.first().map(|g| bits(g)) != Some(bits(&want)) {
            bail!("bench: the sketched scan's top-10 differs from the f32 scan's (query {first})");
        }
    }
    let single = time_calls(calls, |i| {
        let i = i % sketched.len();
        let mut est = [Vec::new()];
        estimates_many(&[&sketched[i]], &sketches, &mut est);
        std::hint::black_box(top10(sketches.candidates(
            &sketched[i],
            &queries[i],
            &est[0],
            matrix,
            10,
        )));
    });
    let batched = time_calls(batch_calls, |i| {
        std::hint::black_box(batch(i * KERNEL_BATCH));
    });
    let per = |total: usize| total as f64 / queries.len().max(1) as f64;
    Ok(SketchedScan {
        single,
        batched,
        rows_for_top10: per(scored.0),
        rows_for_top64: per(scored.1),
    })
}

/// [`sketched_lat`]'s timings and counts.
pub(crate) struct SketchedScan {
    pub(crate) single: Vec<Duration>,
    pub(crate) batched: Vec<Duration>,
    /// Rows the f32 kernel scores for a top-10, per query.
    pub(crate) rows_for_top10: f64,
    /// For a top-64.
    pub(crate) rows_for_top64: f64,
}

/// numpy's timings of the same scans on the same vectors (single-threaded BLAS): one query
/// (`m @ v`, `argpartition`) `calls` times, and [`KERNEL_BATCH`] queries per call (`m @ Q`,
/// `argpartition` per column) `batch_calls` times; each as `{p50_ms, p95_ms, p99_ms}`.
pub(crate) fn numpy_scan(
    matrix: &[f32],
    queries: &[Vec<f32>],
    calls: usize,
    batch_calls: usize,
) -> Result<Value> {
    // Written as raw little-endian f32.
    let dir = tempfile::tempdir()?;
    let bin = dir.path().join("m.f32");
    let bytes: Vec<u8> = matrix.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(&bin, bytes)?;
    let qbin = dir.path().join("q.f32");
    let qbytes: Vec<u8> = queries
        .iter()
        .flatten()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    std::fs::write(&qbin, qbytes)?;
    let python = crate::services::up(&["bench".to_owned()])?
        .into_iter()
        .find(|(k, _)| k == "MEMLAYER_BENCH_PYTHON")
        .map(|(_, v)| v)
        .context("no bench python")?;
    let script = format!(
        r#"
import numpy as np, time, json, os
m = np.fromfile("{m}", dtype=np.float32).reshape(-1, {dim})
q = np.fromfile("{q}", dtype=np.float32).reshape(-1, {dim})
def top(s):
    i = np.argpartition(-s, 10)[:10]
    return i[np.argsort(-s[i])]
def scan(v):
    return top(m @ v)
def scan_batch(first):
    qs = np.ascontiguousarray(q[[(first + j) % len(q) for j in range({batch})]].T)
    s = m @ qs
    return [top(s[:, j]) for j in range({batch})]
def timed(f, calls):
    for k in range(4): f(k)
    lat = []
    for k in range(calls):
        t = time.perf_counter(); f(k); lat.append(time.perf_counter() - t)
    lat.sort()
    return {{"p50_ms": lat[len(lat)//2]*1000, "p95_ms": lat[int((len(lat)-1)*0.95)]*1000, "p99_ms": lat[int((len(lat)-1)*0.99)]*1000}}
print(json.dumps({{"single": timed(lambda k: scan(q[k % len(q)]), {calls}),
                  "batched": timed(lambda k: scan_batch(k * {batch}), {batch_calls})}}))
"#,
        m = bin.display(),
        q = qbin.display(),
        dim = DIM,
        batch = KERNEL_BATCH,
    );
    let out = std::process::Command::new(&python)
        .args(["-c", &script])
        .env("OMP_NUM_THREADS", "1")
        .env("OPENBLAS_NUM_THREADS", "1")
        .env("MKL_NUM_THREADS", "1")
        .output()
        .context("running numpy")?;
    if !out.status.success() {
        bail!("numpy: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

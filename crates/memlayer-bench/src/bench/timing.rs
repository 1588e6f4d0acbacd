//! Timing calls at a number of concurrent clients, and the rows that report them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::data::DIM;

/// Resident memory of this process, in bytes (Linux).
pub(crate) fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// Latency percentiles of sorted durations, in milliseconds.
pub(crate) fn pct(sorted: &[Duration], q: f64) -> f64 {
    crate::eval::percentile_ms(sorted, q)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn row(
    backend: &str,
    op: &str,
    items: usize,
    clients: usize,
    selectivity: Option<f64>,
    mut lat: Vec<Duration>,
    per_s: f64,
    recall: Option<f64>,
) -> Value {
    lat.sort_unstable();
    let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
    json!({
        "backend": backend,
        "op": op,
        "items": items,
        "dim": DIM,
        "clients": clients,
        "filter_selectivity": selectivity,
        "p50_ms": r3(pct(&lat, 0.5)),
        "p95_ms": r3(pct(&lat, 0.95)),
        "p99_ms": r3(pct(&lat, 0.99)),
        "per_s": r3(per_s),
        "recall_at_10": recall.map(|r| (r * 10_000.0).round() / 10_000.0),
        "calls": lat.len(),
        "data": "synthetic",
        "build": crate::build_profile()})
}

/// The CPU a run measured on: its model and the widest vector kernel memlayer runs on it. The
/// VM behind this machine changes CPU between sessions, and the kernels differ by CPU (the
/// sketched exact scan needs AVX-512 VNNI), so a run's rows compare only with rows of its CPU.
pub(crate) fn cpu() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
    format!("{model}, {}", simd())
}

#[cfg(target_arch = "x86_64")]
pub(crate) fn simd() -> &'static str {
    // The sketch kernel's own check: "AVX-512 VNNI" means the stores scan sketches here.
    if memlayer::ranking::sketch::fast() {
        "AVX-512 VNNI"
    } else if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        "AVX2 without AVX-512"
    } else {
        "without AVX2"
    }
}

#[cfg(not(target_arch = "x86_64"))]
pub(crate) fn simd() -> &'static str {
    "not x86-64"
}

/// A row of timed calls, with how many failed.
pub(crate) fn timed_row(
    backend: &str,
    op: &str,
    items: usize,
    clients: usize,
    selectivity: Option<f64>,
    t: Timed,
    recall: Option<f64>,
) -> Value {
    let mut r = row(
        backend,
        op,
        items,
        clients,
        selectivity,
        t.lat,
        t.per_s,
        recall,
    );
    r["failed"] = json!(t.failed);
    // Rows without this mark were measured when a client repeated one query (see [`timed`]).
    r["clients_walk_queries"] = json!(true);
    r
}

/// What [`timed`] measured: the latencies of the calls that succeeded, the throughput of
/// those, and how many failed (a timeout under load, say), which the row reports.
pub(crate) struct Timed {
    pub(crate) lat: Vec<Duration>,
    pub(crate) per_s: f64,
    pub(crate) failed: usize,
}

/// Runs `calls` calls of `op` spread over `clients` tasks after `warmup` calls. Each call gets
/// its own index in `0..calls`, and a client's calls take consecutive indexes: with 64
/// queries and 64 clients, striding by the client count would hand every client one query
/// over and over (a task whose calls never wait runs them back to back, so the caches stay
/// warm with that one query's data), where each client should walk through all of them.
pub(crate) async fn timed<F, Fut>(
    clients: usize,
    calls: usize,
    warmup: usize,
    op: F,
) -> Result<Timed>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let op = Arc::new(op);
    for i in 0..warmup {
        op(i).await?;
    }
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let op = op.clone();
        let share = calls / clients + usize::from(c < calls % clients);
        let first = c * (calls / clients) + c.min(calls % clients);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(share);
            let mut errors = Vec::new();
            for k in 0..share {
                let t = Instant::now();
                // A failed call (a timeout under load) is counted, not timed, and the run goes on.
                match op(first + k).await {
                    Ok(()) => lat.push(t.elapsed()),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            Ok::<_, anyhow::Error>((lat, errors))
        }));
    }
    let mut all = Vec::with_capacity(calls);
    let mut errors = Vec::new();
    for t in tasks {
        let (lat, errs) = t.await??;
        all.extend(lat);
        errors.extend(errs);
    }
    let secs = started.elapsed().as_secs_f64();
    if let Some(first) = errors.first() {
        eprintln!(
            "{} of {calls} calls failed, the first: {first}",
            errors.len()
        );
    }
    if all.is_empty() {
        bail!("every call failed");
    }
    Ok(Timed {
        lat: all,
        per_s: calls.saturating_sub(errors.len()) as f64 / secs.max(1e-9),
        failed: errors.len(),
    })
}

/// The latencies of `calls` calls of `call` (given the call's number), after four untimed.
pub(crate) fn time_calls(calls: usize, mut call: impl FnMut(usize)) -> Vec<Duration> {
    (0..calls + 4)
        .filter_map(|i| {
            let t = Instant::now();
            call(i);
            (i >= 4).then(|| t.elapsed())
        })
        .collect()
}

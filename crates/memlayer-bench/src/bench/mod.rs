//! `cargo xtask bench`: one run, one report, every backend on the same data.
//!
//! Data: clearly labelled synthetic data, generated from a fixed seed, so every backend and
//! every run sees the same items: 384-d unit vectors clustered around 1,000 topics (the way
//! text embeddings cluster; `memlayer_ann::synthetic`), and texts of eight words drawn
//! (Zipf-like) from a 5,000-word vocabulary. 1% of the items belong to user `rare`, the
//! rest to `common`: a filter on `rare` selects 1% of the namespace, a filter on the kind
//! `fact` selects 100%.
//!
//! Measured per backend and size: ingest (batches of 1,000 and 100 and single items, their
//! vectors given, no embedder; batches of 1,000 without vectors; batches of 100 with the
//! default hash embedder), get, and keyword / vector /
//! hybrid search at 1, 8 and 64 concurrent clients with both filters; latency percentiles over
//! at least 1,000 timed calls after warm-up (200 with `--quick`), throughput, and recall@10 of
//! vector search against the exact answer. Plus: the exact-scan kernel against numpy's
//! matrix-vector product on the same vectors, and the HTTP server on SQLite.
//!
//! Writes `target/bench/report.json`, `target/bench/latency.svg` (copied to
//! `docs/bench-latency.svg`) and, with `--markdown docs/benchmarks.md`, the bench section of
//! that file and the report behind it (`docs/benchmarks.json`: every row and run), which a
//! `--merge` run reads and adds to.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use self::backends::store_rows;
use self::data::{DIM, Data, TOPICS, VOCABULARY, data, dataset};
use self::kernel::{KERNEL_BATCH, kernel_rows};
use self::report::{read_kept, row_key, run_entry, write_markdown};
use self::server::server_rows;
use self::svg::svg;
use self::timing::cpu;

mod backends;
mod data;
mod kernel;
mod report;
mod server;
mod svg;
mod timing;

/// What to run.
pub struct BenchArgs {
    pub quick: bool,
    pub backends: Vec<String>,
    pub sizes: Vec<usize>,
    pub markdown: Option<PathBuf>,
    pub merge: bool,
    pub modes: Vec<String>,
    pub filters: Vec<f64>,
    /// A BEIR dataset directory whose corpus, with MiniLM vectors, replaces the synthetic sets.
    pub data: Option<PathBuf>,
}

/// Runs the bench: every backend and size asked for, then the report.
pub async fn bench(args: &BenchArgs) -> Result<Vec<Value>> {
    let started = Instant::now();
    let mut rows = Vec::new();
    let kernel_n = if args.quick { 10_000 } else { 100_000 };
    rows.extend(kernel_rows(10_000, if args.quick { 200 } else { 1000 })?);
    if !args.quick {
        rows.extend(kernel_rows(kernel_n, 200)?);
    }
    let dir = crate::root().join("target").join("bench");
    std::fs::create_dir_all(&dir)?;
    // With `--markdown`, the rows and runs behind the table are kept beside it (committed, so
    // a fresh checkout can merge into the published report); otherwise in target/bench.
    let kept = args.markdown.as_ref().map(|md| md.with_extension("json"));
    let (previous, mut runs) = if args.merge {
        read_kept(kept.as_deref(), &dir)?
    } else {
        (Vec::new(), Vec::new())
    };
    let command = format!(
        "cargo xtask {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    // The report is rewritten after every backend, so an interrupted run keeps what it measured;
    // with `--merge`, the previous report's rows that this run has not measured again stay.
    let save = |rows: &[Value], runs: &[Value]| -> Result<Vec<Value>> {
        let fresh: std::collections::HashSet<String> = rows.iter().map(row_key).collect();
        let mut all: Vec<Value> = previous
            .iter()
            .filter(|r| !fresh.contains(&row_key(r)))
            .cloned()
            .collect();
        all.extend(rows.iter().cloned());
        std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(&all)?)?;
        if let Some(kept) = &kept {
            let report = json!({ "runs": runs, "rows": all });
            std::fs::write(kept, serde_json::to_string_pretty(&report)? + "\n")
                .with_context(|| format!("writing {}", kept.display()))?;
        }
        Ok(all)
    };
    // A dataset is one size, its corpus; the synthetic sets are built per size.
    let real = match &args.data {
        Some(dir) => Some(dataset(dir).await?),
        None => None,
    };
    let sizes = match &real {
        Some(d) => vec![d.items.len()],
        None => args.sizes.clone(),
    };
    let data_at = |n: usize| -> std::borrow::Cow<'_, Data> {
        match &real {
            Some(d) => std::borrow::Cow::Borrowed(d),
            None => std::borrow::Cow::Owned(data("bench", n, 64)),
        }
    };
    for &n in &sizes {
        let mut hybrid_answers = None;
        let d = data_at(n);
        for b in &args.backends {
            eprintln!("bench: {b} at {n} items of {} data", d.label);
            let measured = store_rows(
                b,
                &d,
                args.quick,
                &args.modes,
                &args.filters,
                &mut hybrid_answers,
            )
            .await?;
            rows.extend(measured);
            save(&rows, &runs)?;
        }
    }
    // The server on SQLite at each of the run's sizes up to 100k, in runs that measure SQLite
    // (a 1M run measures the stores' search, not HTTP).
    if args.backends.iter().any(|b| b == "sqlite") {
        for &n in sizes.iter().filter(|&&n| n <= 100_000) {
            rows.extend(server_rows(&data_at(n), args.quick).await?);
        }
    }
    runs.push(json!({
        "command": command,
        "seconds": started.elapsed().as_secs_f64().round(),
        "quick": args.quick,
        "build": crate::build_profile(),
        "cpu": cpu()}));
    let rows = save(&rows, &runs)?;
    std::fs::write(dir.join("runs.json"), serde_json::to_string_pretty(&runs)?)?;
    let chart = svg(&rows);
    std::fs::write(dir.join("latency.svg"), &chart)?;
    eprintln!(
        "wrote {} and {} in {:.0} s",
        dir.join("report.json").display(),
        dir.join("latency.svg").display(),
        started.elapsed().as_secs_f64()
    );
    if let Some(md) = &args.markdown {
        if let Some(parent) = md.parent() {
            std::fs::write(parent.join("bench-latency.svg"), &chart)?;
        }
        let run_list = runs
            .iter()
            .map(run_entry)
            .collect::<Vec<_>>()
            .join(", then ");
        let notes = format!(
            "Synthetic data (fixed seed): {DIM}-d unit vectors clustered around {TOPICS} topics (`memlayer_ann::synthetic`; no real text), eight-word texts over a {VOCABULARY}-word vocabulary; filter 1.0 = kind `fact` (every item), 0.01 = user `rare`. Measured on this 2-core machine, every backend on the same data, by {run_list}; {} timed calls per latency row after warm-up{}. `kernel-rust` is the exact scan (dot products and a bounded top-10 over a contiguous matrix, one core); `kernel-numpy` is numpy's `m @ v` + `argpartition` on the same vectors (`rust_over_numpy` in report.json is numpy's p50 over Rust's). `exact_scan_batched` scores {KERNEL_BATCH} queries per pass over the matrix (`dots_many_into` against numpy's `m @ Q`): its latency is the whole batch's, its per-second figure counts queries. recall@10 is against the exact answer (for hybrid rows: hybrid search on a memory store of the same items that scans its vectors exactly, with the same BM25 and fusion), over the first 32 queries; `-` where the search is exact (memory and SQLite below their 20,000-vector ANN threshold). `first_vector_search` and `first_keyword_search` are the first searches after ingest: for SQLite they load the namespace's vectors or contents and build the in-process indexes; `restart_first_*` are the same after the store is closed and opened again (SQLite restores the graph it saved).",
            if args.quick { 200 } else { 1000 },
            if args.quick {
                " (`--quick`: 2,000 items, clients 1 and 64)"
            } else {
                ""
            }
        );
        write_markdown(md, &rows, &notes)?;
    }
    Ok(rows)
}

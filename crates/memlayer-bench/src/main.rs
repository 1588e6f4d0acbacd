//! memlayer's benchmarks, retrieval evaluation and generated docs. `cargo xtask bench`,
//! `cargo xtask eval` and `cargo xtask matrix` run this binary; it is its own crate so that
//! the task runner compiles in seconds and the heavy build (candle, every backend) happens
//! once, in the profile the tests share.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

mod bench;
mod embedders;
mod eval;
mod matrix;
mod progress;
mod services;
mod stores;

/// Every backend id, in documentation order.
pub const BACKENDS: &[&str] = &["memory", "sqlite", "postgres", "redis", "chroma"];

#[derive(Parser)]
#[command(
    name = "memlayer-bench",
    about = "memlayer's benchmarks, evaluation and generated docs"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Writes docs/backends.md and the scenario table of docs/conformance.md from the code.
    Matrix {
        /// Fail instead of writing when the files are out of date.
        #[arg(long)]
        check: bool,
    },
    /// The CI quality floor: keyword nDCG@10 on SciFact on the in-process backends.
    QualityFloor,
    /// Performance: every backend on the same synthetic data; writes target/bench/report.json,
    /// an SVG chart and the bench section of docs/benchmarks.md.
    Bench {
        /// A small run (under five minutes): memory and SQLite at 2,000 items, 200 calls.
        #[arg(long)]
        quick: bool,
        /// Backend ids, comma-separated, or `all`.
        #[arg(long)]
        backend: Option<String>,
        /// Namespace sizes, comma-separated.
        #[arg(long)]
        sizes: Option<String>,
        /// Write the table into this markdown file's bench section (and the chart beside it).
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Search modes to measure, comma-separated (keyword, vector, hybrid); all by default.
        #[arg(long)]
        modes: Option<String>,
        /// Filter selectivities to measure, comma-separated (1.0 and 0.01 by default).
        #[arg(long)]
        filters: Option<String>,
        /// Keep the rows of the previous report that this run does not measure again (a large
        /// size run separately from the others, say); the markdown lists every run's command.
        #[arg(long)]
        merge: bool,
        /// A BEIR dataset directory (e.g. ../shared/data/scifact): its corpus with
        /// all-MiniLM-L6-v2 vectors (embedded once, then cached) and its judged queries
        /// replace the synthetic sets; the run's size is the corpus's.
        #[arg(long, conflicts_with = "sizes")]
        data: Option<PathBuf>,
    },
    /// Retrieval evaluation on a BEIR-format dataset (see ../shared/docs/EVAL.md).
    Eval {
        /// Dataset directory (corpus.jsonl, queries.jsonl, qrels/test.tsv).
        #[arg(long, default_value = "../shared/data/scifact")]
        data: PathBuf,
        /// Backend ids, comma-separated, or `all`.
        #[arg(long, default_value = "memory")]
        backend: String,
        /// keyword, vector, hybrid or all.
        #[arg(long, default_value = "all")]
        mode: String,
        /// hash, minilm, static or openai.
        #[arg(long, default_value = "minilm")]
        embedder: String,
        /// Hits kept per query for the metrics.
        #[arg(long, default_value_t = 10)]
        k: usize,
        /// Hits asked of the store per query (at least k); 100 by default, so recall@100 is
        /// measured. A search's latency depends on it: `--limit 10` times what an agent asking
        /// for ten memories waits.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Write the result rows as a JSON array to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Hybrid fusion: `convex:W` (keyword weight W) or `rrf:K`.
        #[arg(long)]
        fusion: Option<String>,
        /// Hybrid per-leg pool depth.
        #[arg(long)]
        pool: Option<usize>,
        /// Hybrid's conversational context weight, 0..=1 (0 turns it off).
        #[arg(long)]
        context: Option<f32>,
        /// The relevance floor: hits scoring below it are left out.
        #[arg(long)]
        min_score: Option<f32>,
        /// Write the table into this markdown file's eval section.
        #[arg(long)]
        markdown: Option<PathBuf>,
        /// Write every query's ranked hits and their scores as JSON lines to this file.
        #[arg(long)]
        dump: Option<PathBuf>,
    },
}

/// `release` or `dev`: the profile this binary was built in.
pub fn build_profile() -> &'static str {
    if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    }
}

/// `cargo` with the toolchain of this workspace.
pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("memlayer-bench lives in crates/ of the workspace")
        .to_path_buf()
}

/// The cargo target directory (for caches and reports).
pub fn target_dir() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("target"))
}

/// Parses `convex:W` or `rrf:K`.
fn parse_fusion(s: &str) -> Result<memlayer::Fusion> {
    let (kind, value) = s.split_once(':').unwrap_or((s, ""));
    let value: f32 = value
        .parse()
        .with_context(|| format!("fusion {s:?}: expected convex:W or rrf:K"))?;
    match kind {
        "convex" => Ok(memlayer::Fusion::Convex {
            keyword_weight: value,
        }),
        "rrf" => Ok(memlayer::Fusion::Rrf { k: value }),
        _ => bail!("fusion {s:?}: expected convex:W or rrf:K"),
    }
}

/// The backends named by a comma-separated list or `all`.
fn parse_backends(s: &str) -> Result<Vec<String>> {
    if s == "all" {
        return Ok(BACKENDS.iter().map(|b| b.to_string()).collect());
    }
    let ids: Vec<String> = s.split(',').map(|b| b.trim().to_owned()).collect();
    for id in &ids {
        if !BACKENDS.contains(&id.as_str()) {
            bail!("unknown backend {id:?}; known: {}", BACKENDS.join(", "));
        }
    }
    Ok(ids)
}

/// The CI quality floor: keyword nDCG@10 on SciFact must stay at or above 0.65 on the
/// in-process backends.
fn quality_floor() -> Result<()> {
    let data = root()
        .join("..")
        .join("shared")
        .join("data")
        .join("scifact");
    if !data.join("corpus.jsonl").is_file() {
        let need = format!(
            "the quality floor needs the SciFact data at {} (../shared/data/scifact beside the clone)",
            data.display()
        );
        // CI sets MEMLAYER_REQUIRE_DATA, so a missing dataset fails there and never passes
        // silently; elsewhere the floor says what it skipped.
        if std::env::var_os("MEMLAYER_REQUIRE_DATA").is_some() {
            bail!("{need}; MEMLAYER_REQUIRE_DATA is set");
        }
        eprintln!("quality floor NOT RUN: {need}");
        return Ok(());
    }
    let args = eval::EvalArgs {
        data,
        backends: vec!["memory".into(), "sqlite".into()],
        modes: vec![memlayer::SearchMode::Keyword],
        embedder: "hash".into(),
        k: 10,
        limit: 100,
        json: None,
        fusion: None,
        pool_depth: None,
        context_weight: None,
        min_score: None,
        markdown: None,
        dump: None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let rows = runtime.block_on(eval::eval(&args))?;
    for (backend, ndcg) in eval::ndcg_by_backend(&rows) {
        if ndcg < 0.65 {
            bail!("keyword nDCG@10 on SciFact fell to {ndcg:.4} on {backend}; the floor is 0.65");
        }
        eprintln!("quality floor: {backend} keyword nDCG@10 = {ndcg:.4} (floor 0.65)");
    }
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Matrix { check } => matrix::matrix(check),
        Cmd::QualityFloor => quality_floor(),
        Cmd::Bench {
            quick,
            backend,
            sizes,
            markdown,
            merge,
            modes,
            filters,
            data,
        } => {
            let backends = match backend {
                Some(b) => parse_backends(&b)?,
                None if quick => vec!["memory".to_owned(), "sqlite".to_owned()],
                None => parse_backends("all")?,
            };
            let sizes = match sizes {
                Some(s) => s
                    .split(',')
                    .map(|x| x.trim().replace('_', "").parse::<usize>())
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .context("--sizes: comma-separated numbers")?,
                None if quick => vec![2000],
                None => vec![10_000, 100_000],
            };
            let args = bench::BenchArgs {
                quick,
                backends,
                sizes,
                markdown,
                merge,
                modes: match modes {
                    Some(m) => m.split(',').map(|x| x.trim().to_owned()).collect(),
                    None => vec!["keyword".into(), "vector".into(), "hybrid".into()],
                },
                filters: match filters {
                    Some(f) => f
                        .split(',')
                        .map(|x| x.trim().parse::<f64>())
                        .collect::<std::result::Result<Vec<_>, _>>()
                        .context("--filters: comma-separated numbers (1.0, 0.01)")?,
                    None => vec![1.0, 0.01],
                },
                data,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(bench::bench(&args))?;
            Ok(())
        }
        Cmd::Eval {
            data,
            backend,
            mode,
            embedder,
            k,
            limit,
            json,
            fusion,
            pool,
            context,
            min_score,
            markdown,
            dump,
        } => {
            let args = eval::EvalArgs {
                data,
                backends: parse_backends(&backend)?,
                modes: eval::parse_modes(&mode)?,
                embedder,
                k,
                limit,
                json,
                fusion: fusion.as_deref().map(parse_fusion).transpose()?,
                pool_depth: pool,
                context_weight: context,
                min_score,
                markdown,
                dump,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            runtime.block_on(eval::eval(&args))?;
            Ok(())
        }
    }
}

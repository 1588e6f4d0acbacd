//! `cargo xtask eval`: retrieval quality and latency on a BEIR-format dataset
//! (`../shared/docs/EVAL.md`): nDCG@10, recall@k, hit@k, MRR@10, search latency percentiles and
//! ingest throughput, per backend, mode and embedder.

mod data;
mod metrics;
mod report;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use memlayer::{DynStore, MemoryItem, SearchMode, SearchRequest};
use memlayer_embed::Embedder;
use serde_json::Value;

pub use data::{Dataset, Record, load};
pub use metrics::{ndcg_by_backend, percentile_ms};

use crate::progress::Progress;

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct EvalArgs {
    pub data: PathBuf,
    pub backends: Vec<String>,
    pub modes: Vec<SearchMode>,
    pub embedder: String,
    pub k: usize,
    /// Hits asked of the store per query (at least `k`).
    pub limit: usize,
    pub json: Option<PathBuf>,
    pub fusion: Option<memlayer::Fusion>,
    pub pool_depth: Option<usize>,
    /// Hybrid's conversational context weight (the default when `None`).
    pub context_weight: Option<f32>,
    /// The relevance floor.
    pub min_score: Option<f32>,
    /// Write the table, with the command that produced it, into this markdown file between
    /// `<!-- eval:start -->` and `<!-- eval:end -->`.
    pub markdown: Option<PathBuf>,
    /// Write every query's ranked hits, with each signal's score, as JSON lines to this file,
    /// for offline analysis of a ranking.
    pub dump: Option<PathBuf>,
}

/// Embeds the corpus (through the cache), returning the vectors and the measured rate.
pub async fn embed_corpus(
    data: &Dataset,
    embedder: &crate::embedders::Shared,
) -> Result<(HashMap<String, Vec<f32>>, f64)> {
    let started = Instant::now();
    let (hits0, misses0) = embedder.stats();
    let mut out = HashMap::new();
    let mut progress = Progress::new("embedding corpus", data.corpus.len());
    for chunk in data.corpus.chunks(256) {
        let texts: Vec<String> = chunk.iter().map(|r| r.text.clone()).collect();
        let vectors = embedder.embed(&texts).await?;
        for (r, v) in chunk.iter().zip(vectors) {
            out.insert(r.id.clone(), v);
        }
        progress.add(chunk.len());
    }
    progress.finish();
    let (hits, misses) = embedder.stats();
    let rate = data.corpus.len() as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "embedding: {} computed, {} from the cache, {rate:.0} docs/s",
        misses - misses0,
        hits - hits0
    );
    Ok((out, rate))
}

/// Loads the corpus into `store` (vectors precomputed), returning items/s of the store alone.
async fn ingest(
    store: &DynStore,
    data: &Dataset,
    vectors: Option<(&str, &HashMap<String, Vec<f32>>)>,
) -> Result<f64> {
    let started = Instant::now();
    let mut progress = Progress::new("loading corpus", data.corpus.len());
    for chunk in data.corpus.chunks(256) {
        let items: Vec<MemoryItem> = chunk
            .iter()
            .map(|r| {
                let item = data::item_of(&data.name, r)?;
                Ok(
                    match vectors.and_then(|(model, v)| Some((model, v.get(&r.id)?))) {
                        Some((model, v)) => item.with_embedding(model, v.clone()),
                        None => item,
                    },
                )
            })
            .collect::<Result<_>>()?;
        store.upsert_many(items).await?;
        progress.add(chunk.len());
    }
    progress.finish();
    Ok(data.corpus.len() as f64 / started.elapsed().as_secs_f64())
}

fn mode_name(m: SearchMode) -> &'static str {
    m.as_str()
}

/// Runs the evaluation and prints a markdown table; returns the JSON rows.
pub async fn eval(args: &EvalArgs) -> Result<Vec<Value>> {
    let data = load(&args.data)?;
    let judged: Vec<&Record> = data
        .queries
        .iter()
        .filter(|q| data.qrels.contains_key(&q.id))
        .collect();
    eprintln!(
        "{}: {} documents, {} judged queries",
        data.name,
        data.corpus.len(),
        judged.len()
    );
    let needs_vectors = args
        .modes
        .iter()
        .any(|m| matches!(m, SearchMode::Vector | SearchMode::Hybrid));
    let embedder = if needs_vectors {
        Some(crate::embedders::open(&args.embedder).await?)
    } else {
        None
    };
    // Embed every query once, up front, and time it, so search latency is measured apart.
    let mut query_vectors: HashMap<String, Vec<f32>> = HashMap::new();
    let mut embed_times: HashMap<String, Duration> = HashMap::new();
    if let Some(e) = &embedder {
        let mut progress = Progress::new("embedding queries", judged.len());
        for q in &judged {
            // Timed on the model itself, never on the cache: this is what a live query costs.
            let t = Instant::now();
            let v = e.inner().embed(std::slice::from_ref(&q.text)).await?;
            embed_times.insert(q.id.clone(), t.elapsed());
            query_vectors.insert(q.id.clone(), v.into_iter().next().unwrap_or_default());
            progress.add(1);
        }
        progress.finish();
    }
    let corpus_vectors = match &embedder {
        Some(e) => Some(embed_corpus(&data, e).await?.0),
        None => None,
    };
    let model_id = embedder.as_ref().map(|e| e.model_id().to_owned());
    let mut rows = Vec::new();
    let mut dump = match &args.dump {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => None,
    };
    for backend in &args.backends {
        let (store, guard) = crate::stores::open_fresh(backend).await?;
        let vectors = model_id.as_deref().zip(corpus_vectors.as_ref());
        let per_s = ingest(&store, &data, vectors).await?;
        for mode in &args.modes {
            let mut scores = Vec::new();
            let mut times = Vec::new();
            let mut with_embed = Vec::new();
            let mut progress =
                Progress::new(&format!("{backend} {}", mode_name(*mode)), judged.len());
            for q in &judged {
                let ns = data::namespace_of(&data.name, q.namespace.as_deref());
                let mut req = SearchRequest::new(*mode)
                    .with_query(q.text.clone())
                    .with_limit(args.limit.max(args.k));
                if let Some(v) = query_vectors.get(&q.id)
                    && *mode != SearchMode::Keyword
                {
                    req = req.with_vector(v.clone());
                }
                if let Some(f) = args.fusion {
                    req = req.with_fusion(f);
                }
                if let Some(d) = args.pool_depth {
                    req = req.with_pool_depth(d);
                }
                if let Some(w) = args.context_weight {
                    req = req.with_context_weight(w);
                }
                if let Some(m) = args.min_score {
                    req = req.with_min_score(m);
                }
                let t = Instant::now();
                let hits = store.search(&ns, &req).await?;
                let took = t.elapsed();
                times.push(took);
                with_embed.push(took + embed_times.get(&q.id).copied().unwrap_or_default());
                if let Some(out) = dump.as_mut() {
                    let ranked: Vec<Value> = hits
                        .hits
                        .iter()
                        .map(|h| {
                            serde_json::json!([h.item.id, h.score, h.keyword_score, h.vector_score])
                        })
                        .collect();
                    let line = serde_json::json!({
                        "backend": backend, "mode": mode_name(*mode), "query": q.id, "hits": ranked
                    });
                    writeln!(out, "{line}")?;
                }
                let ranked: Vec<String> = hits
                    .hits
                    .into_iter()
                    .map(|h| h.item.id)
                    .filter(|id| *id != q.id)
                    .collect();
                let relevant = data.qrels.get(&q.id).context("judged query")?;
                scores.push((q.category(), metrics::score(&ranked, relevant)));
                progress.add(1);
            }
            progress.finish();
            let embedder_name = if *mode == SearchMode::Keyword {
                "none"
            } else {
                args.embedder.as_str()
            };
            rows.push(metrics::row(metrics::Measured {
                dataset: &data.name,
                backend,
                mode: mode_name(*mode),
                embedder: embedder_name,
                scores: &scores,
                search: &mut times,
                search_with_embed: &mut with_embed,
                ingest_per_s: per_s,
            }));
        }
        store.close().await?;
        guard.release().await;
    }
    if let Some(mut out) = dump {
        out.flush()?;
    }
    print!("{}", report::table(&rows));
    if let Some(path) = &args.markdown {
        report::write_markdown(path, &data.name, &rows)?;
    }
    if let Some(path) = &args.json {
        let mut f =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        f.write_all(serde_json::to_string_pretty(&rows)?.as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(rows)
}

/// Parses `--mode`.
pub fn parse_modes(s: &str) -> Result<Vec<SearchMode>> {
    Ok(match s {
        "keyword" => vec![SearchMode::Keyword],
        "vector" => vec![SearchMode::Vector],
        "hybrid" => vec![SearchMode::Hybrid],
        "all" => vec![SearchMode::Keyword, SearchMode::Vector, SearchMode::Hybrid],
        other => bail!("unknown mode {other:?}: keyword, vector, hybrid or all"),
    })
}

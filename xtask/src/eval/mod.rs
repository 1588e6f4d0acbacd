//! `cargo xtask eval`: retrieval quality and latency on a BEIR-format dataset
//! (`../shared/docs/EVAL.md`): nDCG@10, recall@k, hit@k, MRR@10, search latency percentiles and
//! ingest throughput, per backend, mode and embedder.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use memlayer::{DynStore, Kind, MemoryItem, SearchMode, SearchRequest, Tier};
use memlayer_embed::Embedder;
use serde_json::{Value, json};

use crate::progress::Progress;

/// One document or query of a dataset.
#[derive(Clone, Debug)]
pub struct Record {
    pub id: String,
    pub text: String,
    pub namespace: Option<String>,
}

/// A BEIR dataset: corpus, queries and graded relevance judgements.
#[derive(Debug)]
pub struct Dataset {
    pub name: String,
    pub corpus: Vec<Record>,
    pub queries: Vec<Record>,
    /// query id -> (doc id -> grade)
    pub qrels: HashMap<String, HashMap<String, u32>>,
}

fn read_jsonl(path: &Path, is_corpus: bool) -> Result<Vec<Record>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), n + 1))?;
        let id = match &v["_id"] {
            Value::String(s) => s.clone(),
            Value::Number(x) => x.to_string(),
            _ => bail!("{}:{}: no _id", path.display(), n + 1),
        };
        let text = v["text"].as_str().unwrap_or_default();
        let title = if is_corpus {
            v["title"].as_str().unwrap_or_default()
        } else {
            ""
        };
        let text = if title.is_empty() {
            text.to_owned()
        } else {
            format!("{title} {text}")
        };
        let namespace = v["namespace"].as_str().map(str::to_owned);
        out.push(Record {
            id,
            text,
            namespace,
        });
    }
    Ok(out)
}

/// Loads `corpus.jsonl`, `queries.jsonl` and `qrels/test.tsv` from `dir`.
pub fn load(dir: &Path) -> Result<Dataset> {
    let corpus = read_jsonl(&dir.join("corpus.jsonl"), true)?;
    let queries = read_jsonl(&dir.join("queries.jsonl"), false)?;
    let mut qrels: HashMap<String, HashMap<String, u32>> = HashMap::new();
    let path = dir.join("qrels").join("test.tsv");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    for (n, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() < 3 || (n == 0 && cols[0] == "query-id") {
            continue;
        }
        let grade: f64 = cols[2]
            .trim()
            .parse()
            .with_context(|| format!("{}:{}", path.display(), n + 1))?;
        if grade > 0.0 {
            qrels
                .entry(cols[0].to_owned())
                .or_default()
                .insert(cols[1].to_owned(), grade as u32);
        }
    }
    let name = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".into());
    Ok(Dataset {
        name,
        corpus,
        queries,
        qrels,
    })
}

/// Per-query metrics, macro-averaged later.
#[derive(Default, Clone, Copy, Debug)]
pub struct QueryScores {
    pub ndcg10: f64,
    pub recall: [f64; 5],
    pub hit: [f64; 3],
    pub mrr10: f64,
}

/// The cut-offs of `recall@k`.
pub const RECALL_KS: [usize; 5] = [1, 5, 10, 20, 100];
/// The cut-offs of `hit@k`.
pub const HIT_KS: [usize; 3] = [1, 5, 10];

/// Scores one ranking against graded judgements (trec_eval conventions: linear gains,
/// log2 discounts, IDCG over the judged relevant set).
pub fn score(ranked: &[String], relevant: &HashMap<String, u32>) -> QueryScores {
    let mut s = QueryScores::default();
    let dcg: f64 = ranked
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, id)| f64::from(*relevant.get(id).unwrap_or(&0)) / ((i + 2) as f64).log2())
        .sum();
    let mut ideal: Vec<u32> = relevant.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(10)
        .enumerate()
        .map(|(i, g)| f64::from(*g) / ((i + 2) as f64).log2())
        .sum();
    s.ndcg10 = if idcg > 0.0 { dcg / idcg } else { 0.0 };
    for (j, k) in RECALL_KS.iter().enumerate() {
        let found = ranked
            .iter()
            .take(*k)
            .filter(|id| relevant.contains_key(*id))
            .count();
        s.recall[j] = found as f64 / relevant.len() as f64;
    }
    for (j, k) in HIT_KS.iter().enumerate() {
        s.hit[j] = f64::from(u8::from(
            ranked.iter().take(*k).any(|id| relevant.contains_key(id)),
        ));
    }
    s.mrr10 = ranked
        .iter()
        .take(10)
        .position(|id| relevant.contains_key(id))
        .map_or(0.0, |p| 1.0 / (p + 1) as f64);
    s
}

/// The value at quantile `q` of sorted durations, in milliseconds.
pub fn percentile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)].as_secs_f64() * 1000.0
}

/// One (backend, mode, embedder) result row, with the exact keys of EVAL.md's JSON.
#[allow(clippy::too_many_arguments)]
pub fn row(
    dataset: &str,
    backend: &str,
    mode: &str,
    embedder: &str,
    scores: &[QueryScores],
    search: &mut [Duration],
    search_with_embed: &mut [Duration],
    ingest_per_s: f64,
) -> Value {
    let n = scores.len().max(1) as f64;
    let avg = |f: &dyn Fn(&QueryScores) -> f64| scores.iter().map(f).sum::<f64>() / n;
    search.sort_unstable();
    search_with_embed.sort_unstable();
    let r4 = |x: f64| (x * 10_000.0).round() / 10_000.0;
    let r3 = |x: f64| (x * 1000.0).round() / 1000.0;
    json!({
        "dataset": dataset,
        "backend": backend,
        "mode": mode,
        "embedder": embedder,
        "queries": scores.len(),
        "ndcg@10": r4(avg(&|s| s.ndcg10)),
        "recall@1": r4(avg(&|s| s.recall[0])),
        "recall@5": r4(avg(&|s| s.recall[1])),
        "recall@10": r4(avg(&|s| s.recall[2])),
        "recall@20": r4(avg(&|s| s.recall[3])),
        "recall@100": r4(avg(&|s| s.recall[4])),
        "hit@1": r4(avg(&|s| s.hit[0])),
        "hit@5": r4(avg(&|s| s.hit[1])),
        "hit@10": r4(avg(&|s| s.hit[2])),
        "mrr@10": r4(avg(&|s| s.mrr10)),
        "search_p50_ms": r3(percentile_ms(search, 0.50)),
        "search_p95_ms": r3(percentile_ms(search, 0.95)),
        "search_p99_ms": r3(percentile_ms(search, 0.99)),
        "search_with_embed_p50_ms": r3(percentile_ms(search_with_embed, 0.50)),
        "ingest_items_per_s": ingest_per_s.round(),
    })
}

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
    /// Write the table, with the command that produced it, into this markdown file between
    /// `<!-- eval:start -->` and `<!-- eval:end -->`.
    pub markdown: Option<PathBuf>,
}

fn namespace_of(dataset: &str, ns: Option<&str>) -> String {
    match ns {
        Some(ns) => format!("eval-{dataset}-{ns}"),
        None => format!("eval-{dataset}"),
    }
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
                let item = MemoryItem::new(
                    namespace_of(&data.name, r.namespace.as_deref()),
                    Kind::Fact,
                    r.text.clone(),
                )
                .with_id(r.id.clone())
                .with_tier(Tier::Semantic);
                match vectors.and_then(|(model, v)| Some((model, v.get(&r.id)?))) {
                    Some((model, v)) => item.with_embedding(model, v.clone()),
                    None => item,
                }
            })
            .collect();
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
                let ns = namespace_of(&data.name, q.namespace.as_deref());
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
                let t = Instant::now();
                let hits = store.search(&ns, &req).await?;
                let took = t.elapsed();
                times.push(took);
                with_embed.push(took + embed_times.get(&q.id).copied().unwrap_or_default());
                let ranked: Vec<String> = hits
                    .hits
                    .into_iter()
                    .map(|h| h.item.id)
                    .filter(|id| *id != q.id)
                    .collect();
                scores.push(score(&ranked, &data.qrels[&q.id]));
                progress.add(1);
            }
            progress.finish();
            let embedder_name = if *mode == SearchMode::Keyword {
                "none"
            } else {
                args.embedder.as_str()
            };
            rows.push(row(
                &data.name,
                backend,
                mode_name(*mode),
                embedder_name,
                &scores,
                &mut times,
                &mut with_embed,
                per_s,
            ));
        }
        store.close().await?;
        guard.release().await;
    }
    print_table(&rows);
    if let Some(path) = &args.markdown {
        write_markdown(path, &rows)?;
    }
    if let Some(path) = &args.json {
        let mut f =
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        f.write_all(serde_json::to_string_pretty(&rows)?.as_bytes())?;
        eprintln!("wrote {}", path.display());
    }
    Ok(rows)
}

const EVAL_START: &str = "<!-- eval:start (generated by `cargo xtask eval --markdown`) -->";
const EVAL_END: &str = "<!-- eval:end -->";

/// Replaces the eval section of a markdown file with `rows` and the command that made them.
pub fn write_markdown(path: &Path, rows: &[Value]) -> Result<()> {
    let command = format!(
        "cargo xtask {}",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    let mut section = format!("{EVAL_START}\n\nProduced by:\n\n```sh\n{command}\n```\n\n");
    section.push_str(&table(rows));
    section.push_str(&format!("\n{EVAL_END}"));
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let new = match (old.find(EVAL_START), old.find(EVAL_END)) {
        (Some(a), Some(b)) if a < b => {
            format!("{}{section}{}", &old[..a], &old[b + EVAL_END.len()..])
        }
        _ => format!("{old}\n{section}\n"),
    };
    std::fs::write(path, new).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// Prints rows as a markdown table.
pub fn print_table(rows: &[Value]) {
    print!("{}", table(rows));
}

fn table(rows: &[Value]) -> String {
    let cols = [
        "backend",
        "mode",
        "embedder",
        "ndcg@10",
        "recall@10",
        "recall@100",
        "mrr@10",
        "search_p50_ms",
        "search_p95_ms",
        "search_with_embed_p50_ms",
        "ingest_items_per_s",
    ];
    let mut out = format!("| {} |\n|{}\n", cols.join(" | "), "---|".repeat(cols.len()));
    for r in rows {
        let cells: Vec<String> = cols
            .iter()
            .map(|c| match &r[*c] {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            })
            .collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
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

/// A small summary used by the CI quality floor.
pub fn ndcg_by_backend(rows: &[Value]) -> BTreeMap<String, f64> {
    rows.iter()
        .filter_map(|r| Some((r["backend"].as_str()?.to_owned(), r["ndcg@10"].as_f64()?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_follow_trec_eval() {
        let rel: HashMap<String, u32> = [("a".to_owned(), 1), ("b".to_owned(), 2)].into();
        let ranked: Vec<String> = ["x", "b", "a"].iter().map(|s| s.to_string()).collect();
        let s = score(&ranked, &rel);
        let dcg = 2.0 / 3f64.log2() + 1.0 / 4f64.log2();
        let idcg = 2.0 / 2f64.log2() + 1.0 / 3f64.log2();
        assert!((s.ndcg10 - dcg / idcg).abs() < 1e-12);
        assert_eq!(s.recall[0], 0.0);
        assert_eq!(s.recall[1], 1.0);
        assert_eq!(s.mrr10, 0.5);
        assert_eq!(s.hit, [0.0, 1.0, 1.0]);
    }
}

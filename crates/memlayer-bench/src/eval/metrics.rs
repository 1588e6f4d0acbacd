//! Per-query retrieval metrics (trec_eval conventions) and their macro-averages.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::{Map, Value, json};

/// Per-query metrics, macro-averaged later.
#[derive(Default, Clone, Copy, Debug)]
pub struct QueryScores {
    pub ndcg10: f64,
    pub recall: [f64; 5],
    pub hit: [f64; 3],
    pub mrr10: f64,
    /// Hits among the first five that are not judged relevant: what a caller asking for five
    /// memories pays in noise.
    pub noise5: f64,
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
    s.noise5 = ranked
        .iter()
        .take(5)
        .filter(|id| !relevant.contains_key(*id))
        .count() as f64;
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

fn r4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The macro-averaged quality metrics of `scores`, with the keys of EVAL.md's JSON.
pub fn averages(scores: &[&QueryScores]) -> Map<String, Value> {
    let n = scores.len().max(1) as f64;
    let avg = |f: &dyn Fn(&QueryScores) -> f64| r4(scores.iter().map(|s| f(s)).sum::<f64>() / n);
    let mut m = Map::new();
    m.insert("queries".into(), json!(scores.len()));
    m.insert("ndcg@10".into(), json!(avg(&|s| s.ndcg10)));
    for (j, k) in RECALL_KS.iter().enumerate() {
        m.insert(format!("recall@{k}"), json!(avg(&|s| s.recall[j])));
    }
    for (j, k) in HIT_KS.iter().enumerate() {
        m.insert(format!("hit@{k}"), json!(avg(&|s| s.hit[j])));
    }
    m.insert("mrr@10".into(), json!(avg(&|s| s.mrr10)));
    m.insert("noise@5".into(), json!(avg(&|s| s.noise5)));
    m
}

/// One run's measurements for a (backend, mode) pair.
pub struct Measured<'a> {
    pub dataset: &'a str,
    pub backend: &'a str,
    pub mode: &'a str,
    pub embedder: &'a str,
    /// Each query's scores with its category, if the dataset has them.
    pub scores: &'a [(Option<u64>, QueryScores)],
    pub search: &'a mut [Duration],
    pub search_with_embed: &'a mut [Duration],
    pub ingest_per_s: f64,
}

/// One result row, with the exact keys of EVAL.md's JSON, plus `by_category` when the queries
/// carry categories.
pub fn row(m: Measured<'_>) -> Value {
    m.search.sort_unstable();
    m.search_with_embed.sort_unstable();
    let all: Vec<&QueryScores> = m.scores.iter().map(|(_, s)| s).collect();
    let mut out = Map::new();
    out.insert("dataset".into(), json!(m.dataset));
    out.insert("backend".into(), json!(m.backend));
    out.insert("mode".into(), json!(m.mode));
    out.insert("embedder".into(), json!(m.embedder));
    out.extend(averages(&all));
    out.insert(
        "search_p50_ms".into(),
        json!(r3(percentile_ms(m.search, 0.50))),
    );
    out.insert(
        "search_p95_ms".into(),
        json!(r3(percentile_ms(m.search, 0.95))),
    );
    out.insert(
        "search_p99_ms".into(),
        json!(r3(percentile_ms(m.search, 0.99))),
    );
    out.insert(
        "search_with_embed_p50_ms".into(),
        json!(r3(percentile_ms(m.search_with_embed, 0.50))),
    );
    out.insert("ingest_items_per_s".into(), json!(m.ingest_per_s.round()));
    let mut by_category: BTreeMap<u64, Vec<&QueryScores>> = BTreeMap::new();
    for (c, s) in m.scores {
        if let Some(c) = c {
            by_category.entry(*c).or_default().push(s);
        }
    }
    if !by_category.is_empty() {
        let cats: Map<String, Value> = by_category
            .iter()
            .map(|(c, s)| (c.to_string(), Value::Object(averages(s))))
            .collect();
        out.insert("by_category".into(), Value::Object(cats));
    }
    Value::Object(out)
}

/// Backend -> nDCG@10, for the CI quality floor.
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
        assert_eq!(s.noise5, 1.0);
    }

    #[test]
    fn rows_break_down_by_category() {
        let one = QueryScores {
            hit: [1.0, 1.0, 1.0],
            ..QueryScores::default()
        };
        let none = QueryScores::default();
        let scores = [(Some(1), one), (Some(2), none), (Some(2), one)];
        let r = row(Measured {
            dataset: "d",
            backend: "memory",
            mode: "hybrid",
            embedder: "hash",
            scores: &scores,
            search: &mut [],
            search_with_embed: &mut [],
            ingest_per_s: 1.0,
        });
        assert_eq!(r["hit@1"], json!(0.6667));
        assert_eq!(r["by_category"]["1"]["hit@1"], json!(1.0));
        assert_eq!(r["by_category"]["2"]["hit@1"], json!(0.5));
        assert_eq!(r["by_category"]["2"]["queries"], json!(2));
    }
}

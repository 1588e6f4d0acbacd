//! Reranking: an optional second stage that re-scores a search's best hits with a model that
//! reads query and memory together. The stage is off unless a caller passes a reranker, and
//! the results say when it ran (`SearchResults::reranked_by`).

#[cfg(feature = "local-minilm")]
mod cross_encoder;
#[cfg(feature = "openai")]
mod http;

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use memlayer_store::{Result, SearchResults};

#[cfg(feature = "local-minilm")]
pub use cross_encoder::CrossEncoder;
#[cfg(feature = "openai")]
pub use http::{HttpReranker, HttpRerankerConfig};

/// Scores how well each document answers a query.
///
/// # Behavior
/// - `score` returns one score per document, in document order; higher is more relevant.
/// - Scores are comparable within one call only.
#[async_trait]
pub trait Reranker: Send + Sync + Debug + 'static {
    /// The model's id, reported in the results it reranked.
    fn model_id(&self) -> &str;

    /// Scores `documents` against `query`.
    ///
    /// # Errors
    /// `Unavailable`/`Timeout` for a remote model that cannot be reached, `Unexpected` for a
    /// malformed answer or a model failure.
    async fn score(&self, query: &str, documents: &[String]) -> Result<Vec<f32>>;
}

/// A shared, type-erased reranker.
pub type DynReranker = Arc<dyn Reranker>;

const _: Option<&dyn Reranker> = None;

/// Reorders the first `depth` hits of `results` by `reranker`'s scores for `query` (ties keep
/// their retrieval order), sets each of those hits' `score` to the reranker's, leaves the
/// per-signal scores as retrieval gave them, and names the model in `reranked_by`. Hits below
/// `depth` keep their place after the reranked ones.
///
/// # Errors
/// The reranker's errors; `Unexpected` when it returns the wrong number of scores.
pub async fn rerank(
    reranker: &dyn Reranker,
    query: &str,
    mut results: SearchResults,
    depth: usize,
) -> Result<SearchResults> {
    let depth = depth.min(results.hits.len());
    if depth == 0 || query.trim().is_empty() {
        return Ok(results);
    }
    let documents: Vec<String> = results.hits[..depth]
        .iter()
        .map(|h| h.item.content.clone())
        .collect();
    let scores = reranker.score(query, &documents).await?;
    if scores.len() != depth {
        return Err(memlayer_store::Error::new(
            memlayer_store::ErrorKind::Unexpected,
            format!(
                "reranker {} returned {} scores for {depth} documents",
                reranker.model_id(),
                scores.len()
            ),
        ));
    }
    let rest = results.hits.split_off(depth);
    let mut head: Vec<(f32, usize, memlayer_store::SearchHit)> = results
        .hits
        .drain(..)
        .zip(scores)
        .enumerate()
        .map(|(i, (mut hit, s))| {
            hit.score = s;
            (s, i, hit)
        })
        .collect();
    head.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    results.hits = head.into_iter().map(|(_, _, h)| h).chain(rest).collect();
    results.reranked_by = Some(reranker.model_id().to_owned());
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use memlayer_store::types::{Kind, MemoryItem};
    use memlayer_store::{RankedBy, SearchHit};

    /// Scores a document by how many times it contains the query's first word.
    #[derive(Debug)]
    struct Counting;

    #[async_trait]
    impl Reranker for Counting {
        fn model_id(&self) -> &str {
            "counting"
        }
        async fn score(&self, query: &str, documents: &[String]) -> Result<Vec<f32>> {
            let word = query.split_whitespace().next().unwrap_or_default();
            Ok(documents
                .iter()
                .map(|d| d.matches(word).count() as f32)
                .collect())
        }
    }

    fn results(contents: &[&str]) -> SearchResults {
        SearchResults::new(
            contents
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let item = MemoryItem::new("ns", Kind::Fact, *c).with_id(format!("i{i}"));
                    SearchHit::new(item, 1.0 - i as f32 / 10.0, RankedBy::Hybrid)
                        .with_leg_scores(Some(0.5), None)
                })
                .collect(),
        )
    }

    fn ids(r: &SearchResults) -> Vec<&str> {
        r.hits.iter().map(|h| h.item.id.as_str()).collect()
    }

    #[tokio::test]
    async fn reorders_the_head_and_says_so() -> Result<()> {
        let r = results(&["tea", "tea tea", "coffee", "tea tea tea"]);
        let out = rerank(&Counting, "tea", r, 3).await?;
        assert_eq!(
            ids(&out),
            ["i1", "i0", "i2", "i3"],
            "the fourth is below the depth"
        );
        assert_eq!(out.hits[0].score, 2.0);
        assert_eq!(
            out.hits[0].keyword_score,
            Some(0.5),
            "per-signal scores stay"
        );
        assert_eq!(out.reranked_by.as_deref(), Some("counting"));
        Ok(())
    }

    #[tokio::test]
    async fn ties_keep_retrieval_order_and_empty_input_is_untouched() -> Result<()> {
        let out = rerank(&Counting, "milk", results(&["a", "b", "c"]), 10).await?;
        assert_eq!(ids(&out), ["i0", "i1", "i2"]);
        let empty = rerank(&Counting, "milk", results(&[]), 10).await?;
        assert_eq!(empty.reranked_by, None);
        Ok(())
    }
}

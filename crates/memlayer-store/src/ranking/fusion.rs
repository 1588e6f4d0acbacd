//! Fusion of the keyword and vector legs of hybrid search.

use std::collections::HashMap;

use crate::{Fusion, RankedBy, SearchHit};

/// Min-max normalises scores into 0..=1; a leg whose scores are all equal maps to 1.
fn min_max(scores: &[f32]) -> Vec<f32> {
    let (lo, hi) = scores
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &s| {
            (lo.min(s), hi.max(s))
        });
    let span = hi - lo;
    scores
        .iter()
        .map(|&s| {
            if span > 0.0 && span.is_finite() {
                (s - lo) / span
            } else {
                1.0
            }
        })
        .collect()
}

/// Fuses two legs, each given best first, into one list ordered by fused score, then id.
///
/// A hit found by both legs carries both per-signal scores; a hit found by one leg carries
/// that leg's score and contributes 0 from the other.
pub fn fuse(keyword: Vec<SearchHit>, vector: Vec<SearchHit>, fusion: Fusion) -> Vec<SearchHit> {
    let kw_norm = min_max(&keyword.iter().map(|h| h.score).collect::<Vec<_>>());
    let vec_norm = min_max(&vector.iter().map(|h| h.score).collect::<Vec<_>>());
    let mut merged: HashMap<String, SearchHit> = HashMap::new();
    let mut fused: HashMap<String, f32> = HashMap::new();
    let contribution = |rank: usize, normalised: f32, is_keyword: bool| match fusion {
        Fusion::Convex { keyword_weight } => {
            let w = if is_keyword {
                keyword_weight
            } else {
                1.0 - keyword_weight
            };
            w * normalised
        }
        Fusion::Rrf { k } => 1.0 / (k + rank as f32 + 1.0),
    };
    for (rank, hit) in keyword.into_iter().enumerate() {
        *fused.entry(hit.item.id.clone()).or_default() += contribution(rank, kw_norm[rank], true);
        let raw = hit.score;
        merged
            .entry(hit.item.id.clone())
            .or_insert(hit)
            .keyword_score = Some(raw);
    }
    for (rank, hit) in vector.into_iter().enumerate() {
        *fused.entry(hit.item.id.clone()).or_default() += contribution(rank, vec_norm[rank], false);
        let raw = hit.score;
        merged
            .entry(hit.item.id.clone())
            .or_insert(hit)
            .vector_score = Some(raw);
    }
    let mut out: Vec<SearchHit> = merged
        .into_iter()
        .map(|(id, mut hit)| {
            hit.score = fused.get(&id).copied().unwrap_or(0.0);
            hit.ranked_by = RankedBy::Hybrid;
            hit
        })
        .collect();
    sort_hits(&mut out);
    out
}

/// Sorts hits best first: higher score, then smaller id.
pub fn sort_hits(hits: &mut [SearchHit]) {
    hits.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.item.id.cmp(&b.item.id))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use memlayer_types::{Kind, MemoryItem};

    fn hit(id: &str, score: f32, by: RankedBy) -> SearchHit {
        let item = MemoryItem::new("n", Kind::Fact, "x").with_id(id);
        let (k, v) = match by {
            RankedBy::Keyword => (Some(score), None),
            _ => (None, Some(score)),
        };
        SearchHit {
            item,
            score,
            keyword_score: k,
            vector_score: v,
            ranked_by: by,
        }
    }

    #[test]
    fn convex_fills_both_scores_and_is_deterministic() {
        let kw = vec![
            hit("a", 3.0, RankedBy::Keyword),
            hit("b", 1.0, RankedBy::Keyword),
        ];
        let vec = vec![
            hit("b", 0.9, RankedBy::Vector),
            hit("c", 0.1, RankedBy::Vector),
        ];
        let out = fuse(
            kw.clone(),
            vec.clone(),
            Fusion::Convex {
                keyword_weight: 0.5,
            },
        );
        let ids: Vec<_> = out.iter().map(|h| h.item.id.as_str()).collect();
        // a: 0.5*1 + 0 = 0.5; b: 0.5*0 + 0.5*1 = 0.5; c: 0. Tie a/b broken by id.
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(out[1].keyword_score, Some(1.0));
        assert_eq!(out[1].vector_score, Some(0.9));
        assert_eq!(
            fuse(
                kw,
                vec,
                Fusion::Convex {
                    keyword_weight: 0.5
                }
            ),
            out
        );
    }

    #[test]
    fn rrf_rewards_agreement() {
        let kw = vec![
            hit("a", 3.0, RankedBy::Keyword),
            hit("b", 1.0, RankedBy::Keyword),
        ];
        let vec = vec![
            hit("b", 0.9, RankedBy::Vector),
            hit("c", 0.8, RankedBy::Vector),
        ];
        let out = fuse(kw, vec, Fusion::Rrf { k: 60.0 });
        assert_eq!(out[0].item.id, "b");
    }
}

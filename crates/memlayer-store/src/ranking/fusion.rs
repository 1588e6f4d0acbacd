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

/// One fused result: the id, its fused score and the legs' own scores.
#[derive(Clone, Debug, PartialEq)]
pub struct Fused {
    /// The item id.
    pub id: String,
    /// The fused score.
    pub score: f32,
    /// The keyword leg's score, if that leg found it.
    pub keyword_score: Option<f32>,
    /// The vector leg's score, if that leg found it.
    pub vector_score: Option<f32>,
}

impl Fused {
    /// The hit for this result's item.
    pub fn into_hit(self, item: memlayer_types::MemoryItem) -> SearchHit {
        SearchHit {
            item,
            score: self.score,
            keyword_score: self.keyword_score,
            vector_score: self.vector_score,
            ranked_by: RankedBy::Hybrid,
        }
    }
}

/// Fuses two legs given as (score, id), each best first, into one list ordered by fused
/// score, then id.
///
/// A result found by both legs carries both per-signal scores; one found by one leg carries
/// that leg's score and contributes 0 from the other.
pub fn fuse_ranked(
    keyword: &[(f32, String)],
    vector: &[(f32, String)],
    fusion: Fusion,
) -> Vec<Fused> {
    let kw_norm = min_max(&keyword.iter().map(|h| h.0).collect::<Vec<_>>());
    let vec_norm = min_max(&vector.iter().map(|h| h.0).collect::<Vec<_>>());
    let mut merged: HashMap<&str, Fused> = HashMap::new();
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
    for (leg, is_keyword, norm) in [(keyword, true, &kw_norm), (vector, false, &vec_norm)] {
        for (rank, (raw, id)) in leg.iter().enumerate() {
            let fused = merged.entry(id.as_str()).or_insert_with(|| Fused {
                id: id.clone(),
                score: 0.0,
                keyword_score: None,
                vector_score: None,
            });
            fused.score += contribution(rank, norm[rank], is_keyword);
            if is_keyword {
                fused.keyword_score = Some(*raw);
            } else {
                fused.vector_score = Some(*raw);
            }
        }
    }
    let mut out: Vec<Fused> = merged.into_values().collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
    out
}

/// Fuses two legs' hits, each given best first, as [`fuse_ranked`] does.
pub fn fuse(keyword: Vec<SearchHit>, vector: Vec<SearchHit>, fusion: Fusion) -> Vec<SearchHit> {
    let ranked = |hits: &[SearchHit]| -> Vec<(f32, String)> {
        hits.iter().map(|h| (h.score, h.item.id.clone())).collect()
    };
    let fused = fuse_ranked(&ranked(&keyword), &ranked(&vector), fusion);
    let mut items: HashMap<String, memlayer_types::MemoryItem> = HashMap::new();
    for hit in keyword.into_iter().chain(vector) {
        items.entry(hit.item.id.clone()).or_insert(hit.item);
    }
    fused
        .into_iter()
        .filter_map(|f| {
            let item = items.remove(&f.id)?;
            Some(f.into_hit(item))
        })
        .collect()
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

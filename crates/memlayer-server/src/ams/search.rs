//! AMS long-term search: the request body, recency re-ranking, and the search itself, shared
//! with the prompt endpoint.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use memlayer::{
    FieldMatch, Filter, MAX_LIMIT, MAX_OFFSET, MemoryItem, SearchMode, SearchRequest, Timestamp,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::filter::{Match, TimeMatch};
use super::long_term::body_of;
use super::record::{
    CANDIDATES, ENTITY, TOPIC, extraction_strategy_of, kinds_of, long_term_kinds, memory_type_of,
    one, record_of, tags_with,
};
use super::{from_api, from_store, invalid, parse_time, visible_namespaces};
use crate::AppState;
use crate::keys::Grant;

#[derive(Deserialize, Default)]
pub(super) struct SearchBody {
    #[serde(default)]
    pub(super) text: String,
    pub(super) session_id: Option<Match>,
    pub(super) namespace: Option<Match>,
    user_id: Option<Match>,
    topics: Option<Match>,
    entities: Option<Match>,
    memory_type: Option<Match>,
    /// Which strategy extracted the memory (AMS after 0.15.2); a plain string means `eq`.
    #[serde(default, deserialize_with = "super::filter::match_or_value")]
    extraction_strategy: Option<Match>,
    id: Option<Match>,
    created_at: Option<TimeMatch>,
    last_accessed: Option<TimeMatch>,
    event_date: Option<TimeMatch>,
    distance_threshold: Option<f64>,
    #[serde(default = "ten")]
    pub(super) limit: usize,
    #[serde(default)]
    offset: usize,
    search_mode: Option<String>,
    recency_boost: Option<bool>,
    recency_semantic_weight: Option<f64>,
    recency_recency_weight: Option<f64>,
    recency_freshness_weight: Option<f64>,
    recency_novelty_weight: Option<f64>,
    recency_half_life_last_access_days: Option<f64>,
    recency_half_life_created_days: Option<f64>,
    #[allow(dead_code)] // accepted: memlayer re-ranks in the server on every backend
    server_side_recency: Option<bool>,
}

pub(crate) fn ten() -> usize {
    10
}

/// AMS's recency re-ranking: similarity blended with freshness (since last access) and
/// novelty (since creation), each an exponential decay with a half-life in days.
pub(crate) struct Recency {
    pub(crate) semantic: f64,
    pub(crate) recency: f64,
    pub(crate) freshness: f64,
    pub(crate) novelty: f64,
    pub(crate) half_life_access: f64,
    pub(crate) half_life_created: f64,
}

impl Recency {
    pub(crate) fn of(b: &SearchBody) -> Result<Option<Recency>, Response> {
        if b.recency_boost != Some(true) {
            return Ok(None);
        }
        let r = Recency {
            semantic: b.recency_semantic_weight.unwrap_or(0.8),
            recency: b.recency_recency_weight.unwrap_or(0.2),
            freshness: b.recency_freshness_weight.unwrap_or(0.6),
            novelty: b.recency_novelty_weight.unwrap_or(0.4),
            half_life_access: b.recency_half_life_last_access_days.unwrap_or(7.0),
            half_life_created: b.recency_half_life_created_days.unwrap_or(30.0),
        };
        for (field, v) in [
            ("recency_half_life_last_access_days", r.half_life_access),
            ("recency_half_life_created_days", r.half_life_created),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(invalid(field, "must be a positive number of days"));
            }
        }
        Ok(Some(r))
    }

    pub(crate) fn score(&self, dist: f64, item: &MemoryItem, now: Timestamp) -> f64 {
        let days = |t: Timestamp| now.duration_since(t).as_secs_f64() / 86_400.0;
        let accessed = item.last_accessed_at.unwrap_or(item.created_at);
        let freshness = 0.5f64.powf(days(accessed) / self.half_life_access);
        let novelty = 0.5f64.powf(days(item.created_at) / self.half_life_created);
        self.semantic * (1.0 - dist)
            + self.recency * (self.freshness * freshness + self.novelty * novelty)
    }
}

/// A search hit with AMS's distance (0 is best).
pub(super) struct Found {
    pub(super) item: MemoryItem,
    pub(super) dist: f64,
    rank: f64,
}

/// The page of a search, the number of matches and the next offset.
pub(super) struct Results {
    pub(super) page: Vec<Found>,
    pub(super) total: usize,
    pub(super) next_offset: Option<usize>,
}

/// Runs an AMS search over the namespaces its filter names (all the caller may see when none).
pub(super) async fn run_search(
    st: &AppState,
    grant: &Grant,
    b: &SearchBody,
) -> Result<Results, Response> {
    if b.limit == 0 || b.limit > MAX_LIMIT {
        return Err(invalid("limit", format!("must be 1..={MAX_LIMIT}")));
    }
    if b.offset > MAX_OFFSET {
        return Err(invalid("offset", format!("must be at most {MAX_OFFSET}")));
    }
    if let Some(d) = b.distance_threshold
        && !(d.is_finite() && d >= 0.0)
    {
        return Err(invalid("distance_threshold", "must be a number >= 0"));
    }
    let mode = match b.search_mode.as_deref().unwrap_or("semantic") {
        _ if b.text.trim().is_empty() => SearchMode::Recent,
        "semantic" | "vector" => SearchMode::Vector,
        "keyword" | "fulltext" => SearchMode::Keyword,
        "hybrid" => SearchMode::Hybrid,
        other => {
            return Err(invalid(
                "search_mode",
                format!("is {other:?}; must be semantic, keyword or hybrid"),
            ));
        }
    };
    let recency = Recency::of(b)?;
    let created = b
        .created_at
        .as_ref()
        .map(|t| t.parse("created_at"))
        .transpose()?;
    let accessed = b
        .last_accessed
        .as_ref()
        .map(|t| t.parse("last_accessed"))
        .transpose()?;
    let event = b
        .event_date
        .as_ref()
        .map(|t| t.parse("event_date"))
        .transpose()?;

    // The namespaces: those the filter pins (each must be allowed), else all visible ones.
    let pinned: Option<Vec<String>> = b
        .namespace
        .as_ref()
        .and_then(|m| m.eq.clone().map(|x| vec![x]).or_else(|| m.any.clone()));
    let namespaces = match pinned {
        Some(list) => {
            for ns in &list {
                grant.check(ns).map_err(from_api)?;
            }
            list
        }
        None => visible_namespaces(st, grant).await?,
    };

    // The store filter holds a superset of the matches; the AMS filter then decides exactly.
    let mut filter = Filter::new();
    filter.kinds = match b.memory_type.as_ref().and_then(Match::pinned) {
        Some(t) => kinds_of(t).unwrap_or_default(),
        None => long_term_kinds(),
    };
    if let Some(u) = b.user_id.as_ref().and_then(Match::pinned) {
        filter.user = FieldMatch::Is(u.to_owned());
    }
    if let Some(s) = b.session_id.as_ref().and_then(Match::pinned) {
        filter.session = FieldMatch::Is(s.to_owned());
    }
    for t in b
        .topics
        .iter()
        .flat_map(|m| m.all.iter().flatten().chain(&m.eq))
    {
        filter = filter.tag(format!("{TOPIC}{t}"));
    }
    for e in b
        .entities
        .iter()
        .flat_map(|m| m.all.iter().flatten().chain(&m.eq))
    {
        filter = filter.tag(format!("{ENTITY}{e}"));
    }
    if let Some(t) = &created {
        let (from, to) = t.range();
        filter = filter.created_between(from, to);
    }
    if let Some(t) = &accessed {
        let (from, to) = t.range();
        filter = filter.accessed_between(from, to);
    }
    let accepts = |item: &MemoryItem| {
        let type_of = memory_type_of(&item.kind);
        b.session_id
            .as_ref()
            .is_none_or(|m| m.accepts(one(item.metadata.session_id.as_deref())))
            && b.namespace
                .as_ref()
                .is_none_or(|m| m.accepts(one(Some(item.namespace.as_str()))))
            && b.user_id
                .as_ref()
                .is_none_or(|m| m.accepts(one(item.metadata.user_id.as_deref())))
            && b.memory_type
                .as_ref()
                .is_none_or(|m| m.accepts(one(type_of)))
            && b.extraction_strategy
                .as_ref()
                .is_none_or(|m| m.accepts(one(Some(extraction_strategy_of(item)))))
            && b.id
                .as_ref()
                .is_none_or(|m| m.accepts(one(Some(item.id.as_str()))))
            && b.topics
                .as_ref()
                .is_none_or(|m| m.accepts(tags_with(item, TOPIC)))
            && b.entities
                .as_ref()
                .is_none_or(|m| m.accepts(tags_with(item, ENTITY)))
            && created
                .as_ref()
                .is_none_or(|t| t.accepts(Some(item.created_at)))
            && accessed
                .as_ref()
                .is_none_or(|t| t.accepts(Some(item.last_accessed_at.unwrap_or(item.created_at))))
            && event.as_ref().is_none_or(|t| {
                t.accepts(item.metadata.extra.get("event_date").and_then(parse_time))
            })
    };

    let candidates = CANDIDATES.max(b.offset + b.limit).min(MAX_LIMIT);
    let now = Timestamp::now();
    let mut found = Vec::new();
    for ns in &namespaces {
        let mut request = SearchRequest::new(mode)
            .with_filter(filter.clone())
            .with_limit(candidates);
        if mode != SearchMode::Recent {
            request = request.with_query(b.text.clone());
        }
        let results = st.store.search(ns, &request).await.map_err(from_store)?;
        for hit in results.hits {
            if !accepts(&hit.item) {
                continue;
            }
            let dist = match mode {
                SearchMode::Recent => 0.0,
                SearchMode::Vector => 1.0 - f64::from(hit.vector_score.unwrap_or(hit.score)),
                // BM25 is unbounded: 1 / (1 + score) keeps the order and stays in (0, 1].
                SearchMode::Keyword => 1.0 / (1.0 + f64::from(hit.score.max(0.0))),
                _ => 1.0 - f64::from(hit.score),
            };
            if b.distance_threshold.is_some_and(|d| dist > d) {
                continue;
            }
            let rank = match &recency {
                Some(r) => r.score(dist, &hit.item, now),
                None => -dist,
            };
            found.push(Found {
                item: hit.item,
                dist,
                rank,
            });
        }
    }
    found.sort_by(|a, b| {
        b.rank
            .total_cmp(&a.rank)
            .then_with(|| b.item.created_at.cmp(&a.item.created_at))
            .then_with(|| a.item.id.cmp(&b.item.id))
    });
    let total = found.len();
    let page: Vec<Found> = found.into_iter().skip(b.offset).take(b.limit).collect();
    let end = b.offset + page.len();
    // Recall counts as access, as in AMS: the hits' last_accessed moves to now.
    let mut by_ns: HashMap<&str, Vec<String>> = HashMap::new();
    for f in &page {
        by_ns
            .entry(f.item.namespace.as_str())
            .or_default()
            .push(f.item.id.clone());
    }
    for (ns, ids) in by_ns {
        st.store
            .reinforce(ns, &ids, now)
            .await
            .map_err(from_store)?;
    }
    Ok(Results {
        total,
        next_offset: (end < total).then_some(end),
        page,
    })
}

pub(crate) async fn search(State(st): State<AppState>, grant: Grant, body: Bytes) -> Response {
    let b: SearchBody = match body_of(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match run_search(&st, &grant, &b).await {
        Ok(results) => {
            let memories: Vec<Value> = results
                .page
                .iter()
                .map(|f| {
                    let mut r = record_of(&f.item);
                    r["dist"] = json!(f.dist);
                    r
                })
                .collect();
            Json(json!({
                "memories": memories,
                "total": results.total,
                "next_offset": results.next_offset}))
            .into_response()
        }
        Err(r) => r,
    }
}

//! The one search driver every backend shares: validation, modes, pool depths, fusion and the
//! recency fallback live here, so that backends only supply three legs and cannot drift apart.

use std::collections::HashMap;

use async_trait::async_trait;

use crate::ranking::{context, fusion, text};
use crate::{
    Cursor, Filter, ListRequest, Order, RankedBy, Result, SearchHit, SearchMode, SearchRequest,
    SearchResults, SortKey,
};

/// One entry of a leg's ranking for hybrid search: the score, the id, and the item when the
/// leg read it anyway.
#[derive(Clone, Debug)]
pub struct Ranked {
    /// The leg's score.
    pub score: f32,
    /// The item id.
    pub id: String,
    /// The item, if the leg has it.
    pub item: Option<memlayer_types::MemoryItem>,
}

impl From<SearchHit> for Ranked {
    fn from(hit: SearchHit) -> Self {
        Ranked {
            score: hit.score,
            id: hit.item.id.clone(),
            item: Some(hit.item),
        }
    }
}

/// The three primitive searches of a backend, each with the filter pushed down.
#[async_trait]
pub trait SearchLegs: Send + Sync {
    /// One page of items passing the filter of `request`, in its (sort key, id) order, after
    /// `cursor`, skipping `offset`, at most the request's limit, plus the next cursor when more
    /// remain. `list` and the recency leg are both built on it.
    async fn page(
        &self,
        namespace: &str,
        request: &ListRequest,
        cursor: Option<Cursor>,
        offset: usize,
    ) -> Result<(Vec<memlayer_types::MemoryItem>, Option<String>)>;

    /// Newest first by (created_at, id), after `cursor`, skipping `offset`, at most `limit`
    /// hits with `RankedBy::Recency`, plus the next cursor when more remain.
    async fn recent_leg(
        &self,
        namespace: &str,
        filter: &Filter,
        cursor: Option<&str>,
        offset: usize,
        limit: usize,
    ) -> Result<SearchResults> {
        let cursor = cursor
            .map(|c| Cursor::decode(c, SortKey::Created, Order::Desc))
            .transpose()?;
        let request = ListRequest::new()
            .with_filter(filter.clone())
            .sorted(SortKey::Created, Order::Desc)
            .with_limit(limit);
        let (items, next_cursor) = self.page(namespace, &request, cursor, offset).await?;
        Ok(SearchResults {
            hits: recency_hits(items, offset),
            next_cursor,
            reranked_by: None,
        })
    }

    /// The best `k` BM25 hits for the query, best first, ties by id. `text` is the raw query;
    /// `terms` its analysed distinct terms (never empty).
    async fn keyword_leg(
        &self,
        namespace: &str,
        text: &str,
        terms: &[String],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<SearchHit>>;

    /// The best `k` cosine hits, best first, ties by id; checks the vector's dimension.
    async fn vector_leg(
        &self,
        namespace: &str,
        vector: &[f32],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<SearchHit>>;

    /// The keyword leg for hybrid search's pool: (score, id, item), best first. By default the
    /// leg's hits, items included; a backend that pays a read per item returns no items, and
    /// only the returned page's items are read, through [`SearchLegs::items_by_id`].
    async fn keyword_ranked(
        &self,
        namespace: &str,
        text: &str,
        terms: &[String],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<Ranked>> {
        let hits = self.keyword_leg(namespace, text, terms, filter, k).await?;
        Ok(hits.into_iter().map(Ranked::from).collect())
    }

    /// The vector leg for hybrid search's pool, as [`SearchLegs::keyword_ranked`].
    async fn vector_ranked(
        &self,
        namespace: &str,
        vector: &[f32],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<Ranked>> {
        let hits = self.vector_leg(namespace, vector, filter, k).await?;
        Ok(hits.into_iter().map(Ranked::from).collect())
    }

    /// The items of `namespace` among `ids` that still exist, by id. Required of a backend
    /// whose ranked legs return no items.
    async fn items_by_id(
        &self,
        namespace: &str,
        ids: &[String],
    ) -> Result<HashMap<String, memlayer_types::MemoryItem>> {
        let _ = (namespace, ids);
        Err(crate::Error::new(
            crate::ErrorKind::Unexpected,
            "this backend's ranked legs return their items",
        ))
    }
}

/// How many of the best fused results take part in the conversational lift of hybrid search.
const CONTEXT_HEAD: usize = 100;

/// Runs `request` over a backend's legs.
///
/// # Errors
/// `InvalidInput` from validation or the legs; the legs' own errors otherwise.
pub async fn run_search<L: SearchLegs + ?Sized>(
    legs: &L,
    namespace: &str,
    request: &SearchRequest,
) -> Result<SearchResults> {
    crate::limits::check_namespace(namespace)?;
    crate::limits::check_search(request)?;
    let limit = request.effective_limit();
    let offset = request.offset;
    let window = offset.saturating_add(limit);
    let filter = &request.filter;
    let query_terms = request
        .query
        .as_deref()
        .map(text::query_terms)
        .unwrap_or_default();
    let floor = request.min_score.unwrap_or(f32::NEG_INFINITY);
    let page = |mut hits: Vec<SearchHit>| SearchResults {
        hits: hits
            .drain(..)
            .filter(|h| h.score >= floor)
            .skip(offset)
            .take(limit)
            .collect(),
        next_cursor: None,
        reranked_by: None,
    };
    match request.mode {
        SearchMode::Recent => {
            legs.recent_leg(namespace, filter, request.cursor.as_deref(), offset, limit)
                .await
        }
        SearchMode::Keyword => {
            if query_terms.is_empty() {
                return Ok(SearchResults::default());
            }
            let text = request.query.as_deref().unwrap_or_default();
            let hits = legs
                .keyword_leg(namespace, text, &query_terms, filter, window)
                .await?;
            Ok(page(hits))
        }
        SearchMode::Vector => {
            let Some(vector) = request.vector.as_deref() else {
                return Ok(SearchResults::default());
            };
            let hits = legs.vector_leg(namespace, vector, filter, window).await?;
            Ok(page(hits))
        }
        SearchMode::Hybrid => {
            let depth = request.hybrid.pool_depth.max(window);
            // The two legs are independent: a backend behind a network runs them at once, so
            // a hybrid search waits for the slower leg rather than for both in turn.
            let keyword = async {
                if query_terms.is_empty() {
                    return Ok(Vec::new());
                }
                let text = request.query.as_deref().unwrap_or_default();
                legs.keyword_ranked(namespace, text, &query_terms, filter, depth)
                    .await
            };
            let vector = async {
                match request.vector.as_deref() {
                    Some(v) => legs.vector_ranked(namespace, v, filter, depth).await,
                    None => Ok(Vec::new()),
                }
            };
            let (keyword, vector) = tokio::try_join!(keyword, vector)?;
            if keyword.is_empty() && vector.is_empty() {
                // No signal: recency, and the hits say so (`RankedBy::Recency`, no leg scores).
                return legs
                    .recent_leg(namespace, filter, None, offset, limit)
                    .await;
            }
            let mut items = HashMap::new();
            let mut pool = |leg: Vec<Ranked>| -> Vec<(f32, String)> {
                leg.into_iter()
                    .map(|r| {
                        if let Some(item) = r.item {
                            items.entry(r.id.clone()).or_insert(item);
                        }
                        (r.score, r.id)
                    })
                    .collect()
            };
            let (keyword, vector) = (pool(keyword), pool(vector));
            let mut fused = fusion::fuse_ranked(&keyword, &vector, request.hybrid.fusion);
            let weight = request.hybrid.context_weight;
            if weight > 0.0 {
                // The same head on every backend, whatever the page, so that rankings agree.
                fused.truncate(window.max(CONTEXT_HEAD));
                let unread: Vec<String> = fused
                    .iter()
                    .filter(|f| !items.contains_key(&f.id))
                    .map(|f| f.id.clone())
                    .collect();
                if !unread.is_empty() {
                    items.extend(legs.items_by_id(namespace, &unread).await?);
                }
                context::lift(&mut fused, &items, weight);
            }
            // A vector-only hit with fused score 0 is one no signal speaks for (the vector
            // leg's least similar, which the keyword leg did not find): it would only pad.
            let fused: Vec<fusion::Fused> = fused
                .into_iter()
                .filter(|f| f.score >= floor && (f.score > 0.0 || f.keyword_score.is_some()))
                .skip(offset)
                .take(limit)
                .collect();
            let missing: Vec<String> = fused
                .iter()
                .filter(|f| !items.contains_key(&f.id))
                .map(|f| f.id.clone())
                .collect();
            if !missing.is_empty() {
                items.extend(legs.items_by_id(namespace, &missing).await?);
            }
            // An item deleted between the ranking and that read is left out.
            let hits = fused
                .into_iter()
                .filter_map(|f| {
                    let item = items.remove(&f.id)?;
                    Some(f.into_hit(item))
                })
                .collect();
            Ok(SearchResults {
                hits,
                next_cursor: None,
                reranked_by: None,
            })
        }
    }
}

/// Runs a `list` over a backend's keyset page: validation, cursor decoding, one page.
///
/// # Errors
/// `InvalidInput` for a bad limit or cursor; the page's own errors otherwise.
pub async fn run_list<L: SearchLegs + ?Sized>(
    legs: &L,
    namespace: &str,
    request: &ListRequest,
) -> Result<crate::Page> {
    crate::limits::check_list(request)?;
    let cursor = request.decoded_cursor()?;
    let (items, next_cursor) = legs.page(namespace, request, cursor, 0).await?;
    Ok(crate::Page { items, next_cursor })
}

/// A hit of one leg.
pub fn leg_hit(item: memlayer_types::MemoryItem, score: f32, by: RankedBy) -> SearchHit {
    let (keyword_score, vector_score) = match by {
        RankedBy::Keyword => (Some(score), None),
        RankedBy::Vector => (None, Some(score)),
        RankedBy::Recency | RankedBy::Hybrid => (None, None),
    };
    SearchHit {
        item,
        score,
        keyword_score,
        vector_score,
        ranked_by: by,
    }
}

/// The hits of a recency page that starts `offset` items into the ranking.
pub fn recency_hits(items: Vec<memlayer_types::MemoryItem>, offset: usize) -> Vec<SearchHit> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| leg_hit(item, 1.0 / (1 + offset + i) as f32, RankedBy::Recency))
        .collect()
}

/// One keyset page of `items` in (key, id) order: those after `cursor`, skipping `offset`, at
/// most `limit`, plus the cursor after the last one when more remain. For backends that cannot
/// sort on the server.
pub fn sort_page(
    mut items: Vec<memlayer_types::MemoryItem>,
    key: SortKey,
    order: Order,
    cursor: Option<&Cursor>,
    offset: usize,
    limit: usize,
) -> (Vec<memlayer_types::MemoryItem>, Option<String>) {
    items.retain(|i| cursor.is_none_or(|c| c.admits(i)));
    items.sort_by(|a, b| {
        let ord = key
            .value_of(a)
            .cmp_to(&key.value_of(b))
            .then_with(|| a.id.cmp(&b.id));
        match order {
            Order::Asc => ord,
            Order::Desc => ord.reverse(),
        }
    });
    let mut page: Vec<memlayer_types::MemoryItem> =
        items.into_iter().skip(offset).take(limit + 1).collect();
    let next = if page.len() > limit {
        page.truncate(limit);
        page.last()
            .map(|last| Cursor::after(last, key, order).encode())
    } else {
        None
    };
    (page, next)
}

//! The one search driver every backend shares: validation, modes, pool depths, fusion and the
//! recency fallback live here, so that backends only supply three legs and cannot drift apart.

use async_trait::async_trait;

use crate::ranking::{fusion, text};
use crate::{
    Cursor, Filter, ListRequest, Order, RankedBy, Result, SearchHit, SearchMode, SearchRequest,
    SearchResults, SortKey,
};

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
}

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
    let page = |mut hits: Vec<SearchHit>| SearchResults {
        hits: hits.drain(..).skip(offset).take(limit).collect(),
        next_cursor: None,
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
            let keyword = if query_terms.is_empty() {
                Vec::new()
            } else {
                let text = request.query.as_deref().unwrap_or_default();
                legs.keyword_leg(namespace, text, &query_terms, filter, depth)
                    .await?
            };
            let vector = match request.vector.as_deref() {
                Some(v) => legs.vector_leg(namespace, v, filter, depth).await?,
                None => Vec::new(),
            };
            if keyword.is_empty() && vector.is_empty() {
                // No signal: recency, and the hits say so (`RankedBy::Recency`, no leg scores).
                return legs
                    .recent_leg(namespace, filter, None, offset, limit)
                    .await;
            }
            Ok(page(fusion::fuse(keyword, vector, request.hybrid.fusion)))
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

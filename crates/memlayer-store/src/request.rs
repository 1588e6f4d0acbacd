use memlayer_types::{MemoryItem, Timestamp};
use serde::{Deserialize, Serialize};

use crate::{Error, Filter, Result};

/// The default number of hits or items returned.
pub const DEFAULT_LIMIT: usize = 10;
/// The largest limit a single call accepts.
pub const MAX_LIMIT: usize = 10_000;
/// The largest offset a single call accepts.
pub const MAX_OFFSET: usize = 100_000;

/// How a search ranks.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SearchMode {
    /// Newest first by creation time; ignores query and vector.
    Recent,
    /// BM25 over the content.
    Keyword,
    /// Cosine similarity to the query vector.
    Vector,
    /// Keyword and vector legs fused; recency when neither leg has a signal.
    #[default]
    Hybrid,
}

impl SearchMode {
    /// The stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SearchMode::Recent => "recent",
            SearchMode::Keyword => "keyword",
            SearchMode::Vector => "vector",
            SearchMode::Hybrid => "hybrid",
        }
    }
}

/// How hybrid search fuses its two legs.
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "method")]
#[non_exhaustive]
pub enum Fusion {
    /// `keyword_weight * minmax(bm25) + (1 - keyword_weight) * minmax(cosine)`.
    Convex {
        /// Weight of the keyword leg, 0..=1.
        keyword_weight: f32,
    },
    /// Reciprocal rank fusion: the sum over legs of `1 / (k + rank)`, ranks from 1.
    Rrf {
        /// The rank constant; 60 in the original paper.
        k: f32,
    },
}

impl Default for Fusion {
    fn default() -> Self {
        Fusion::Convex {
            keyword_weight: DEFAULT_KEYWORD_WEIGHT,
        }
    }
}

/// The default keyword weight of convex fusion.
pub const DEFAULT_KEYWORD_WEIGHT: f32 = 0.6;
/// The default depth of each hybrid leg.
pub const DEFAULT_POOL_DEPTH: usize = 200;
/// The default weight of a message's neighbours in hybrid ranking (see
/// `docs/decisions/0008-conversation-recall.md`).
pub const DEFAULT_CONTEXT_WEIGHT: f32 = 0.3;

/// Options of hybrid search.
#[derive(Clone, Copy, PartialEq, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct HybridOptions {
    /// The fusion method.
    pub fusion: Fusion,
    /// How many hits each leg contributes before fusion (at least `offset + limit`).
    pub pool_depth: usize,
    /// How much a conversation message is lifted by the fused score of the message before or
    /// after it (linked by `metadata.extra["follows"]`), 0..=1; 0 turns it off. Items without
    /// links are unaffected.
    pub context_weight: f32,
}

impl Default for HybridOptions {
    fn default() -> Self {
        HybridOptions {
            fusion: Fusion::default(),
            pool_depth: DEFAULT_POOL_DEPTH,
            context_weight: DEFAULT_CONTEXT_WEIGHT,
        }
    }
}

/// One search.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SearchRequest {
    /// Text for the keyword leg.
    pub query: Option<String>,
    /// Vector for the vector leg.
    pub vector: Option<Vec<f32>>,
    /// Which items are eligible.
    pub filter: Filter,
    /// The ranking.
    pub mode: SearchMode,
    /// How many hits; `None` is [`DEFAULT_LIMIT`].
    pub limit: Option<usize>,
    /// How many of the best hits to skip.
    pub offset: usize,
    /// A cursor from a previous `recent` page; stable while items are inserted.
    pub cursor: Option<String>,
    /// Hybrid options.
    pub hybrid: HybridOptions,
    /// The relevance floor: hits whose score is below it are left out. The score is the
    /// mode's own: BM25 for keyword, cosine similarity for vector, the fused score for hybrid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_score: Option<f32>,
}

impl SearchRequest {
    /// A request in `mode` with everything else default.
    pub fn new(mode: SearchMode) -> Self {
        SearchRequest {
            mode,
            ..SearchRequest::default()
        }
    }

    /// Newest first.
    pub fn recent() -> Self {
        SearchRequest::new(SearchMode::Recent)
    }

    /// Keyword search for `query`.
    pub fn keyword(query: impl Into<String>) -> Self {
        SearchRequest::new(SearchMode::Keyword).with_query(query)
    }

    /// Vector search for `vector`.
    pub fn vector(vector: Vec<f32>) -> Self {
        SearchRequest::new(SearchMode::Vector).with_vector(vector)
    }

    /// Hybrid search with a text query; add a vector with [`SearchRequest::with_vector`].
    pub fn hybrid(query: impl Into<String>) -> Self {
        SearchRequest::new(SearchMode::Hybrid).with_query(query)
    }

    /// Sets the text query.
    pub fn with_query(mut self, query: impl Into<String>) -> Self {
        self.query = Some(query.into());
        self
    }

    /// Sets the query vector.
    pub fn with_vector(mut self, vector: Vec<f32>) -> Self {
        self.vector = Some(vector);
        self
    }

    /// Sets the filter.
    pub fn with_filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// Sets the limit.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Sets the offset.
    pub fn with_offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }

    /// Sets the cursor.
    pub fn with_cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// Sets the fusion method.
    pub fn with_fusion(mut self, fusion: Fusion) -> Self {
        self.hybrid.fusion = fusion;
        self
    }

    /// Sets the per-leg pool depth of hybrid search.
    pub fn with_pool_depth(mut self, depth: usize) -> Self {
        self.hybrid.pool_depth = depth;
        self
    }

    /// Sets the weight of a message's neighbours in hybrid ranking.
    pub fn with_context_weight(mut self, weight: f32) -> Self {
        self.hybrid.context_weight = weight;
        self
    }

    /// Sets the relevance floor.
    pub fn with_min_score(mut self, min_score: f32) -> Self {
        self.min_score = Some(min_score);
        self
    }

    /// The limit to apply.
    pub fn effective_limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT)
    }
}

/// Which signal ranked a hit.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RankedBy {
    /// Creation time: `recent` mode, or hybrid with no signal.
    Recency,
    /// BM25 alone.
    Keyword,
    /// Cosine alone.
    Vector,
    /// Fusion of both legs.
    Hybrid,
}

/// One search result. Non-exhaustive, so it can carry new signals: build one with
/// [`SearchHit::new`].
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SearchHit {
    /// The item.
    pub item: MemoryItem,
    /// The final score; higher is better.
    pub score: f32,
    /// BM25 of the keyword leg, when the item was in it.
    pub keyword_score: Option<f32>,
    /// Cosine of the vector leg, when the item was in it.
    pub vector_score: Option<f32>,
    /// Which signal produced `score`.
    pub ranked_by: RankedBy,
}

/// The answer to a search. Non-exhaustive: build one with [`SearchResults::new`].
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SearchResults {
    /// Hits, best first.
    pub hits: Vec<SearchHit>,
    /// The cursor of the next `recent` page, when there may be more.
    pub next_cursor: Option<String>,
    /// The reranker that re-scored the best hits, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reranked_by: Option<String>,
}

/// A sort key of `list`.
///
/// Exhaustive on purpose, unlike the modes and fusions: every backend translates each key
/// into its engine's terms, so a new key must be a compile error in each backend, not a
/// runtime refusal.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortKey {
    /// Creation time.
    #[default]
    Created,
    /// Last-write time.
    Updated,
    /// Last-access time; never-accessed items sort as the oldest.
    Accessed,
    /// Access count.
    AccessCount,
    /// Importance.
    Importance,
}

impl SortKey {
    fn tag(self) -> &'static str {
        match self {
            SortKey::Created => "c",
            SortKey::Updated => "u",
            SortKey::Accessed => "a",
            SortKey::AccessCount => "n",
            SortKey::Importance => "i",
        }
    }

    /// The value of this key for an item, as a totally ordered number.
    pub fn value_of(self, item: &MemoryItem) -> SortValue {
        match self {
            SortKey::Created => SortValue::Int(item.created_at.as_millis()),
            SortKey::Updated => SortValue::Int(item.updated_at.as_millis()),
            SortKey::Accessed => {
                SortValue::Int(item.last_accessed_at.map_or(i64::MIN, |t| t.as_millis()))
            }
            SortKey::AccessCount => {
                SortValue::Int(i64::try_from(item.access_count).unwrap_or(i64::MAX))
            }
            SortKey::Importance => SortValue::Float(f64::from(item.importance)),
        }
    }
}

/// A sort value: an integer (times, counts) or a float (importance).
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum SortValue {
    /// Milliseconds or counts.
    Int(i64),
    /// Importance.
    Float(f64),
}

impl SortValue {
    /// Total order between two values of the same key.
    pub fn cmp_to(&self, other: &SortValue) -> std::cmp::Ordering {
        match (self, other) {
            (SortValue::Int(a), SortValue::Int(b)) => a.cmp(b),
            (SortValue::Float(a), SortValue::Float(b)) => a.total_cmp(b),
            (SortValue::Int(a), SortValue::Float(b)) => (*a as f64).total_cmp(b),
            (SortValue::Float(a), SortValue::Int(b)) => a.total_cmp(&(*b as f64)),
        }
    }
}

/// Sort direction.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Smallest first.
    Asc,
    /// Largest first.
    #[default]
    Desc,
}

/// A keyset cursor: the sort value and id of the last item of a page.
///
/// Its string form is opaque to callers; it stays valid while items are inserted, so pages
/// never repeat or skip an item.
#[derive(Clone, PartialEq, Debug)]
pub struct Cursor {
    /// The sort key it was made for.
    pub key: SortKey,
    /// The order it was made for.
    pub order: Order,
    /// The last item's sort value.
    pub value: SortValue,
    /// The last item's id.
    pub id: String,
}

impl Cursor {
    /// The cursor after `item` in a listing by `key` and `order`.
    pub fn after(item: &MemoryItem, key: SortKey, order: Order) -> Self {
        Cursor {
            key,
            order,
            value: key.value_of(item),
            id: item.id.clone(),
        }
    }

    /// The opaque string form.
    pub fn encode(&self) -> String {
        let dir = match self.order {
            Order::Asc => "a",
            Order::Desc => "d",
        };
        let value = match self.value {
            SortValue::Int(v) => format!("i{v}"),
            SortValue::Float(v) => format!("f{}", v.to_bits()),
        };
        format!("1.{}{dir}.{value}.{}", self.key.tag(), self.id)
    }

    /// Parses a cursor made for `key` and `order`.
    ///
    /// # Errors
    /// `InvalidInput` naming `cursor` when the string is malformed or made for another sort.
    pub fn decode(s: &str, key: SortKey, order: Order) -> Result<Self> {
        let bad = || Error::invalid("cursor", format!("not a cursor of this listing: {s:?}"));
        let mut parts = s.splitn(4, '.');
        let (Some("1"), Some(sort), Some(value), Some(id)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let dir = match order {
            Order::Asc => "a",
            Order::Desc => "d",
        };
        if sort != format!("{}{dir}", key.tag()) {
            return Err(bad());
        }
        let value = if let Some(v) = value.strip_prefix('i') {
            SortValue::Int(v.parse().map_err(|_| bad())?)
        } else if let Some(v) = value.strip_prefix('f') {
            SortValue::Float(f64::from_bits(v.parse().map_err(|_| bad())?))
        } else {
            return Err(bad());
        };
        Ok(Cursor {
            key,
            order,
            value,
            id: id.to_owned(),
        })
    }

    /// Whether `item` comes strictly after this cursor in its listing.
    pub fn admits(&self, item: &MemoryItem) -> bool {
        let ord = self
            .key
            .value_of(item)
            .cmp_to(&self.value)
            .then_with(|| item.id.as_str().cmp(self.id.as_str()));
        match self.order {
            Order::Asc => ord.is_gt(),
            Order::Desc => ord.is_lt(),
        }
    }
}

/// One `list` call.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ListRequest {
    /// Which items are listed.
    pub filter: Filter,
    /// The sort key; ties are broken by id in the same direction.
    pub sort: SortKey,
    /// The direction.
    pub order: Order,
    /// How many items; `None` is [`DEFAULT_LIMIT`].
    pub limit: Option<usize>,
    /// The cursor from the previous page.
    pub cursor: Option<String>,
}

impl ListRequest {
    /// Newest first, default limit.
    pub fn new() -> Self {
        ListRequest::default()
    }

    /// Sets the filter.
    pub fn with_filter(mut self, filter: Filter) -> Self {
        self.filter = filter;
        self
    }

    /// Sets the sort key and direction.
    pub fn sorted(mut self, sort: SortKey, order: Order) -> Self {
        self.sort = sort;
        self.order = order;
        self
    }

    /// Sets the limit.
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Sets the cursor.
    pub fn with_cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// The limit to apply.
    pub fn effective_limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_LIMIT)
    }

    /// The decoded cursor, if any.
    ///
    /// # Errors
    /// `InvalidInput` naming `cursor` when it was made for another listing.
    pub fn decoded_cursor(&self) -> Result<Option<Cursor>> {
        self.cursor
            .as_deref()
            .map(|c| Cursor::decode(c, self.sort, self.order))
            .transpose()
    }
}

/// One page of a listing. Non-exhaustive: build one with [`Page::new`].
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Page {
    /// The items of this page.
    pub items: Vec<MemoryItem>,
    /// The cursor of the next page; `None` when this page is the last.
    pub next_cursor: Option<String>,
}

impl Page {
    /// A page of `items`, followed by the page `next_cursor` names.
    pub fn new(items: Vec<MemoryItem>, next_cursor: Option<String>) -> Self {
        Page { items, next_cursor }
    }
}

impl SearchHit {
    /// A hit for `item` with its final `score`, ranked by `ranked_by`, without leg scores.
    pub fn new(item: MemoryItem, score: f32, ranked_by: RankedBy) -> Self {
        SearchHit {
            item,
            score,
            keyword_score: None,
            vector_score: None,
            ranked_by,
        }
    }

    /// Sets the leg scores.
    pub fn with_leg_scores(mut self, keyword: Option<f32>, vector: Option<f32>) -> Self {
        self.keyword_score = keyword;
        self.vector_score = vector;
        self
    }
}

impl SearchResults {
    /// Results holding `hits`, best first, with no next cursor and no reranker.
    pub fn new(hits: Vec<SearchHit>) -> Self {
        SearchResults {
            hits,
            ..SearchResults::default()
        }
    }
}

/// A `clear`: soft-deletes the matching live items.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ClearRequest {
    /// Which items; must select a subset unless `all` is set.
    pub filter: Filter,
    /// Clear every live item of the namespace; required when the filter selects everything.
    pub all: bool,
}

impl ClearRequest {
    /// Clears the items matching `filter`.
    pub fn matching(filter: Filter) -> Self {
        ClearRequest { filter, all: false }
    }

    /// Clears every live item of the namespace.
    pub fn everything() -> Self {
        ClearRequest {
            filter: Filter::default(),
            all: true,
        }
    }
}

/// Options of `count`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct CountOptions {
    /// Count soft-deleted items too.
    pub include_deleted: bool,
}

impl CountOptions {
    /// Counts live items.
    pub fn live() -> Self {
        CountOptions::default()
    }

    /// Counts every item not hard-deleted.
    pub fn all() -> Self {
        CountOptions {
            include_deleted: true,
        }
    }
}

/// An expired item found by `list_expired`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ExpiredItem {
    /// Its namespace.
    pub namespace: String,
    /// Its id.
    pub id: String,
    /// When it expired.
    pub expires_at: Timestamp,
}

//! The search legs run by `memlayer_store::backend::search::run_search`, and listing's page.

use std::collections::HashMap;

use async_trait::async_trait;
use memlayer_store::backend::search::{Ranked, SearchLegs, leg_hit};
use memlayer_store::backend::sql::SqlDialect;
use memlayer_store::limits::check_query_dim;
use memlayer_store::types::MemoryItem;
use memlayer_store::{Cursor, Filter, ListRequest, Order, RankedBy, Result, SearchHit};
use rusqlite::Connection;

use crate::client::SqliteStore;
use crate::index;
use crate::rows::{ById, query_items, rows_by_id, select_items};
use crate::schema;
use crate::sql;
use crate::sql::Query;

#[async_trait]
impl SearchLegs for SqliteStore {
    async fn page(
        &self,
        namespace: &str,
        request: &ListRequest,
        cursor: Option<Cursor>,
        offset: usize,
    ) -> Result<(Vec<MemoryItem>, Option<String>)> {
        self.list_page(namespace, request.clone(), cursor, offset)
            .await
    }

    async fn keyword_leg(
        &self,
        namespace: &str,
        _text: &str,
        terms: &[String],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<SearchHit>> {
        let (namespace, terms, filter) = (namespace.to_owned(), terms.to_vec(), filter.clone());
        let cache = self.index.clone();
        self.read("search", move |conn| {
            let mut rows = HashMap::new();
            let ranked = rank_keyword(
                &cache,
                conn,
                &namespace,
                &terms,
                &filter,
                k,
                Some(&mut rows),
            )?;
            hits_of(conn, &namespace, ranked, RankedBy::Keyword, rows)
        })
        .await
    }

    async fn vector_leg(
        &self,
        namespace: &str,
        vector: &[f32],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<SearchHit>> {
        let (namespace, vector, filter) = (namespace.to_owned(), vector.to_vec(), filter.clone());
        let cache = self.index.clone();
        self.read("search", move |conn| {
            let mut rows = HashMap::new();
            let ranked = rank_vector(
                &cache,
                conn,
                &namespace,
                &vector,
                &filter,
                k,
                Some(&mut rows),
            )?;
            hits_of(conn, &namespace, ranked, RankedBy::Vector, rows)
        })
        .await
    }

    async fn keyword_ranked(
        &self,
        namespace: &str,
        _text: &str,
        terms: &[String],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<Ranked>> {
        let (namespace, terms, filter) = (namespace.to_owned(), terms.to_vec(), filter.clone());
        let cache = self.index.clone();
        self.read("search", move |conn| {
            rank_keyword(&cache, conn, &namespace, &terms, &filter, k, None).map(without_items)
        })
        .await
    }

    async fn vector_ranked(
        &self,
        namespace: &str,
        vector: &[f32],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<Ranked>> {
        let (namespace, vector, filter) = (namespace.to_owned(), vector.to_vec(), filter.clone());
        let cache = self.index.clone();
        self.read("search", move |conn| {
            rank_vector(&cache, conn, &namespace, &vector, &filter, k, None).map(without_items)
        })
        .await
    }

    async fn items_by_id(
        &self,
        namespace: &str,
        ids: &[String],
    ) -> Result<HashMap<String, MemoryItem>> {
        let namespace = namespace.to_owned();
        let ids = ids.to_vec();
        self.read("search", move |conn| {
            rows_by_id(conn, ById::Hits(&namespace), &ids)
        })
        .await
    }
}

/// A ranking for hybrid search's pool: rows are read only for the page it returns.
pub(crate) fn without_items(ranked: Vec<(f32, String)>) -> Vec<Ranked> {
    ranked
        .into_iter()
        .map(|(score, id)| Ranked {
            score,
            id,
            item: None,
        })
        .collect()
}

/// The keyword leg's (score, id) ranking, through the in-process BM25 index.
pub(crate) fn rank_keyword(
    cache: &index::SearchIndex,
    conn: &Connection,
    namespace: &str,
    terms: &[String],
    filter: &Filter,
    k: usize,
    rows: Option<&mut HashMap<String, MemoryItem>>,
) -> Result<Vec<(f32, String)>> {
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let seen = index::generation(conn)?;
    cache.keyword(conn, seen, namespace, terms, filter, k, rows)
}

/// The vector leg's (score, id) ranking, through the in-process vector set.
pub(crate) fn rank_vector(
    cache: &index::SearchIndex,
    conn: &Connection,
    namespace: &str,
    vector: &[f32],
    filter: &Filter,
    k: usize,
    rows: Option<&mut HashMap<String, MemoryItem>>,
) -> Result<Vec<(f32, String)>> {
    let Some(pin) = schema::load_pin(conn)? else {
        return Ok(Vec::new());
    };
    check_query_dim(&pin, vector)?;
    let seen = index::generation(conn)?;
    cache.search(conn, seen, namespace, vector, filter, k, rows)
}

/// Hits for ranked (score, id) pairs, in their order, reading each row once: the rows in
/// `read` (whole rows the ranking read already, in the same read) are not read again.
pub(crate) fn hits_of(
    conn: &Connection,
    namespace: &str,
    ranked: Vec<(f32, String)>,
    by: RankedBy,
    read: HashMap<String, MemoryItem>,
) -> Result<Vec<SearchHit>> {
    let mut items = read;
    let ids: Vec<String> = ranked
        .iter()
        .filter(|(_, id)| !items.contains_key(id))
        .map(|(_, id)| id.clone())
        .collect();
    if !ids.is_empty() {
        items.extend(rows_by_id(conn, ById::Hits(namespace), &ids)?);
    }
    Ok(ranked
        .into_iter()
        .filter_map(|(score, id)| Some(leg_hit(items.remove(&id)?, score, by)))
        .collect())
}

impl SqliteStore {
    pub(crate) async fn list_page(
        &self,
        namespace: &str,
        request: ListRequest,
        cursor: Option<Cursor>,
        offset: usize,
    ) -> Result<(Vec<MemoryItem>, Option<String>)> {
        let namespace = namespace.to_owned();
        self.read("list", move |conn| {
            let mut q = Query::default();
            q.filter(&namespace, &request.filter, request.filter.effective_now());
            let key = sql::sort_expr(request.sort);
            let dir = match request.order {
                Order::Asc => "ASC",
                Order::Desc => "DESC",
            };
            if let Some(c) = &cursor {
                let v = match c.value {
                    memlayer_store::SortValue::Int(v) => q.bind(v),
                    memlayer_store::SortValue::Float(v) => q.bind(v),
                };
                let id = q.bind(c.id.clone());
                let cmp = if request.order == Order::Asc {
                    ">"
                } else {
                    "<"
                };
                q.and(format!("({key}, i.id) {cmp} ({v}, {id})"));
            }
            let limit = request.effective_limit();
            let lim = q.bind((limit + 1) as i64);
            let off = q.bind(offset as i64);
            let sql = format!(
                "{} {} ORDER BY {key} {dir}, i.id {dir} LIMIT {lim} OFFSET {off}",
                select_items(),
                q.where_sql()
            );
            let mut items = query_items(conn, &sql, &q)?;
            let next = if items.len() > limit {
                items.truncate(limit);
                items
                    .last()
                    .map(|last| Cursor::after(last, request.sort, request.order).encode())
            } else {
                None
            };
            Ok((items, next))
        })
        .await
    }
}

//! The search legs run by `memlayer_store::backend::search::run_search`, and how a vector
//! search is planned.

use async_trait::async_trait;
use memlayer_store::backend::search::{SearchLegs, leg_hit};
use memlayer_store::backend::sql::SqlDialect;
use memlayer_store::ranking::bm25::{B_LONG, B_SHORT, LONG_LEN, SHORT_LEN};
use memlayer_store::ranking::text;
use memlayer_store::types::MemoryItem;
use memlayer_store::{Cursor, Filter, ListRequest, RankedBy, Result, SearchHit};

use crate::client::PostgresStore;
use crate::config::{KeywordRanking, ef_search_at};
use crate::error;
use crate::error::map_pg;
use crate::schema;
use crate::sql::{ITEM_COLUMNS, Query, SCORE_COLUMN, read_item};

/// BM25's k1, as `Bm25Params::default()` has it.
const BM25_K1: f32 = 1.2;

/// `memlayer_store::ranking::bm25::length_normalisation` in SQL, over the namespace's average
/// length `avgdl`, so Postgres ranks as every other backend does.
fn length_normalisation_sql() -> String {
    format!(
        "({B_SHORT}::float8 + ({B_LONG}::float8 - {B_SHORT}::float8) \
         * LEAST(GREATEST((avgdl - {SHORT_LEN}) / ({LONG_LEN} - {SHORT_LEN}), 0), 1))"
    )
}

impl PostgresStore {
    /// How a vector search with the conditions of `q` (its filter, with no other parameters
    /// bound yet) runs: `None` ranks the passing items exactly, because the planner expects
    /// them to be fewer than [`PostgresConfig::exact_filter_rate`] of the namespace's items;
    /// `Some(ef)` walks the graph with that `ef_search`, the configured one or
    /// [`ef_search_at`] of the graph's size. The planner's row count (one `EXPLAIN`, planned
    /// with the filter's values), the namespace's item count (`namespace_stats`) and the
    /// table's row estimate (`pg_class.reltuples`, which a build, vacuum or analyse
    /// refreshes; never below the namespace's count) come in one round trip.
    pub(crate) async fn vector_plan(
        &self,
        c: &deadpool_postgres::Client,
        namespace: &str,
        q: &Query,
    ) -> Result<Option<u32>> {
        let rate = self.config.exact_filter_rate;
        if rate <= 0.0
            && let Some(ef) = self.config.ef_search
        {
            return Ok(Some(ef));
        }
        let s = self.s();
        let sizes = format!(
            "SELECT (SELECT items FROM {s}.namespace_stats WHERE namespace = $1),
                    (SELECT reltuples::float8 FROM pg_class WHERE oid = '{s}.items'::regclass)"
        );
        let ns: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&namespace];
        let (sizes, expected) = if rate > 0.0 {
            let explain = format!(
                "EXPLAIN (FORMAT JSON) SELECT 1 FROM {s}.items i {}",
                q.where_sql()
            );
            let (sizes, explain) =
                tokio::try_join!(c.prepare_cached(&sizes), c.prepare_cached(&explain))
                    .map_err(map_pg)?;
            let params = q.refs();
            let (sizes, plan) =
                tokio::try_join!(c.query_one(&sizes, &ns), c.query_one(&explain, &params))
                    .map_err(map_pg)?;
            let plan: serde_json::Value = plan.try_get(0).map_err(|e| error::corrupt("plan", e))?;
            let expected = plan
                .pointer("/0/Plan/Plan Rows")
                .and_then(serde_json::Value::as_f64);
            (sizes, expected)
        } else {
            let sizes = c.prepare_cached(&sizes).await.map_err(map_pg)?;
            (c.query_one(&sizes, &ns).await.map_err(map_pg)?, None)
        };
        let items: Option<i64> = sizes.try_get(0).map_err(|e| error::corrupt("items", e))?;
        let rows: Option<f64> = sizes
            .try_get(1)
            .map_err(|e| error::corrupt("reltuples", e))?;
        if let (Some(items), Some(expected)) = (items, expected)
            && expected < rate * items as f64
        {
            return Ok(None);
        }
        let graph = rows.unwrap_or(0.0).max(items.unwrap_or(0) as f64);
        Ok(Some(
            self.config.ef_search.unwrap_or_else(|| ef_search_at(graph)),
        ))
    }
}

#[async_trait]
impl SearchLegs for PostgresStore {
    async fn page(
        &self,
        namespace: &str,
        request: &ListRequest,
        cursor: Option<Cursor>,
        offset: usize,
    ) -> Result<(Vec<MemoryItem>, Option<String>)> {
        self.list_page(namespace, request, cursor, offset).await
    }

    async fn keyword_leg(
        &self,
        namespace: &str,
        text: &str,
        terms: &[String],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<SearchHit>> {
        let s = self.s();
        let mut q = Query::default();
        let sql = match self.config.keyword_ranking {
            KeywordRanking::Bm25 => {
                let t = q.bind(terms.to_vec());
                let ns_param = q.bind(namespace.to_owned());
                q.filter(namespace, filter, filter.effective_now());
                let lim = q.bind(k as i64);
                // The query terms' postings are read once, by the primary key, each with its
                // term's document frequency (a window over the same rows): reading them twice
                // was slower, and on a freshly loaded table the join was planned as a hash join
                // over every posting of the namespace (ADR 0010, "Postgres keyword query").
                // The scored ids are walked best first and each is looked up and filtered on
                // its own (LATERAL ... LIMIT 1), so the walk stops at the k-th passing item;
                // a join of every scored id was planned as a scan of the whole namespace.
                // The lookup is by the primary key behind a fence (OFFSET 0 keeps the filter
                // out of it): left to the planner, a filter on a user was served by the user's
                // index, which reads every item of the user for each scored id, whenever the
                // statistics did not know the user's share yet (a table freshly loaded, before
                // autovacuum analysed it; ADR 0010, "Postgres keyword query").
                format!(
                    "WITH st0 AS (SELECT COALESCE(max(items), 0)::float8 AS n,
                                   GREATEST(COALESCE(max(total_len)::float8 / NULLIF(max(items), 0), 1), 1) AS avgdl
                            FROM {s}.namespace_stats WHERE namespace = {ns_param}),
                     st AS (SELECT n, avgdl, {b} AS b FROM st0),
                     p AS MATERIALIZED (
                            SELECT p.item_id, p.tf, p.doc_len,
                                   count(*) OVER (PARTITION BY p.term)::float8 AS df
                            FROM {s}.postings p
                            WHERE p.namespace = {ns_param} AND p.term = ANY({t}::text[])),
                     sc AS MATERIALIZED (
                            SELECT p.item_id,
                                   SUM(ln(1 + (st.n - p.df + 0.5) / (p.df + 0.5)) * p.tf * {k1_plus_1}
                                       / (p.tf + {k1} * (1 - st.b + st.b * p.doc_len / st.avgdl))) AS score
                            FROM p CROSS JOIN st
                            GROUP BY p.item_id)
                     SELECT i.*, s.score::float8
                     FROM (SELECT item_id, score FROM sc ORDER BY score DESC, item_id COLLATE \"C\" ASC) s
                     CROSS JOIN LATERAL (SELECT {ITEM_COLUMNS}
                                         FROM (SELECT * FROM {s}.items
                                               WHERE namespace = {ns_param} AND id = s.item_id
                                               OFFSET 0) i
                                         {} LIMIT 1) i
                     ORDER BY s.score DESC, s.item_id COLLATE \"C\" ASC LIMIT {lim}",
                    q.where_sql(),
                    b = length_normalisation_sql(),
                    k1 = BM25_K1,
                    k1_plus_1 = BM25_K1 + 1.0,
                )
            }
            KeywordRanking::TsRankCd => {
                let words = text::query_words(text);
                if words.is_empty() {
                    return Ok(Vec::new());
                }
                // Words are letters and digits only, so they carry no tsquery syntax.
                let tq = q.bind(words.join(" | "));
                q.filter(namespace, filter, filter.effective_now());
                q.and(format!("i.tsv @@ to_tsquery('english', {tq})"));
                let lim = q.bind(k as i64);
                format!(
                    "SELECT {ITEM_COLUMNS}, ts_rank_cd(i.tsv, to_tsquery('english', {tq}))::float8 AS score
                     FROM {s}.items i {} ORDER BY score DESC, i.id COLLATE \"C\" ASC LIMIT {lim}",
                    q.where_sql()
                )
            }
        };
        let client = self.client("search").await?;
        let stmt = client.prepare_cached(&sql).await.map_err(map_pg)?;
        let rows = client.query(&stmt, &q.refs()).await.map_err(map_pg)?;
        rows.iter()
            .map(|r| {
                let score: f64 = r
                    .try_get(SCORE_COLUMN)
                    .map_err(|e| error::corrupt("score", e))?;
                Ok(leg_hit(read_item(r)?, score as f32, RankedBy::Keyword))
            })
            .collect()
    }

    async fn vector_leg(
        &self,
        namespace: &str,
        vector: &[f32],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<SearchHit>> {
        let s = self.s();
        let client = self.client("search").await?;
        let Some(pin) = schema::load_pin(&**client, s).await? else {
            return Ok(Vec::new());
        };
        memlayer_store::limits::check_query_dim(&pin, vector)?;
        let mut q = Query::default();
        q.filter(namespace, filter, filter.effective_now());
        q.and("i.embedding IS NOT NULL".into());
        let plan = self.vector_plan(&client, namespace, &q).await?;
        let v = q.bind(pgvector::Vector::from(vector.to_vec()));
        let lim = q.bind(k as i64);
        let sql = if plan.is_none() {
            // `+ 0` keeps the planner off the HNSW index: the passing rows, found through
            // the filter's own indexes, are ranked exactly.
            format!(
                "SELECT {ITEM_COLUMNS}, (i.embedding <=> {v})::float8 AS d FROM {s}.items i {}
                 ORDER BY (i.embedding <=> {v}) + 0, i.id COLLATE \"C\" LIMIT {lim}",
                q.where_sql()
            )
        } else {
            // The inner query is the shape the HNSW index serves (ORDER BY distance LIMIT k,
            // with iterative scans for filters); the outer one breaks ties by id.
            format!(
                "SELECT * FROM (
                    SELECT {ITEM_COLUMNS}, (i.embedding <=> {v})::float8 AS d FROM {s}.items i {}
                    ORDER BY i.embedding <=> {v} LIMIT {lim}
                 ) s ORDER BY s.d ASC, s.id COLLATE \"C\" ASC",
                q.where_sql()
            )
        };
        let stmt = client.prepare_cached(&sql).await.map_err(map_pg)?;
        let params = q.refs();
        let rows = match plan {
            None => client.query(&stmt, &params).await,
            // The setting and the search are sent together (tokio-postgres pipelines requests
            // in the order they are polled), so setting it costs no round trip.
            Some(ef) => {
                let set = format!("SET hnsw.ef_search = {ef}");
                tokio::try_join!(client.batch_execute(&set), client.query(&stmt, &params))
                    .map(|(_, rows)| rows)
            }
        }
        .map_err(map_pg)?;
        let mut hits = rows
            .iter()
            .map(|r| {
                let d: f64 = r
                    .try_get(SCORE_COLUMN)
                    .map_err(|e| error::corrupt("distance", e))?;
                // pgvector gives NaN for a zero vector; its cosine is 0 by contract.
                let score = if d.is_nan() { 0.0 } else { (1.0 - d) as f32 };
                Ok(leg_hit(read_item(r)?, score, RankedBy::Vector))
            })
            .collect::<Result<Vec<_>>>()?;
        memlayer_store::ranking::fusion::sort_hits(&mut hits);
        Ok(hits)
    }
}

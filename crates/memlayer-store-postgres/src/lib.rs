#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod error;
mod schema;
mod sql;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use memlayer_store::lifecycle::{merge_upsert, reassign_conflict, reinforce_item};
use memlayer_store::limits::{self, check_namespace, check_pin};
use memlayer_store::ranking::text;
use memlayer_store::search::{SearchLegs, leg_hit, run_list, run_search};
use memlayer_store::types::{MemoryItem, Timestamp};
use memlayer_store::{
    Capabilities, ClearRequest, CountOptions, Cursor, EmbeddingPin, Error, ErrorKind, ExpiredItem,
    Filter, ListRequest, MemoryStore, Order, Page, RankedBy, Result, SearchHit, SearchRequest,
    SearchResults, SortValue,
};
use tokio_postgres::NoTls;

use error::{map_pg, map_pool};
use sql::{ITEM_COLUMNS, Query, SCORE_COLUMN, read_item};

const BACKEND: &str = "postgres";

/// How keyword search ranks.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum KeywordRanking {
    /// BM25 (k1 1.2, b 0.75, Lucene IDF) computed in SQL from memlayer's term statistics,
    /// with the same analyzer as the other backends.
    #[default]
    Bm25,
    /// Postgres' `ts_rank_cd` over the generated `english` tsvector.
    TsRankCd,
}

/// How to connect to Postgres.
#[derive(Clone)]
#[non_exhaustive]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database`.
    pub url: String,
    /// The schema holding memlayer's tables (`[a-z_][a-z0-9_]*`).
    pub schema: String,
    /// Pooled connections.
    pub pool_size: usize,
    /// How long a call waits for a pooled connection.
    pub wait_timeout: Duration,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// HNSW `m`.
    pub hnsw_m: u32,
    /// HNSW `ef_construction`.
    pub hnsw_ef_construction: u32,
    /// HNSW `ef_search` for queries. `None` (the default) picks it by the graph's size,
    /// [`ef_search_at`]: 100 up to 100k vectors, 200 from 1M. `cargo xtask bench --sizes
    /// 10000,100000 --backend postgres --modes vector` (the `vector_ef_search_*` rows) gave
    /// recall@10 0.9938 and 1.0 at 100 (p50 1.60 and 1.69 ms), 1.0 and 1.0 at 200 (2.72 and
    /// 4.09 ms); on 1M bulk-loaded vectors builds of the graph gave 0.900 and 0.9031 at 100,
    /// 0.9938 and 0.9656 at 200. pgvector's own default is 40.
    pub ef_search: Option<u32>,
    /// A vector search whose filter the planner expects to pass fewer than this share of
    /// the namespace's items ranks those items exactly instead of walking the HNSW graph,
    /// which finds the few passing neighbours poorly (as the in-process backends do below a
    /// 2% pass rate). `0.0` always walks the graph.
    pub exact_filter_rate: f64,
    /// Keyword ranking.
    pub keyword_ranking: KeywordRanking,
    /// If set, opening a store pinned to another model or dimension fails fast.
    pub expected_pin: Option<EmbeddingPin>,
    /// `maintenance_work_mem` in MB for [`PostgresStore::build_vector_index`]; `None` keeps
    /// the server's setting. pgvector builds fastest when the graph fits (about 2 GB for 1M
    /// vectors of 384 dimensions).
    pub index_build_memory_mb: Option<u32>,
}

/// The URL's credentials never reach a log through `{:?}`.
impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &memlayer_store::redact_url(&self.url))
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl PostgresConfig {
    /// Defaults for `url`: schema `memlayer`, 16 connections, HNSW m 16 / ef_construction 64,
    /// `ef_search` by the graph's size, BM25 keyword ranking.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresConfig {
            url: url.into(),
            schema: "memlayer".into(),
            pool_size: 16,
            wait_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            hnsw_m: 16,
            hnsw_ef_construction: 64,
            ef_search: None,
            exact_filter_rate: 0.02,
            keyword_ranking: KeywordRanking::Bm25,
            expected_pin: None,
            index_build_memory_mb: None,
        }
    }

    /// Sets `maintenance_work_mem` (MB) for building the vector index.
    pub fn index_build_memory_mb(mut self, mb: u32) -> Self {
        self.index_build_memory_mb = Some(mb.max(1));
        self
    }

    /// Sets the schema.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// Sets the pool size.
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(1);
        self
    }

    /// Sets the HNSW graph's `m` and `ef_construction`: they take effect when the vector
    /// index is created (the first pin of a schema, or [`PostgresStore::build_vector_index`]).
    pub fn hnsw(mut self, m: u32, ef_construction: u32) -> Self {
        self.hnsw_m = m.max(2);
        self.hnsw_ef_construction = ef_construction.max(1);
        self
    }

    /// Fixes `ef_search` at every graph size.
    pub fn ef_search(mut self, ef: u32) -> Self {
        self.ef_search = Some(ef);
        self
    }

    /// Sets [`PostgresConfig::exact_filter_rate`] (clamped to 0..=1).
    pub fn exact_filter_rate(mut self, rate: f64) -> Self {
        self.exact_filter_rate = if rate.is_finite() {
            rate.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// Sets the keyword ranking.
    pub fn keyword_ranking(mut self, r: KeywordRanking) -> Self {
        self.keyword_ranking = r;
        self
    }

    /// Requires this embedding pin (or none yet) when opening.
    pub fn expect_pin(mut self, model: impl Into<String>, dim: usize) -> Self {
        self.expected_pin = Some(EmbeddingPin {
            model: model.into(),
            dim,
        });
        self
    }
}

/// A memory store in a Postgres schema.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    /// The connection settings of the pool's connections, for one outside it.
    pg: Arc<tokio_postgres::Config>,
    config: Arc<PostgresConfig>,
    closed: Arc<AtomicBool>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.config.schema)
            .field("pool", &self.pool.status())
            .finish()
    }
}

fn tag(e: Error, operation: &'static str) -> Error {
    e.with_backend(BACKEND).with_operation(operation)
}

/// Term frequencies and length of a text under memlayer's analyzer.
fn postings_of(content: &str) -> (Vec<String>, Vec<i32>, i32) {
    let mut tf: HashMap<String, i32> = HashMap::new();
    let mut len = 0i32;
    for t in text::terms(content) {
        *tf.entry(t).or_default() += 1;
        len = len.saturating_add(1);
    }
    let (terms, counts) = tf.into_iter().unzip();
    (terms, counts, len)
}

/// The default `ef_search` for an HNSW graph of `vectors` vectors: 100 up to 100,000, 200
/// from 1,000,000, and log-linear between (148 at 300,000), as the in-process backends widen
/// their graph search with the set's size (`AnnConfig::expansion_at`).
pub fn ef_search_at(vectors: f64) -> u32 {
    const SMALL: f64 = 100_000.0;
    if vectors.is_nan() || vectors <= SMALL {
        return 100;
    }
    let t = (vectors / SMALL).log10().min(1.0);
    (100.0 + 100.0 * t).round() as u32
}

/// pgvector's limits on the HNSW settings, checked before they reach the server.
fn check_hnsw(config: &PostgresConfig) -> Result<()> {
    let bad = |msg: String| Err(Error::new(ErrorKind::ConfigInvalid, msg));
    let (m, efc) = (config.hnsw_m, config.hnsw_ef_construction);
    if !(2..=100).contains(&m) {
        return bad(format!("hnsw_m is {m}; pgvector takes 2 to 100"));
    }
    if !(4..=1000).contains(&efc) || efc < 2 * m {
        return bad(format!(
            "hnsw_ef_construction is {efc}; pgvector takes 4 to 1000 and at least twice hnsw_m ({m})"
        ));
    }
    if let Some(ef) = config.ef_search
        && !(1..=1000).contains(&ef)
    {
        return bad(format!("ef_search is {ef}; pgvector takes 1 to 1000"));
    }
    Ok(())
}

impl PostgresStore {
    /// Connects to `url` with the default configuration.
    ///
    /// # Errors
    /// `ConfigInvalid` for a bad URL, `Unavailable` when the server cannot be reached.
    pub async fn connect(url: &str) -> Result<Self> {
        PostgresStore::connect_with(PostgresConfig::new(url)).await
    }

    /// Connects with a full configuration and brings the schema up to date.
    ///
    /// # Errors
    /// As [`PostgresStore::connect`], and `ConfigInvalid` for a bad schema name or a pin other
    /// than `expected_pin`.
    pub async fn connect_with(config: PostgresConfig) -> Result<Self> {
        schema::check_schema_name(&config.schema).map_err(|e| tag(e, "connect"))?;
        check_hnsw(&config).map_err(|e| tag(e, "connect"))?;
        let mut pg: tokio_postgres::Config = config.url.parse().map_err(|e| {
            tag(
                Error::new(ErrorKind::ConfigInvalid, format!("bad Postgres URL: {e}")),
                "connect",
            )
        })?;
        pg.connect_timeout(config.connect_timeout);
        // Iterative index scans for every pooled connection, so that a filtered vector query
        // keeps scanning until it has its limit. `ef_search` is set with each graph search.
        pg.options("-c hnsw.iterative_scan=strict_order");
        pg.application_name("memlayer");
        let mc = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = Manager::from_config(pg.clone(), NoTls, mc);
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .wait_timeout(Some(config.wait_timeout))
            .create_timeout(Some(config.connect_timeout))
            .recycle_timeout(Some(config.connect_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| {
                tag(
                    Error::new(
                        ErrorKind::ConfigInvalid,
                        format!("cannot build the pool: {e}"),
                    ),
                    "connect",
                )
            })?;
        {
            // Migrations run on a dedicated connection so that the pool only ever holds
            // connections opened after the schema exists.
            let (mut client, conn) = pg
                .connect(NoTls)
                .await
                .map_err(|e| tag(map_pg(e), "connect"))?;
            let task = tokio::spawn(conn);
            let result = schema::migrate(&mut client, &config.schema).await;
            let pin = match result {
                Ok(()) => schema::load_pin(&client, &config.schema).await,
                Err(e) => Err(e),
            };
            if let Ok(Some(_)) = &pin
                && !schema::vector_index_exists(&client, &config.schema)
                    .await
                    .map_err(|e| tag(e, "connect"))?
            {
                tracing::warn!(
                    schema = %config.schema,
                    "the vector index is missing (a bulk load did not finish?): vector search \
                     scans every row until build_vector_index is called"
                );
            }
            drop(client);
            let _ = task.await;
            let pin = pin.map_err(|e| tag(e, "connect"))?;
            if let (Some(want), Some(have)) = (&config.expected_pin, pin)
                && *want != have
            {
                {
                    return Err(tag(
                        Error::new(
                            ErrorKind::ConfigInvalid,
                            format!(
                                "the store is pinned to model {:?} with dimension {}, but {:?} with dimension {} was expected",
                                have.model, have.dim, want.model, want.dim
                            ),
                        ),
                        "connect",
                    ));
                }
            }
        }
        Ok(PostgresStore {
            pool,
            pg: Arc::new(pg),
            config: Arc::new(config),
            closed: Arc::new(AtomicBool::new(false)),
        })
    }

    fn s(&self) -> &str {
        &self.config.schema
    }

    /// How a vector search with the conditions of `q` (its filter, with no other parameters
    /// bound yet) runs: `None` ranks the passing items exactly, because the planner expects
    /// them to be fewer than [`PostgresConfig::exact_filter_rate`] of the namespace's items;
    /// `Some(ef)` walks the graph with that `ef_search`, the configured one or
    /// [`ef_search_at`] of the graph's size. The planner's row count (one `EXPLAIN`, planned
    /// with the filter's values), the namespace's item count (`namespace_stats`) and the
    /// table's row estimate (`pg_class.reltuples`, which a build, vacuum or analyse
    /// refreshes; never below the namespace's count) come in one round trip.
    async fn vector_plan(
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

    /// The configuration the store was opened with.
    pub fn config(&self) -> &PostgresConfig {
        &self.config
    }

    /// Drops the store's schema and everything in it; the store is closed. For tests and
    /// benchmarks that make a schema of their own.
    ///
    /// # Errors
    /// `Unavailable` when the server cannot be reached.
    pub async fn destroy(self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        self.pool.close();
        // A connection of its own: the pool may have been closed already.
        let (client, conn) = self
            .pg
            .connect(NoTls)
            .await
            .map_err(|e| tag(map_pg(e), "destroy"))?;
        let task = tokio::spawn(conn);
        let dropped = client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.s()))
            .await;
        drop(client);
        let _ = task.await;
        dropped.map_err(|e| tag(map_pg(e), "destroy"))
    }

    /// Drops the HNSW index, for a bulk load: pgvector builds an index over rows already
    /// loaded many times faster than it inserts them one by one (about 3 ms per 384-d vector
    /// here). Until [`PostgresStore::build_vector_index`] runs, vector search is exact and
    /// scans every vector of the namespace; nothing stored changes. Every store on this
    /// schema is affected, so run bulk loads when its vector searches can wait.
    ///
    /// # Errors
    /// `Unavailable` when the server cannot be reached.
    pub async fn suspend_vector_index(&self) -> Result<()> {
        let client = self.client("suspend_vector_index").await?;
        client
            .batch_execute(&format!(
                "DROP INDEX IF EXISTS {}.{}",
                self.s(),
                schema::VECTOR_INDEX
            ))
            .await
            .map_err(|e| tag(map_pg(e), "suspend_vector_index"))
    }

    /// Builds the HNSW index over the stored vectors if the store is pinned and the index is
    /// missing (after [`PostgresStore::suspend_vector_index`]); returns whether it built one.
    /// Writes wait while it builds (`CREATE INDEX`); progress is in Postgres'
    /// `pg_stat_progress_create_index`. The table is analysed afterwards, so the planner's
    /// estimates (which vector search reads) cover the loaded rows.
    ///
    /// # Errors
    /// `Unavailable` when the server cannot be reached.
    pub async fn build_vector_index(&self) -> Result<bool> {
        let op = "build_vector_index";
        let mut client = self.client(op).await?;
        let tx = client.transaction().await.map_err(|e| tag(map_pg(e), op))?;
        if schema::load_pin(&*tx, self.s()).await?.is_none()
            || schema::vector_index_exists(&*tx, self.s()).await?
        {
            return Ok(false);
        }
        if let Some(mb) = self.config.index_build_memory_mb {
            // `SET LOCAL`: the pooled connection keeps its own setting after the commit.
            tx.batch_execute(&format!("SET LOCAL maintenance_work_mem = '{mb}MB'"))
                .await
                .map_err(|e| tag(map_pg(e), op))?;
        }
        tx.batch_execute(&schema::vector_index_ddl(
            self.s(),
            self.config.hnsw_m,
            self.config.hnsw_ef_construction,
        ))
        .await
        .map_err(|e| tag(map_pg(e), op))?;
        tx.commit().await.map_err(|e| tag(map_pg(e), op))?;
        // Fresh statistics for the planner after a load (vector search reads its estimates
        // to choose between the graph and an exact ranking), without waiting for autovacuum.
        client
            .batch_execute(&format!("ANALYZE {}.items", self.s()))
            .await
            .map_err(|e| tag(map_pg(e), op))?;
        Ok(true)
    }

    /// How far a running build of this store's vector index is, as (done, total) tuples of
    /// its current phase, from `pg_stat_progress_create_index`; `None` when none is running.
    ///
    /// # Errors
    /// `Unavailable` when the server cannot be reached.
    pub async fn vector_index_build_progress(&self) -> Result<Option<(i64, i64)>> {
        let op = "vector_index_build_progress";
        let client = self.client(op).await?;
        let row = client
            .query_opt(
                "SELECT tuples_done, tuples_total FROM pg_stat_progress_create_index \
                 WHERE index_relid = to_regclass($1) OR relid = to_regclass($2)",
                &[
                    &format!("{}.{}", self.s(), schema::VECTOR_INDEX),
                    &format!("{}.items", self.s()),
                ],
            )
            .await
            .map_err(|e| tag(map_pg(e), op))?;
        Ok(row.map(|r| (r.get(0), r.get(1))))
    }

    async fn client(&self, op: &'static str) -> Result<deadpool_postgres::Object> {
        if self.closed.load(Ordering::Acquire) {
            return Err(tag(
                Error::new(ErrorKind::Unavailable, "the store is closed").set_temporary(false),
                op,
            ));
        }
        self.pool.get().await.map_err(|e| tag(map_pool(e), op))
    }

    async fn query_items(&self, op: &'static str, sql: &str, q: &Query) -> Result<Vec<MemoryItem>> {
        let client = self.client(op).await?;
        let stmt = client
            .prepare_cached(sql)
            .await
            .map_err(|e| tag(map_pg(e), op))?;
        let rows = client
            .query(&stmt, &q.refs())
            .await
            .map_err(|e| tag(map_pg(e), op))?;
        rows.iter()
            .map(read_item)
            .collect::<Result<Vec<_>>>()
            .map_err(|e| tag(e, op))
    }

    async fn live_item<C: tokio_postgres::GenericClient>(
        &self,
        c: &C,
        namespace: &str,
        id: &str,
        for_update: bool,
    ) -> Result<Option<MemoryItem>> {
        let lock = if for_update { "FOR UPDATE" } else { "" };
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM {}.items i WHERE i.id = $1 AND i.namespace = $2 AND NOT i.deleted {lock}",
            self.s()
        );
        let row = c
            .query_opt(&sql, &[&id, &namespace])
            .await
            .map_err(map_pg)?;
        row.as_ref().map(read_item).transpose()
    }

    async fn list_page(
        &self,
        namespace: &str,
        request: &ListRequest,
        cursor: Option<Cursor>,
        offset: usize,
    ) -> Result<(Vec<MemoryItem>, Option<String>)> {
        let mut q = Query::default();
        q.filter(namespace, &request.filter, request.filter.effective_now());
        let key = sql::sort_expr(request.sort);
        let dir = match request.order {
            Order::Asc => "ASC",
            Order::Desc => "DESC",
        };
        if let Some(c) = &cursor {
            let v = match c.value {
                SortValue::Int(v) => format!("{}::bigint", q.bind(v)),
                SortValue::Float(v) => format!("{}::float8", q.bind(v)),
            };
            let id = q.bind(c.id.clone());
            let cmp = if request.order == Order::Asc {
                ">"
            } else {
                "<"
            };
            q.and(format!(
                "({key}, i.id COLLATE \"C\") {cmp} ({v}, {id}::text COLLATE \"C\")"
            ));
        }
        let limit = request.effective_limit();
        let lim = q.bind((limit + 1) as i64);
        let off = q.bind(offset as i64);
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM {}.items i {} ORDER BY {key} {dir}, i.id COLLATE \"C\" {dir} LIMIT {lim} OFFSET {off}",
            self.s(),
            q.where_sql()
        );
        let mut items = self.query_items("list", &sql, &q).await?;
        let next = if items.len() > limit {
            items.truncate(limit);
            items
                .last()
                .map(|last| Cursor::after(last, request.sort, request.order).encode())
        } else {
            None
        };
        Ok((items, next))
    }

    async fn upsert_in(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        items: Vec<MemoryItem>,
    ) -> Result<Vec<MemoryItem>> {
        let s = self.s();
        let now = Timestamp::now();
        let mut pin = schema::load_pin(tx, s).await?;
        for e in items.iter().filter_map(|i| i.embedding.as_ref()) {
            if let Some(p) = &pin {
                check_pin(p, &e.model, e.dim())?;
                continue;
            }
            // Serialise concurrent first pins, then look again.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                &[&format!("{s}.pin")],
            )
            .await
            .map_err(map_pg)?;
            pin = schema::load_pin(tx, s).await?;
            match &pin {
                Some(p) => check_pin(p, &e.model, e.dim())?,
                None => {
                    let new_pin = EmbeddingPin {
                        model: e.model.clone(),
                        dim: e.dim(),
                    };
                    schema::create_pin(
                        tx,
                        s,
                        &new_pin,
                        self.config.hnsw_m,
                        self.config.hnsw_ef_construction,
                    )
                    .await?;
                    pin = Some(new_pin);
                }
            }
        }
        // Defaults (tier TTL, version 1) as for a fresh insert; the statement applies the rules
        // for an existing row atomically.
        let fresh = items
            .into_iter()
            .map(|item| merge_upsert(None, item, now))
            .collect::<Result<Vec<_>>>()?;
        // One statement per run of distinct (namespace, id) keys (Postgres cannot update a
        // row twice in one statement), in the batch's order, so a repeated key's later item
        // wins.
        let mut out = Vec::with_capacity(fresh.len());
        let mut run: Vec<MemoryItem> = Vec::new();
        let mut keys = HashSet::new();
        for item in fresh {
            let key = (item.namespace.clone(), item.id.clone());
            if !keys.insert(key.clone()) {
                out.extend(self.upsert_run(tx, std::mem::take(&mut run)).await?);
                keys.clear();
                keys.insert(key);
            }
            run.push(item);
        }
        out.extend(self.upsert_run(tx, run).await?);
        Ok(out)
    }

    /// Upserts items of distinct ids in one statement, then rewrites their postings in two.
    async fn upsert_run(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        run: Vec<MemoryItem>,
    ) -> Result<Vec<MemoryItem>> {
        if run.is_empty() {
            return Ok(Vec::new());
        }
        let s = self.s();
        let text = |f: &dyn Fn(&MemoryItem) -> String| run.iter().map(f).collect::<Vec<_>>();
        let opt_text =
            |f: &dyn Fn(&MemoryItem) -> Option<String>| run.iter().map(f).collect::<Vec<_>>();
        let opt_ms = |f: &dyn Fn(&MemoryItem) -> Option<Timestamp>| {
            run.iter()
                .map(|i| f(i).map(Timestamp::as_millis))
                .collect::<Vec<_>>()
        };
        let ids = text(&|i| i.id.clone());
        let postings: Vec<(Vec<String>, Vec<i32>, i32)> =
            run.iter().map(|i| postings_of(&i.content)).collect();
        let doc_lens: Vec<i32> = postings.iter().map(|p| p.2).collect();
        let tool_calls: Vec<serde_json::Value> = run
            .iter()
            .map(|i| serde_json::Value::Array(i.tool_calls.clone()))
            .collect();
        let extra: Vec<serde_json::Value> = run
            .iter()
            .map(|i| serde_json::Value::Object(i.metadata.extra.clone()))
            .collect();
        let tags: Vec<serde_json::Value> = run
            .iter()
            .map(|i| serde_json::Value::from(i.tags.iter().cloned().collect::<Vec<String>>()))
            .collect();
        let is_error: Vec<Option<bool>> = run.iter().map(|i| i.is_error).collect();
        let importance: Vec<f32> = run.iter().map(|i| i.importance).collect();
        let confidence: Vec<f32> = run.iter().map(|i| i.confidence).collect();
        let access: Vec<i64> = run
            .iter()
            .map(|i| i64::try_from(i.access_count).unwrap_or(i64::MAX))
            .collect();
        let created: Vec<i64> = run.iter().map(|i| i.created_at.as_millis()).collect();
        let updated: Vec<i64> = run.iter().map(|i| i.updated_at.as_millis()).collect();
        let vectors: Vec<Option<pgvector::Vector>> = run
            .iter()
            .map(|i| {
                i.embedding
                    .as_ref()
                    .map(|e| pgvector::Vector::from(e.vector.clone()))
            })
            .collect();
        let sql = format!(
            "INSERT INTO {s}.items AS i (id, namespace, kind, content, status, tool_calls, tool_call_id, tool_name, is_error,
                user_id, session_id, task_id, agent_id, extra, tags, tier, expires_at, importance, confidence,
                access_count, last_accessed_at, superseded_by, valid_from, valid_to, created_at, updated_at, version,
                deleted, embedding_model, embedding, doc_len)
             SELECT u.id, u.namespace, u.kind, u.content, u.status, u.tool_calls, u.tool_call_id, u.tool_name,
                u.is_error, u.user_id, u.session_id, u.task_id, u.agent_id, u.extra,
                ARRAY(SELECT jsonb_array_elements_text(u.tags)), u.tier, u.expires_at, u.importance, u.confidence,
                u.access_count, u.last_accessed_at, u.superseded_by, u.valid_from, u.valid_to, u.created_at,
                u.updated_at, 1, false, u.embedding_model, u.embedding, u.doc_len
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::text[],
                $8::text[], $9::bool[], $10::text[], $11::text[], $12::text[], $13::text[], $14::jsonb[],
                $15::jsonb[], $16::text[], $17::int8[], $18::float4[], $19::float4[], $20::int8[], $21::int8[],
                $22::text[], $23::int8[], $24::int8[], $25::int8[], $26::int8[], $27::text[],
                $28::public.vector[], $29::int4[])
                AS u(id, namespace, kind, content, status, tool_calls, tool_call_id, tool_name, is_error,
                user_id, session_id, task_id, agent_id, extra, tags, tier, expires_at, importance, confidence,
                access_count, last_accessed_at, superseded_by, valid_from, valid_to, created_at, updated_at,
                embedding_model, embedding, doc_len)
             ON CONFLICT (namespace, id) DO UPDATE SET
                kind = EXCLUDED.kind, content = EXCLUDED.content, status = EXCLUDED.status,
                tool_calls = EXCLUDED.tool_calls, tool_call_id = EXCLUDED.tool_call_id,
                tool_name = EXCLUDED.tool_name, is_error = EXCLUDED.is_error, user_id = EXCLUDED.user_id,
                session_id = EXCLUDED.session_id, task_id = EXCLUDED.task_id, agent_id = EXCLUDED.agent_id,
                extra = EXCLUDED.extra, tags = EXCLUDED.tags, tier = EXCLUDED.tier,
                expires_at = EXCLUDED.expires_at, importance = EXCLUDED.importance,
                confidence = EXCLUDED.confidence, superseded_by = EXCLUDED.superseded_by,
                valid_from = EXCLUDED.valid_from, valid_to = EXCLUDED.valid_to,
                updated_at = GREATEST(EXCLUDED.updated_at, i.updated_at + 1),
                version = i.version + 1, deleted = false,
                embedding_model = EXCLUDED.embedding_model, embedding = EXCLUDED.embedding,
                doc_len = EXCLUDED.doc_len
             WHERE i.deleted OR i.status = EXCLUDED.status OR i.status = 'draft'
                   OR (i.status = 'accepted' AND EXCLUDED.status = 'discard')
             RETURNING {ITEM_COLUMNS}"
        );
        let namespaces = text(&|i| i.namespace.clone());
        let rows = tx
            .query(
                &sql,
                &[
                    &ids,
                    &namespaces,
                    &text(&|i| i.kind.as_str().to_owned()),
                    &text(&|i| i.content.clone()),
                    &text(&|i| i.status.as_str().to_owned()),
                    &tool_calls,
                    &opt_text(&|i| i.tool_call_id.clone()),
                    &opt_text(&|i| i.tool_name.clone()),
                    &is_error,
                    &opt_text(&|i| i.metadata.user_id.clone()),
                    &opt_text(&|i| i.metadata.session_id.clone()),
                    &opt_text(&|i| i.metadata.task_id.clone()),
                    &opt_text(&|i| i.metadata.agent_id.clone()),
                    &extra,
                    &tags,
                    &text(&|i| i.tier.as_str().to_owned()),
                    &opt_ms(&|i| i.expires_at),
                    &importance,
                    &confidence,
                    &access,
                    &opt_ms(&|i| i.last_accessed_at),
                    &opt_text(&|i| i.superseded_by.clone()),
                    &opt_ms(&|i| i.valid_from),
                    &opt_ms(&|i| i.valid_to),
                    &created,
                    &updated,
                    &opt_text(&|i| i.embedding.as_ref().map(|e| e.model.clone())),
                    &vectors,
                    &doc_lens,
                ],
            )
            .await
            .map_err(map_pg)?;
        let mut stored: HashMap<(String, String), MemoryItem> = HashMap::with_capacity(rows.len());
        for row in &rows {
            let item = read_item(row)?;
            stored.insert((item.namespace.clone(), item.id.clone()), item);
        }
        let key = |i: &MemoryItem| (i.namespace.clone(), i.id.clone());
        if let Some(refused) = run.iter().find(|i| !stored.contains_key(&key(i))) {
            return Err(self.refusal(tx, refused).await);
        }
        // Postings: the run's old ones go, its new ones come in one statement.
        tx.execute(
            &format!(
                "DELETE FROM {s}.postings WHERE (namespace, item_id) IN
                 (SELECT * FROM unnest($1::text[], $2::text[]))"
            ),
            &[&namespaces, &ids],
        )
        .await
        .map_err(map_pg)?;
        let (mut p_ns, mut p_term, mut p_item, mut p_tf, mut p_len) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (item, (terms, tfs, len)) in run.iter().zip(postings) {
            for (term, tf) in terms.into_iter().zip(tfs) {
                p_ns.push(item.namespace.clone());
                p_item.push(item.id.clone());
                p_term.push(term);
                p_tf.push(tf);
                p_len.push(len);
            }
        }
        tx.execute(
            &format!(
                "INSERT INTO {s}.postings (namespace, term, item_id, tf, doc_len)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[], $5::int4[])"
            ),
            &[&p_ns, &p_term, &p_item, &p_tf, &p_len],
        )
        .await
        .map_err(map_pg)?;
        // In the batch's order.
        Ok(run.iter().filter_map(|i| stored.remove(&key(i))).collect())
    }

    /// Why the upsert guard refused `item`: the status move is illegal.
    async fn refusal(&self, tx: &tokio_postgres::Transaction<'_>, item: &MemoryItem) -> Error {
        let existing = match tx
            .query_opt(
                &format!(
                    "SELECT status FROM {}.items WHERE namespace = $1 AND id = $2",
                    self.s()
                ),
                &[&item.namespace, &item.id],
            )
            .await
        {
            Ok(row) => row,
            Err(e) => return map_pg(e),
        };
        match existing {
            Some(r) => Error::invalid(
                "status",
                format!(
                    "cannot move from {} to {}; legal moves are draft->accepted, draft->discard, accepted->discard",
                    r.try_get::<_, String>(0).unwrap_or_default(),
                    item.status.as_str()
                ),
            ),
            None => Error::new(
                ErrorKind::Conflict,
                "the row changed during the upsert; retry",
            )
            .set_temporary(true),
        }
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
                // term's document frequency (a window over the same rows). Reading them twice,
                // once for the frequencies and once joined to them, was 2-3x slower, and with
                // the statistics of a freshly loaded table the join was planned as a hash join
                // over every posting of the namespace (SciFact: 471,192 rows for a 16-term
                // query, 60 ms to 1 s a search).
                // The scored ids are walked best first and each is looked up and filtered on
                // its own (LATERAL ... LIMIT 1), so the walk stops at the k-th passing item;
                // a join of every scored id was planned as a scan of the whole namespace.
                // The lookup is by the primary key behind a fence (OFFSET 0 keeps the filter
                // out of it): left to the planner, a filter on a user was served by the user's
                // index, which reads every item of the user for each scored id, whenever the
                // statistics did not know the user's share yet (a table freshly loaded, before
                // autovacuum analysed it): 10.7 ms p50 at 10k under a 1% filter, 1.96 ms with
                // the fence (docs/benchmarks.md, "Postgres").
                format!(
                    "WITH st AS (SELECT COALESCE(max(items), 0)::float8 AS n,
                                   GREATEST(COALESCE(max(total_len)::float8 / NULLIF(max(items), 0), 1), 1) AS avgdl
                            FROM {s}.namespace_stats WHERE namespace = {ns_param}),
                     p AS MATERIALIZED (
                            SELECT p.item_id, p.tf, p.doc_len,
                                   count(*) OVER (PARTITION BY p.term)::float8 AS df
                            FROM {s}.postings p
                            WHERE p.namespace = {ns_param} AND p.term = ANY({t}::text[])),
                     sc AS MATERIALIZED (
                            SELECT p.item_id,
                                   SUM(ln(1 + (st.n - p.df + 0.5) / (p.df + 0.5)) * p.tf * 2.2
                                       / (p.tf + 1.2 * (0.25 + 0.75 * p.doc_len / st.avgdl))) AS score
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
                    q.where_sql()
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

#[async_trait]
impl MemoryStore for PostgresStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::full();
        caps.approximate_vectors = true;
        caps.native_keyword_ranking = self.config.keyword_ranking == KeywordRanking::TsRankCd;
        caps
    }

    async fn upsert_many(&self, items: Vec<MemoryItem>) -> Result<Vec<MemoryItem>> {
        limits::check_batch(&items).map_err(|e| tag(e, "upsert_many"))?;
        let mut client = self.client("upsert_many").await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| tag(map_pg(e), "upsert_many"))?;
        let out = self
            .upsert_in(&tx, items)
            .await
            .map_err(|e| tag(e, "upsert_many"))?;
        tx.commit()
            .await
            .map_err(|e| tag(map_pg(e), "upsert_many"))?;
        Ok(out)
    }

    async fn get(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        let client = self.client("get").await?;
        self.live_item(&**client, namespace, id, false)
            .await
            .map_err(|e| tag(e, "get"))?
            .ok_or_else(|| tag(Error::not_found(namespace, id), "get"))
    }

    async fn delete(&self, namespace: &str, id: &str) -> Result<()> {
        let client = self.client("delete").await?;
        let n = client
            .execute(
                &format!(
                    "DELETE FROM {}.items WHERE id = $1 AND namespace = $2",
                    self.s()
                ),
                &[&id, &namespace],
            )
            .await
            .map_err(|e| tag(map_pg(e), "delete"))?;
        if n == 0 {
            return Err(tag(Error::not_found(namespace, id), "delete"));
        }
        Ok(())
    }

    async fn clear(&self, namespace: &str, request: &ClearRequest) -> Result<u64> {
        limits::check_clear(namespace, request).map_err(|e| tag(e, "clear"))?;
        let mut filter = request.filter.clone();
        filter.include_deleted = false;
        let mut q = Query::default();
        q.filter(namespace, &filter, filter.effective_now());
        let now = q.bind(Timestamp::now().as_millis());
        let sql = format!(
            "UPDATE {s}.items SET deleted = true, updated_at = GREATEST({now}, updated_at + 1)
             WHERE (namespace, id) IN (SELECT i.namespace, i.id FROM {s}.items i {})",
            q.where_sql(),
            s = self.s()
        );
        let client = self.client("clear").await?;
        let n = client
            .execute(&sql, &q.refs())
            .await
            .map_err(|e| tag(map_pg(e), "clear"))?;
        Ok(n)
    }

    async fn count(&self, namespace: &str, options: CountOptions) -> Result<u64> {
        let client = self.client("count").await?;
        let deleted = if options.include_deleted {
            ""
        } else {
            "AND NOT deleted"
        };
        let row = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM {}.items WHERE namespace = $1 {deleted}",
                    self.s()
                ),
                &[&namespace],
            )
            .await
            .map_err(|e| tag(map_pg(e), "count"))?;
        Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
    }

    async fn search(&self, namespace: &str, request: &SearchRequest) -> Result<SearchResults> {
        run_search(self, namespace, request)
            .await
            .map_err(|e| tag(e, "search"))
    }

    async fn list(&self, namespace: &str, request: &ListRequest) -> Result<Page> {
        run_list(self, namespace, request)
            .await
            .map_err(|e| tag(e, "list"))
    }

    async fn supersede(&self, namespace: &str, id: &str, by: &str) -> Result<MemoryItem> {
        limits::check_supersede(id, by).map_err(|e| tag(e, "supersede"))?;
        let mut client = self.client("supersede").await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| tag(map_pg(e), "supersede"))?;
        // `by` is locked until the commit, so a concurrent delete cannot leave the item
        // superseded by a row that no longer exists (as SQLite's and Redis's writes ensure).
        if self
            .live_item(&*tx, namespace, by, true)
            .await
            .map_err(|e| tag(e, "supersede"))?
            .is_none()
        {
            return Err(tag(Error::not_found(namespace, by), "supersede"));
        }
        let now = Timestamp::now().as_millis();
        let row = tx
            .query_opt(
                &format!(
                    "UPDATE {}.items i SET superseded_by = $1, valid_to = $2, updated_at = GREATEST($2, i.updated_at + 1)
                     WHERE i.id = $3 AND i.namespace = $4 AND NOT i.deleted RETURNING {ITEM_COLUMNS}",
                    self.s()
                ),
                &[&by, &now, &id, &namespace],
            )
            .await
            .map_err(|e| tag(map_pg(e), "supersede"))?;
        let item = match row {
            Some(r) => read_item(&r).map_err(|e| tag(e, "supersede"))?,
            None => return Err(tag(Error::not_found(namespace, id), "supersede")),
        };
        tx.commit().await.map_err(|e| tag(map_pg(e), "supersede"))?;
        Ok(item)
    }

    async fn restore(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        let client = self.client("restore").await?;
        let now = Timestamp::now().as_millis();
        let row = client
            .query_opt(
                &format!(
                    "UPDATE {}.items i SET superseded_by = NULL, valid_to = NULL, updated_at = GREATEST($1, i.updated_at + 1)
                     WHERE i.id = $2 AND i.namespace = $3 AND NOT i.deleted RETURNING {ITEM_COLUMNS}",
                    self.s()
                ),
                &[&now, &id, &namespace],
            )
            .await
            .map_err(|e| tag(map_pg(e), "restore"))?;
        match row {
            Some(r) => read_item(&r).map_err(|e| tag(e, "restore")),
            None => Err(tag(Error::not_found(namespace, id), "restore")),
        }
    }

    async fn predecessors(&self, namespace: &str, id: &str) -> Result<Vec<MemoryItem>> {
        let mut q = Query::default();
        let a = q.bind(namespace.to_owned());
        let b = q.bind(id.to_owned());
        let sql = format!(
            "SELECT {ITEM_COLUMNS} FROM {}.items i WHERE i.namespace = {a} AND i.superseded_by = {b} AND NOT i.deleted
             ORDER BY i.created_at, i.id COLLATE \"C\"",
            self.s()
        );
        self.query_items("predecessors", &sql, &q).await
    }

    async fn reinforce(&self, namespace: &str, ids: &[String], at: Timestamp) -> Result<u64> {
        limits::check_ids("ids", ids).map_err(|e| tag(e, "reinforce"))?;
        let unique: HashSet<&String> = ids.iter().collect();
        let mut unique: Vec<&String> = unique.into_iter().collect();
        // A fixed lock order keeps concurrent reinforcements from deadlocking.
        unique.sort();
        let mut client = self.client("reinforce").await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| tag(map_pg(e), "reinforce"))?;
        let mut n = 0;
        for id in unique {
            let Some(mut item) = self
                .live_item(&*tx, namespace, id, true)
                .await
                .map_err(|e| tag(e, "reinforce"))?
            else {
                continue;
            };
            reinforce_item(&mut item, at);
            tx.execute(
                &format!(
                    "UPDATE {}.items SET access_count = $1, last_accessed_at = $2, expires_at = $3
                     WHERE namespace = $4 AND id = $5",
                    self.s()
                ),
                &[
                    &i64::try_from(item.access_count).unwrap_or(i64::MAX),
                    &at.as_millis(),
                    &item.expires_at.map(Timestamp::as_millis),
                    &namespace,
                    &item.id,
                ],
            )
            .await
            .map_err(|e| tag(map_pg(e), "reinforce"))?;
            n += 1;
        }
        tx.commit().await.map_err(|e| tag(map_pg(e), "reinforce"))?;
        Ok(n)
    }

    async fn decay(
        &self,
        namespace: &str,
        idle_before: Timestamp,
        factor: f32,
        floor: f32,
    ) -> Result<u64> {
        limits::check_decay(factor, floor).map_err(|e| tag(e, "decay"))?;
        let client = self.client("decay").await?;
        // One statement: each row is updated from its current scores (float4 arithmetic, as
        // in Rust), so a concurrent write is never lost.
        let n = client
            .execute(
                &format!(
                    "UPDATE {}.items SET \
                     importance = CASE WHEN importance > $3 THEN GREATEST($3, importance * $2) ELSE importance END, \
                     confidence = CASE WHEN confidence > $3 THEN GREATEST($3, confidence * $2) ELSE confidence END \
                     WHERE namespace = $1 AND NOT deleted \
                     AND COALESCE(last_accessed_at, created_at) < $4 \
                     AND (importance > $3 OR confidence > $3)",
                    self.s()
                ),
                &[&namespace, &factor, &floor, &idle_before.as_millis()],
            )
            .await
            .map_err(|e| tag(map_pg(e), "decay"))?;
        Ok(n)
    }

    async fn list_expired(&self, now: Timestamp, limit: usize) -> Result<Vec<ExpiredItem>> {
        let client = self.client("list_expired").await?;
        let rows = client
            .query(
                &format!(
                    "SELECT namespace, id, expires_at FROM {}.items
                     WHERE expires_at IS NOT NULL AND expires_at <= $1 ORDER BY expires_at, id COLLATE \"C\" LIMIT $2",
                    self.s()
                ),
                &[&now.as_millis(), &(limit as i64)],
            )
            .await
            .map_err(|e| tag(map_pg(e), "list_expired"))?;
        Ok(rows
            .iter()
            .map(|r| ExpiredItem {
                namespace: r.get(0),
                id: r.get(1),
                expires_at: Timestamp::from_millis(r.get(2)),
            })
            .collect())
    }

    async fn delete_if_expired_before(
        &self,
        namespace: &str,
        id: &str,
        cutoff: Timestamp,
    ) -> Result<()> {
        let client = self.client("delete_if_expired_before").await?;
        let n = client
            .execute(
                &format!(
                    "DELETE FROM {}.items WHERE id = $1 AND namespace = $2 AND expires_at IS NOT NULL AND expires_at <= $3",
                    self.s()
                ),
                &[&id, &namespace, &cutoff.as_millis()],
            )
            .await
            .map_err(|e| tag(map_pg(e), "delete_if_expired_before"))?;
        if n == 0 {
            return Err(tag(
                Error::not_found(namespace, id).with_context("cutoff", cutoff),
                "delete_if_expired_before",
            ));
        }
        Ok(())
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        let client = self.client("list_namespaces").await?;
        let rows = client
            .query(
                &format!(
                    "SELECT DISTINCT namespace FROM {}.items ORDER BY 1",
                    self.s()
                ),
                &[],
            )
            .await
            .map_err(|e| tag(map_pg(e), "list_namespaces"))?;
        let mut out: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        // Byte order, as every backend lists them.
        out.sort();
        Ok(out)
    }

    async fn delete_namespace(&self, namespace: &str) -> Result<u64> {
        let client = self.client("delete_namespace").await?;
        client
            .execute(
                &format!("DELETE FROM {}.items WHERE namespace = $1", self.s()),
                &[&namespace],
            )
            .await
            .map_err(|e| tag(map_pg(e), "delete_namespace"))
    }

    async fn reassign(&self, ids: &[String], from: &str, to: &str) -> Result<u64> {
        check_namespace(to).map_err(|e| tag(e, "reassign"))?;
        limits::check_ids("ids", ids).map_err(|e| tag(e, "reassign"))?;
        let ids: Vec<String> = ids
            .iter()
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut client = self.client("reassign").await?;
        let tx = client
            .transaction()
            .await
            .map_err(|e| tag(map_pg(e), "reassign"))?;
        if from != to {
            // All or nothing: an id the target already holds stops the move and is named (a
            // row written there concurrently still fails the statement on the primary key).
            let taken = tx
                .query_opt(
                    &format!(
                        "SELECT t.id FROM {s}.items t JOIN {s}.items f ON f.id = t.id
                         WHERE t.namespace = $1 AND f.namespace = $2 AND t.id = ANY($3::text[])
                         ORDER BY t.id COLLATE \"C\" LIMIT 1",
                        s = self.s()
                    ),
                    &[&to, &from, &ids],
                )
                .await
                .map_err(|e| tag(map_pg(e), "reassign"))?;
            if let Some(row) = taken {
                let id: String = row
                    .try_get(0)
                    .map_err(|e| tag(error::corrupt("id", e), "reassign"))?;
                return Err(tag(reassign_conflict(&id, to), "reassign"));
            }
        }
        // The postings follow their items through the foreign key's ON UPDATE CASCADE.
        let n = tx
            .execute(
                &format!(
                    "UPDATE {}.items SET namespace = $1 WHERE namespace = $2 AND id = ANY($3::text[])",
                    self.s()
                ),
                &[&to, &from, &ids],
            )
            .await
            .map_err(|e| tag(map_pg(e), "reassign"))?;
        tx.commit().await.map_err(|e| tag(map_pg(e), "reassign"))?;
        Ok(n)
    }

    async fn embedding_pin(&self) -> Result<Option<EmbeddingPin>> {
        let client = self.client("embedding_pin").await?;
        schema::load_pin(&**client, self.s())
            .await
            .map_err(|e| tag(e, "embedding_pin"))
    }

    async fn ping(&self) -> Result<()> {
        let client = self.client("ping").await?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| tag(map_pg(e), "ping"))?;
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        self.pool.close();
        Ok(())
    }
}

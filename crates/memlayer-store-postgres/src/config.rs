//! How to reach Postgres and how the store uses it: the schema, the pool, the HNSW
//! parameters and the keyword ranking.

use std::time::Duration;

use memlayer_store::{EmbeddingPin, Error, ErrorKind, Result};

/// How keyword search ranks.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum KeywordRanking {
    /// BM25 (k1 1.2, b by average length, Lucene IDF) computed in SQL from memlayer's term
    /// statistics, with the same analyzer as the other backends.
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
    /// [`ef_search_at`]: 100 up to 100k vectors, 200 from 1M, where 100 lost recall (ADR
    /// 0010, "Postgres `ef_search`"). pgvector's own default is 40.
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
    /// the server's setting. pgvector builds fastest when the graph fits in it (ADR 0010).
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
pub(crate) fn check_hnsw(config: &PostgresConfig) -> Result<()> {
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

//! How to reach Redis: the URL, the key prefix and the client's limits.

use std::time::Duration;

use memlayer_store::EmbeddingPin;

/// How to reach Redis.
#[derive(Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://host:port[/db]`.
    pub url: String,
    /// Prefix of every key and of the index name.
    pub prefix: String,
    /// Pooled connections.
    pub pool_size: usize,
    /// Per-command timeout; a command that waits longer (for example during a reconnect) fails
    /// with a temporary `Timeout`.
    pub command_timeout: Duration,
    /// HNSW `M`.
    pub hnsw_m: u32,
    /// HNSW `EF_CONSTRUCTION`.
    pub hnsw_ef_construction: u32,
    /// HNSW `EF_RUNTIME`.
    pub ef_runtime: u32,
    /// If set, opening a store pinned to another model or dimension fails fast.
    pub expected_pin: Option<EmbeddingPin>,
    /// Keyword ranking: `memlayer` (the default) scores RediSearch's candidates with memlayer's
    /// BM25 from per-namespace term statistics, exactly as the memory backend does; any other
    /// value is a RediSearch scorer name (`BM25STD`, `BM25`, `TFIDF`, ...).
    pub scorer: String,
}

/// The URL's credentials never reach a log through `{:?}`.
impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &memlayer_store::redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

impl RedisConfig {
    /// Defaults for `url`: prefix `memlayer:`, 8 connections, 5 s command timeout, HNSW M 16,
    /// EF_CONSTRUCTION 200, EF_RUNTIME 100.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            prefix: "memlayer:".into(),
            pool_size: 8,
            command_timeout: Duration::from_secs(5),
            hnsw_m: 16,
            hnsw_ef_construction: 200,
            ef_runtime: 100,
            expected_pin: None,
            scorer: "memlayer".into(),
        }
    }

    /// Sets the key prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the pool size.
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(1);
        self
    }
}

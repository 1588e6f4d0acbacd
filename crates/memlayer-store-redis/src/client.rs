//! The store's handle on Redis: connecting, the key and index names, the index schema, the
//! embedding pin and the raw `FT.SEARCH` calls every other module builds on.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fred::clients::Pool;
use fred::interfaces::{ClientLike, FredResult};
use fred::prelude::Builder;
use fred::types::Value;
use fred::types::config::{Config, ReconnectPolicy};
use memlayer_store::limits::check_pin;
use memlayer_store::{EmbeddingPin, Error, ErrorKind, Result};

use crate::codec::{Doc, cmd, parse_search, string_of, token};
use crate::config::RedisConfig;
use crate::error::{corrupt, map_redis};
use crate::scripts;

pub(crate) const BACKEND: &str = "redis";
pub(crate) const NONE: &str = "none";
pub(crate) const NO_ACCESS: f64 = -1e18;
pub(crate) const OPEN_END: f64 = 1e18;
/// Index fields for numeric metadata keys, at most, per store (see `may_add_numeric`).
pub(crate) const MAX_NUMERIC_FIELDS: usize = 64;

/// A memory store in Redis with RediSearch.
#[derive(Clone)]
pub struct RedisStore {
    pub(crate) pool: Pool,
    pub(crate) config: Arc<RedisConfig>,
    pub(crate) numeric_fields: Arc<Mutex<HashSet<String>>>,
    pub(crate) closed: Arc<AtomicBool>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.config.prefix)
            .finish()
    }
}

pub(crate) fn tag(e: Error, operation: &'static str) -> Error {
    e.with_backend(BACKEND).with_operation(operation)
}

impl RedisStore {
    /// Connects with the default configuration.
    ///
    /// # Errors
    /// `ConfigInvalid` for a bad URL, `Unavailable` when Redis (with RediSearch) is not there.
    pub async fn connect(url: &str) -> Result<Self> {
        RedisStore::connect_with(RedisConfig::new(url)).await
    }

    /// Connects and creates the index if it is missing.
    ///
    /// # Errors
    /// As [`RedisStore::connect`], and `ConfigInvalid` for a pin other than `expected_pin`.
    pub async fn connect_with(config: RedisConfig) -> Result<Self> {
        let c = Config::from_url(&config.url).map_err(|e| tag(map_redis(e), "connect"))?;
        let timeout = config.command_timeout;
        let pool = Builder::from_config(c)
            .with_connection_config(|cc| {
                cc.connection_timeout = Duration::from_secs(5);
            })
            .with_performance_config(|p| {
                p.default_command_timeout = timeout;
            })
            .set_policy(ReconnectPolicy::new_exponential(0, 50, 2000, 2))
            .build_pool(config.pool_size)
            .map_err(|e| tag(map_redis(e), "connect"))?;
        let init = tokio::time::timeout(Duration::from_secs(10), pool.init()).await;
        match init {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(tag(map_redis(e), "connect")),
            Err(_) => {
                return Err(tag(
                    Error::new(ErrorKind::Unavailable, "timed out connecting to Redis"),
                    "connect",
                ));
            }
        }
        let store = RedisStore {
            pool,
            config: Arc::new(config),
            numeric_fields: Arc::new(Mutex::new(HashSet::new())),
            closed: Arc::new(AtomicBool::new(false)),
        };
        store.ensure_index().await.map_err(|e| tag(e, "connect"))?;
        store.migrate_keys().await.map_err(|e| tag(e, "connect"))?;
        if let (Some(want), Some(have)) = (&store.config.expected_pin, store.load_pin().await?)
            && *want != have
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
        Ok(store)
    }

    /// The hash of an item: its identity is (namespace, id), so the key holds both, the
    /// namespace as a fixed-length digest so that no id can forge another namespace's key
    /// (decisions/0007).
    pub(crate) fn key(&self, namespace: &str, id: &str) -> String {
        format!("{}i:{}:{id}", self.config.prefix, token(namespace))
    }

    /// Renames the hashes of a store written before keys held the namespace (`i:{id}`) to
    /// their (namespace, id) keys, once; `meta.keys = ns` records that it is done. A rename
    /// never overwrites a key, and a key already in place is left alone, so two processes
    /// opening the same old store at once both finish with every item under its new key.
    pub(crate) async fn migrate_keys(&self) -> Result<()> {
        let done = self
            .call("HGET", vec![self.meta_key().into(), "keys".into()])
            .await?;
        if string_of(&done).as_deref() == Some("ns") {
            return Ok(());
        }
        let pattern = format!("{}i:*", self.config.prefix);
        let mut cursor = "0".to_owned();
        loop {
            let reply = self
                .call(
                    "SCAN",
                    vec![
                        cursor.clone().into(),
                        "MATCH".into(),
                        pattern.clone().into(),
                        "COUNT".into(),
                        "1000".into(),
                    ],
                )
                .await?
                .into_array();
            cursor = reply.first().and_then(string_of).unwrap_or_default();
            let keys = reply
                .into_iter()
                .nth(1)
                .map(Value::into_array)
                .unwrap_or_default();
            for key in keys.iter().filter_map(string_of) {
                let owner = self
                    .call(
                        "HMGET",
                        vec![key.clone().into(), "namespace".into(), "id".into()],
                    )
                    .await?
                    .into_array();
                let (Some(ns), Some(id)) = (
                    owner.first().and_then(string_of),
                    owner.get(1).and_then(string_of),
                ) else {
                    continue;
                };
                let target = self.key(&ns, &id);
                if target != key {
                    self.eval(scripts::MOVE_KEY, vec![key, target], Vec::new())
                        .await?;
                }
            }
            if cursor == "0" || cursor.is_empty() {
                break;
            }
        }
        self.call(
            "HSET",
            vec![self.meta_key().into(), "keys".into(), "ns".into()],
        )
        .await?;
        Ok(())
    }

    pub(crate) fn index(&self) -> String {
        format!("{}idx", self.config.prefix)
    }

    pub(crate) fn meta_key(&self) -> String {
        format!("{}meta", self.config.prefix)
    }

    pub(crate) fn counts_key(&self) -> String {
        format!("{}nscount", self.config.prefix)
    }

    pub(crate) fn lens_key(&self) -> String {
        format!("{}nslen", self.config.prefix)
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::Unavailable, "the store is closed")
                .with_backend(BACKEND)
                .set_temporary(false));
        }
        Ok(())
    }

    pub(crate) async fn call(&self, name: &'static str, args: Vec<Value>) -> Result<Value> {
        self.check_open()?;
        let r: FredResult<Value> = self.pool.custom(cmd(name), args).await;
        r.map_err(map_redis)
    }

    pub(crate) async fn eval(
        &self,
        script: &str,
        keys: Vec<String>,
        args: Vec<Value>,
    ) -> Result<Value> {
        let mut all: Vec<Value> = vec![Value::from(script), Value::from(keys.len() as i64)];
        all.extend(keys.into_iter().map(Value::from));
        all.extend(args);
        self.call("EVAL", all).await
    }

    pub(crate) async fn ensure_index(&self) -> Result<()> {
        let mut args: Vec<Value> = vec![
            self.index().into(),
            "ON".into(),
            "HASH".into(),
            "PREFIX".into(),
            "1".into(),
            format!("{}i:", self.config.prefix).into(),
            "SCHEMA".into(),
            "content".into(),
            "TEXT".into(),
        ];
        for t in [
            "t_ns",
            "t_id",
            "t_kind",
            "t_status",
            "t_user",
            "t_session",
            "t_task",
            "t_agent",
            "t_tags",
            "t_kv",
            "t_del",
            "t_sup",
            "t_vec",
            "t_zero",
            "t_terms",
            "t_supby",
        ] {
            args.extend([Value::from(t), "TAG".into()]);
        }
        for n in ["exp", "vfrom", "vto"] {
            args.extend([Value::from(n), "NUMERIC".into()]);
        }
        for n in ["cat", "uat", "acc", "cnt", "imp"] {
            args.extend([Value::from(n), "NUMERIC".into(), "SORTABLE".into()]);
        }
        match self.call("FT.CREATE", args).await {
            Ok(_) => {}
            Err(e) if e.to_string().contains("already exists") => {}
            Err(e) => return Err(e),
        }
        // Numeric metadata fields added by earlier writers.
        let meta = self.call("HGETALL", vec![self.meta_key().into()]).await?;
        let arr = meta.into_array();
        let mut known = self
            .numeric_fields
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for pair in arr.chunks(2) {
            if let Some(k) = pair.first().and_then(string_of)
                && let Some(f) = k.strip_prefix("num:")
            {
                known.insert(f.to_owned());
            }
        }
        Ok(())
    }

    pub(crate) async fn load_pin(&self) -> Result<Option<EmbeddingPin>> {
        let v = self
            .call(
                "HMGET",
                vec![self.meta_key().into(), "model".into(), "dim".into()],
            )
            .await?
            .into_array();
        match (v.first().and_then(string_of), v.get(1).and_then(string_of)) {
            (Some(model), Some(dim)) => Ok(Some(EmbeddingPin {
                model,
                dim: dim.parse().map_err(|e| corrupt("dim", e))?,
            })),
            _ => Ok(None),
        }
    }

    /// Pins (or checks) the model and dimension; the first pin adds the vector field.
    pub(crate) async fn pin(&self, model: &str, dim: usize) -> Result<()> {
        // Another writer may be pinning (FT.ALTER and its rescan); it is making progress, so
        // wait for it generously (30 s) rather than fail a write under load.
        for _ in 0..3000 {
            if let Some(p) = self.load_pin().await? {
                return check_pin(&p, model, dim);
            }
            let won = self
                .call(
                    "HSETNX",
                    vec![self.meta_key().into(), "model".into(), model.into()],
                )
                .await?
                .as_i64()
                == Some(1);
            if won {
                let alter = self
                    .call(
                        "FT.ALTER",
                        vec![
                            self.index().into(),
                            "SCHEMA".into(),
                            "ADD".into(),
                            "vec".into(),
                            "VECTOR".into(),
                            "HNSW".into(),
                            "10".into(),
                            "TYPE".into(),
                            "FLOAT32".into(),
                            "DIM".into(),
                            dim.to_string().into(),
                            "DISTANCE_METRIC".into(),
                            "COSINE".into(),
                            "M".into(),
                            self.config.hnsw_m.to_string().into(),
                            "EF_CONSTRUCTION".into(),
                            self.config.hnsw_ef_construction.to_string().into(),
                        ],
                    )
                    .await;
                if let Err(e) = alter
                    && !e.to_string().contains("Duplicate")
                {
                    let _ = self
                        .call("HDEL", vec![self.meta_key().into(), "model".into()])
                        .await;
                    return Err(e);
                }
                self.await_indexing().await?;
                self.call(
                    "HSET",
                    vec![self.meta_key().into(), "dim".into(), dim.to_string().into()],
                )
                .await?;
                return Ok(());
            }
            // Another writer is pinning right now.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(Error::new(
            ErrorKind::Conflict,
            "the embedding pin is being written; retry",
        )
        .set_temporary(true))
    }

    pub(crate) async fn ensure_numeric_field(&self, field: &str, key: &str) -> Result<()> {
        if self
            .numeric_fields
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(field)
        {
            return Ok(());
        }
        let r = self
            .call(
                "FT.ALTER",
                vec![
                    self.index().into(),
                    "SCHEMA".into(),
                    "ADD".into(),
                    field.into(),
                    "NUMERIC".into(),
                ],
            )
            .await;
        if let Err(e) = r
            && !e.to_string().contains("Duplicate")
        {
            return Err(e);
        }
        self.await_indexing().await?;
        self.call(
            "HSET",
            vec![
                self.meta_key().into(),
                format!("num:{field}").into(),
                key.into(),
            ],
        )
        .await?;
        self.numeric_fields
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(field.to_owned());
        Ok(())
    }

    /// Waits until the index has finished the background rescan that `FT.ALTER` starts, so
    /// that statistics (document count, lengths) are settled before the next write or query.
    pub(crate) async fn await_indexing(&self) -> Result<()> {
        for _ in 0..500 {
            let info = self
                .call("FT.INFO", vec![self.index().into()])
                .await?
                .into_array();
            let indexing = info
                .chunks(2)
                .find(|p| p.first().and_then(string_of).as_deref() == Some("indexing"))
                .and_then(|p| p.get(1).and_then(string_of))
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0);
            if indexing == 0.0 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Whether a write may add an index field for a numeric metadata key: known fields, and
    /// new ones up to [`MAX_NUMERIC_FIELDS`] per store. The index schema is shared by every
    /// tenant and RediSearch caps its fields, so tenants' keys must not grow it without bound;
    /// conditions on keys past the cap are checked on the items.
    pub(crate) fn may_add_numeric(&self, field: &str) -> bool {
        let known = self
            .numeric_fields
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        known.contains(field) || known.len() < MAX_NUMERIC_FIELDS
    }

    pub(crate) fn knows_numeric(&self, field: &str) -> bool {
        self.numeric_fields
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(field)
    }
}

impl RedisStore {
    /// The arguments ending every query: its time limit and the query dialect.
    ///
    /// RediSearch's own limit (500 ms by default) answers a slow query with the results found
    /// so far, as if they were all (`ON_TIMEOUT RETURN`, the default policy): a keyword search
    /// over a large namespace under load would silently miss candidates. The limit given here
    /// is a second past the command timeout, so the client gives up with a `Timeout` error
    /// before Redis could cut an answer short.
    pub(crate) fn query_tail(&self) -> [Value; 4] {
        let ms = self.config.command_timeout.as_millis() + 1000;
        [
            "TIMEOUT".into(),
            ms.to_string().into(),
            "DIALECT".into(),
            "2".into(),
        ]
    }
}

impl RedisStore {
    /// The arguments of an `FT.SEARCH` for `query` on the index.
    pub(crate) fn search_args(
        &self,
        query: &str,
        with_scores: bool,
        extra: Vec<Value>,
    ) -> Vec<Value> {
        let mut args: Vec<Value> = vec![self.index().into(), query.into()];
        if with_scores {
            args.push("WITHSCORES".into());
        }
        args.extend(extra);
        args.extend(self.query_tail());
        args
    }

    pub(crate) async fn search_docs(
        &self,
        query: &str,
        extra: Vec<Value>,
        with_scores: bool,
    ) -> Result<(u64, Vec<Doc>)> {
        let args = self.search_args(query, with_scores, extra);
        let v = self.call("FT.SEARCH", args).await?;
        parse_search(v, with_scores)
    }

    /// Every document matching `query`, in pages.
    pub(crate) async fn all_docs(&self, query: &str) -> Result<Vec<Doc>> {
        self.all_docs_returning(query, &[]).await
    }

    /// Every document matching `query`, in pages, with only the named fields (all when empty).
    pub(crate) async fn all_docs_returning(
        &self,
        query: &str,
        fields: &[&str],
    ) -> Result<Vec<Doc>> {
        let mut out = Vec::new();
        loop {
            let mut args: Vec<Value> = Vec::new();
            if !fields.is_empty() {
                args.push("RETURN".into());
                args.push(fields.len().to_string().into());
                args.extend(fields.iter().map(|f| Value::from(*f)));
            }
            args.extend(["LIMIT".into(), out.len().to_string().into(), "1000".into()]);
            let (total, docs) = self.search_docs(query, args, false).await?;
            let n = docs.len();
            out.extend(docs);
            if n == 0 || out.len() as u64 >= total {
                return Ok(out);
            }
        }
    }
}

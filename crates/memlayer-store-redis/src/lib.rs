#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod error;
mod scripts;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fred::bytes::Bytes;
use fred::clients::Pool;
use fred::interfaces::{ClientLike, FredResult};
use fred::prelude::Builder;
use fred::types::config::{Config, ReconnectPolicy};
use fred::types::{CustomCommand, Value};
use memlayer_store::lifecycle::reassign_conflict;
use memlayer_store::limits::{self, check_namespace, check_pin};
use memlayer_store::ranking::{bm25, text};
use memlayer_store::search::{SearchLegs, leg_hit, run_list, run_search};
use memlayer_store::types::{Embedding, Kind, MemoryItem, Metadata, Status, Tier, Timestamp};
use memlayer_store::{
    Capabilities, ClearRequest, CountOptions, Cursor, EmbeddingPin, Error, ErrorKind, ExpiredItem,
    FieldMatch, Filter, ListRequest, MemoryStore, MetaCondition, MetaOp, Order, Page, RankedBy,
    Result, SearchHit, SearchRequest, SearchResults, SortKey, SortValue,
};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use error::{corrupt, map_redis};

const BACKEND: &str = "redis";
const NONE: &str = "none";
const NO_ACCESS: f64 = -1e18;
const OPEN_END: f64 = 1e18;
/// Index fields for numeric metadata keys, at most, per store (see `may_add_numeric`).
const MAX_NUMERIC_FIELDS: usize = 64;

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

/// A memory store in Redis with RediSearch.
#[derive(Clone)]
pub struct RedisStore {
    pool: Pool,
    config: Arc<RedisConfig>,
    numeric_fields: Arc<Mutex<HashSet<String>>>,
    closed: Arc<AtomicBool>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.config.prefix)
            .finish()
    }
}

fn tag(e: Error, operation: &'static str) -> Error {
    e.with_backend(BACKEND).with_operation(operation)
}

/// A TAG token for any string: a hex digest, so no query syntax can ever appear in a query.
fn token(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The canonical typed form of a metadata scalar (numbers as numbers: 10 and 10.0 agree).
fn typed(v: &Json) -> Option<String> {
    match v {
        Json::Number(n) => n.as_f64().map(|f| format!("n:{f}")),
        Json::String(s) => Some(format!("s:{s}")),
        Json::Bool(b) => Some(format!("b:{b}")),
        _ => None,
    }
}

fn kv_token(key: &str, v: &Json) -> Option<String> {
    typed(v).map(|t| token(&format!("{key}\u{1f}{t}")))
}

fn numeric_field(key: &str) -> String {
    format!("x{}", &token(key)[..16])
}

fn num(v: f64) -> String {
    format!("{v}")
}

fn cmd(name: &'static str) -> CustomCommand {
    CustomCommand::new_static(name, None, false)
}

fn bytes_of(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Bytes(b) => Some(b.to_vec()),
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(i) => Some(i.to_string().into_bytes()),
        Value::Double(d) => Some(d.to_string().into_bytes()),
        _ => None,
    }
}

fn string_of(v: &Value) -> Option<String> {
    bytes_of(v).and_then(|b| String::from_utf8(b).ok())
}

/// One document of a search answer: its fields, and its score when asked for.
struct Doc {
    fields: HashMap<String, Vec<u8>>,
    score: Option<f64>,
}

impl Doc {
    fn text(&self, k: &str) -> Option<String> {
        self.fields
            .get(k)
            .and_then(|b| String::from_utf8(b.clone()).ok())
    }

    fn int(&self, k: &str) -> Result<Option<i64>> {
        self.text(k)
            .map(|s| s.parse::<i64>().map_err(|e| corrupt(k, e)))
            .transpose()
    }

    fn item(&self) -> Result<MemoryItem> {
        let need = |k: &str| self.text(k).ok_or_else(|| corrupt(k, "missing"));
        let status = need("status")?;
        let tier = need("tier")?;
        let tool_calls: Vec<Json> =
            serde_json::from_str(&need("tool_calls")?).map_err(|e| corrupt("tool_calls", e))?;
        let extra: serde_json::Map<String, Json> =
            serde_json::from_str(&need("extra")?).map_err(|e| corrupt("extra", e))?;
        let tags: BTreeSet<String> =
            serde_json::from_str(&need("tags")?).map_err(|e| corrupt("tags", e))?;
        let embedding = match (self.text("embedding_model"), self.fields.get("vec")) {
            (Some(m), Some(b)) => Some(Embedding::new(
                m,
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )),
            _ => None,
        };
        let ts =
            |k: &str| -> Result<Option<Timestamp>> { Ok(self.int(k)?.map(Timestamp::from_millis)) };
        Ok(MemoryItem {
            id: need("id")?,
            namespace: need("namespace")?,
            kind: Kind::parse(&need("kind")?),
            content: need("content")?,
            status: Status::parse(&status).ok_or_else(|| corrupt("status", &status))?,
            tool_calls,
            tool_call_id: self.text("tool_call_id"),
            tool_name: self.text("tool_name"),
            is_error: self.text("is_error").map(|v| v == "1"),
            metadata: Metadata {
                user_id: self.text("user_id"),
                session_id: self.text("session_id"),
                task_id: self.text("task_id"),
                agent_id: self.text("agent_id"),
                extra,
            },
            tags,
            tier: Tier::parse(&tier).ok_or_else(|| corrupt("tier", &tier))?,
            expires_at: ts("expires_at")?,
            importance: need("importance")?
                .parse()
                .map_err(|e| corrupt("importance", e))?,
            confidence: need("confidence")?
                .parse()
                .map_err(|e| corrupt("confidence", e))?,
            access_count: self
                .int("access_count")?
                .map_or(0, |v| u64::try_from(v).unwrap_or(0)),
            last_accessed_at: ts("last_accessed_at")?,
            superseded_by: self.text("superseded_by"),
            valid_from: ts("valid_from")?,
            valid_to: ts("valid_to")?,
            created_at: ts("created_at")?.ok_or_else(|| corrupt("created_at", "missing"))?,
            updated_at: ts("updated_at")?.ok_or_else(|| corrupt("updated_at", "missing"))?,
            version: self
                .int("version")?
                .map_or(0, |v| u64::try_from(v).unwrap_or(0)),
            deleted: self.text("deleted").as_deref() == Some("1"),
            embedding,
        })
    }
}

/// Parses an FT.SEARCH answer: `[total, key, (score,) [field, value, ...], ...]`.
fn parse_search(v: Value, with_scores: bool) -> Result<(u64, Vec<Doc>)> {
    let arr = v.into_array();
    let total = arr.first().and_then(|t| t.as_i64()).unwrap_or(0).max(0) as u64;
    let mut docs = Vec::new();
    let mut i = 1;
    while i < arr.len() {
        i += 1; // the key
        let mut score = None;
        if with_scores {
            score = arr
                .get(i)
                .and_then(string_of)
                .and_then(|s| s.parse::<f64>().ok());
            i += 1;
        }
        let mut fields = HashMap::new();
        if let Some(Value::Array(pairs)) = arr.get(i) {
            for p in pairs.chunks(2) {
                if let (Some(k), Some(v)) =
                    (p.first().and_then(string_of), p.get(1).and_then(bytes_of))
                {
                    fields.insert(k, v);
                }
            }
        }
        i += 1;
        docs.push(Doc { fields, score });
    }
    Ok((total, docs))
}

/// A filter translated to a RediSearch query, plus what RediSearch cannot express.
struct Translated {
    query: String,
    /// Conditions checked in Rust on every candidate (ranges over string values).
    residual: Vec<MetaCondition>,
    /// The filter can match nothing (a numeric range over a key never stored as a number).
    empty: bool,
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
    fn key(&self, namespace: &str, id: &str) -> String {
        format!("{}i:{}:{id}", self.config.prefix, token(namespace))
    }

    /// Renames the hashes of a store written before keys held the namespace (`i:{id}`) to
    /// their (namespace, id) keys, once; `meta.keys = ns` records that it is done. A rename
    /// never overwrites a key, and a key already in place is left alone, so two processes
    /// opening the same old store at once both finish with every item under its new key.
    async fn migrate_keys(&self) -> Result<()> {
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

    fn index(&self) -> String {
        format!("{}idx", self.config.prefix)
    }

    fn meta_key(&self) -> String {
        format!("{}meta", self.config.prefix)
    }

    fn counts_key(&self) -> String {
        format!("{}nscount", self.config.prefix)
    }

    fn lens_key(&self) -> String {
        format!("{}nslen", self.config.prefix)
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::Unavailable, "the store is closed")
                .with_backend(BACKEND)
                .set_temporary(false));
        }
        Ok(())
    }

    async fn call(&self, name: &'static str, args: Vec<Value>) -> Result<Value> {
        self.check_open()?;
        let r: FredResult<Value> = self.pool.custom(cmd(name), args).await;
        r.map_err(map_redis)
    }

    async fn eval(&self, script: &str, keys: Vec<String>, args: Vec<Value>) -> Result<Value> {
        let mut all: Vec<Value> = vec![Value::from(script), Value::from(keys.len() as i64)];
        all.extend(keys.into_iter().map(Value::from));
        all.extend(args);
        self.call("EVAL", all).await
    }

    async fn ensure_index(&self) -> Result<()> {
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

    async fn load_pin(&self) -> Result<Option<EmbeddingPin>> {
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
    async fn pin(&self, model: &str, dim: usize) -> Result<()> {
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

    async fn ensure_numeric_field(&self, field: &str, key: &str) -> Result<()> {
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
    async fn await_indexing(&self) -> Result<()> {
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
    fn may_add_numeric(&self, field: &str) -> bool {
        let known = self
            .numeric_fields
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        known.contains(field) || known.len() < MAX_NUMERIC_FIELDS
    }

    fn knows_numeric(&self, field: &str) -> bool {
        self.numeric_fields
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(field)
    }

    /// The hash fields of an item (bookkeeping fields are the script's).
    fn fields(&self, item: &MemoryItem) -> Vec<(String, Value)> {
        let mut f: Vec<(String, Value)> = Vec::new();
        let mut put = |k: &str, v: Value| f.push((k.to_owned(), v));
        put("id", item.id.clone().into());
        put("t_id", token(&item.id).into());
        put("namespace", item.namespace.clone().into());
        put("t_ns", token(&item.namespace).into());
        put("kind", item.kind.as_str().into());
        put("t_kind", token(item.kind.as_str()).into());
        put("content", item.content.clone().into());
        // memlayer's analysis, for BM25: the length in terms and the distinct terms as tags.
        let terms: Vec<String> = text::terms(&item.content).collect();
        put("doc_len", terms.len().to_string().into());
        put("terms", format!(" {} ", terms.join(" ")).into());
        let distinct: BTreeSet<String> = terms.into_iter().map(|t| token(&t)).collect();
        put(
            "t_terms",
            distinct.into_iter().collect::<Vec<_>>().join(",").into(),
        );
        put("status", item.status.as_str().into());
        put("t_status", token(item.status.as_str()).into());
        put(
            "tool_calls",
            serde_json::to_string(&item.tool_calls)
                .unwrap_or_else(|_| "[]".into())
                .into(),
        );
        if let Some(v) = &item.tool_call_id {
            put("tool_call_id", v.clone().into());
        }
        if let Some(v) = &item.tool_name {
            put("tool_name", v.clone().into());
        }
        if let Some(v) = item.is_error {
            put("is_error", if v { "1" } else { "0" }.into());
        }
        let m = &item.metadata;
        for (raw, t, v) in [
            ("user_id", "t_user", &m.user_id),
            ("session_id", "t_session", &m.session_id),
            ("task_id", "t_task", &m.task_id),
            ("agent_id", "t_agent", &m.agent_id),
        ] {
            match v {
                Some(v) => {
                    put(raw, v.clone().into());
                    put(t, token(v).into());
                }
                None => put(t, NONE.into()),
            }
        }
        put(
            "extra",
            serde_json::to_string(&m.extra)
                .unwrap_or_else(|_| "{}".into())
                .into(),
        );
        let kv: Vec<String> = m.extra.iter().filter_map(|(k, v)| kv_token(k, v)).collect();
        put("t_kv", kv.join(",").into());
        for (k, v) in &m.extra {
            if let Some(x) = v.as_f64() {
                put(&numeric_field(k), num(x).into());
            }
        }
        put(
            "tags",
            serde_json::to_string(&item.tags)
                .unwrap_or_else(|_| "[]".into())
                .into(),
        );
        put(
            "t_tags",
            item.tags
                .iter()
                .map(|t| token(t))
                .collect::<Vec<_>>()
                .join(",")
                .into(),
        );
        put("tier", item.tier.as_str().into());
        match item.expires_at {
            Some(t) => {
                put("expires_at", t.as_millis().to_string().into());
                put("exp", t.as_millis().to_string().into());
            }
            None => put("exp", num(OPEN_END).into()),
        }
        put("importance", item.importance.to_string().into());
        put("imp", num(f64::from(item.importance)).into());
        put("confidence", item.confidence.to_string().into());
        match &item.superseded_by {
            Some(s) => {
                put("superseded_by", s.clone().into());
                put("t_sup", "y".into());
                put("t_supby", token(s).into());
            }
            None => {
                put("t_sup", "n".into());
                put("t_supby", NONE.into());
            }
        }
        match item.valid_from {
            Some(t) => {
                put("valid_from", t.as_millis().to_string().into());
                put("vfrom", t.as_millis().to_string().into());
            }
            None => put("vfrom", num(-OPEN_END).into()),
        }
        match item.valid_to {
            Some(t) => {
                put("valid_to", t.as_millis().to_string().into());
                put("vto", t.as_millis().to_string().into());
            }
            None => put("vto", num(OPEN_END).into()),
        }
        put("deleted", "0".into());
        put("t_del", "n".into());
        let zero = item
            .embedding
            .as_ref()
            .is_some_and(|e| e.vector.iter().all(|x| *x == 0.0));
        put(
            "t_vec",
            if item.embedding.is_some() { "y" } else { "n" }.into(),
        );
        put("t_zero", if zero { "y" } else { "n" }.into());
        if let Some(e) = &item.embedding {
            put("embedding_model", e.model.clone().into());
            let blob: Vec<u8> = e.vector.iter().flat_map(|x| x.to_le_bytes()).collect();
            put("vec", Value::Bytes(Bytes::from(blob)));
        }
        f
    }

    fn translate(&self, namespace: &str, f: &Filter, now: Timestamp) -> Translated {
        let mut q: Vec<String> = vec![format!("@t_ns:{{{}}}", token(namespace))];
        let mut residual = Vec::new();
        let mut empty = false;
        let now = now.as_millis();
        if !f.include_deleted {
            q.push("@t_del:{n}".into());
        }
        if !f.include_expired {
            q.push(format!("@exp:[({now} +inf]"));
        }
        match f.as_of {
            Some(a) => {
                let a = a.as_millis();
                q.push(format!("@vfrom:[-inf {a}] @vto:[({a} +inf]"));
            }
            None if !f.include_superseded => q.push(format!("@t_sup:{{n}} @vto:[({now} +inf]")),
            None => {}
        }
        for (field, m) in [
            ("t_user", &f.user),
            ("t_session", &f.session),
            ("t_task", &f.task),
            ("t_agent", &f.agent),
        ] {
            match m {
                FieldMatch::Any => {}
                FieldMatch::Is(v) => q.push(format!("@{field}:{{{}}}", token(v))),
                FieldMatch::Unset => q.push(format!("@{field}:{{{NONE}}}")),
            }
        }
        if !f.kinds.is_empty() {
            let t: Vec<String> = f.kinds.iter().map(|k| token(k.as_str())).collect();
            q.push(format!("@t_kind:{{{}}}", t.join("|")));
        }
        if !f.statuses.is_empty() {
            let t: Vec<String> = f.statuses.iter().map(|s| token(s.as_str())).collect();
            q.push(format!("@t_status:{{{}}}", t.join("|")));
        }
        for t in &f.tags {
            q.push(format!("@t_tags:{{{}}}", token(t)));
        }
        for c in &f.metadata {
            match (c.op, &c.value) {
                (MetaOp::Eq, v) => match kv_token(&c.key, v) {
                    Some(t) => q.push(format!("@t_kv:{{{t}}}")),
                    None => empty = true,
                },
                (MetaOp::Ne, v) => {
                    if let Some(t) = kv_token(&c.key, v) {
                        q.push(format!("-@t_kv:{{{t}}}"));
                    }
                }
                (op, Json::Number(n)) => {
                    let field = numeric_field(&c.key);
                    if !self.knows_numeric(&field) {
                        // No index field for this key (past the cap, or added by another
                        // process since this one connected): checked on the items instead.
                        residual.push(c.clone());
                        continue;
                    }
                    let v = n.as_f64().unwrap_or(0.0);
                    let range = match op {
                        MetaOp::Gt => format!("[({v} +inf]"),
                        MetaOp::Gte => format!("[{v} +inf]"),
                        MetaOp::Lt => format!("[-inf ({v}]"),
                        _ => format!("[-inf {v}]"),
                    };
                    q.push(format!("@{field}:{range}"));
                }
                _ => residual.push(c.clone()),
            }
        }
        if !f.exclude_ids.is_empty() {
            let t: Vec<String> = f.exclude_ids.iter().map(|i| token(i)).collect();
            q.push(format!("-@t_id:{{{}}}", t.join("|")));
        }
        for (field, range, floor) in [
            ("cat", &f.created, f64::MIN),
            ("uat", &f.updated, f64::MIN),
            ("acc", &f.accessed, NO_ACCESS / 2.0),
        ] {
            if range.is_open() {
                continue;
            }
            let lo = range
                .from
                .map_or(floor, |t| (t.as_millis() as f64).max(floor));
            let lo = if lo == f64::MIN {
                "-inf".to_owned()
            } else {
                num(lo)
            };
            let hi = range
                .to
                .map_or("+inf".to_owned(), |t| t.as_millis().to_string());
            q.push(format!("@{field}:[{lo} {hi}]"));
        }
        Translated {
            query: q.join(" "),
            residual,
            empty,
        }
    }

    /// Keyword search ranked by memlayer's BM25 (k1 1.2, b 0.75, Lucene IDF) over per-namespace
    /// statistics that include soft-deleted items, exactly as the memory backend ranks: the
    /// candidates are every item passing the filter that carries any query term.
    ///
    /// The statistics and every term's document frequency come back in one round trip. When
    /// RediSearch can express the whole filter, Redis scores the candidates itself
    /// ([`RedisStore::bm25_in_redis`]) and answers with the best `k`; otherwise the candidates
    /// are read whole and the filter's remainder checked here.
    async fn bm25_leg(
        &self,
        namespace: &str,
        terms: &[String],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<SearchHit>> {
        let t = self.translate(namespace, filter, filter.effective_now());
        if t.empty || terms.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        self.check_open()?;
        let ns = token(namespace);
        let mut commands: Vec<(&'static str, Vec<Value>)> = vec![
            ("HGET", vec![self.counts_key().into(), namespace.into()]),
            ("HGET", vec![self.lens_key().into(), namespace.into()]),
        ];
        for term in terms {
            let q = format!("@t_ns:{{{ns}}} @t_terms:{{{}}}", token(term));
            let count_only = vec!["LIMIT".into(), "0".into(), "0".into()];
            commands.push(("FT.SEARCH", self.search_args(&q, false, count_only)));
        }
        let pipe = self.pool.next().pipeline();
        for (name, args) in commands {
            let queued: FredResult<()> = pipe.custom(cmd(name), args).await;
            queued.map_err(map_redis)?;
        }
        let mut replies = pipe.try_all::<Value>().await.into_iter();
        let mut next = || -> Result<Value> {
            replies
                .next()
                .ok_or_else(|| corrupt("pipeline", "fewer replies than commands"))?
                .map_err(map_redis)
        };
        let stat = |v: Value| {
            string_of(&v)
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let n = stat(next()?);
        let total_len = stat(next()?);
        let mut weighted: Vec<(&str, f32)> = Vec::new();
        let mut dfs: Vec<f32> = Vec::new();
        for term in terms {
            let (df, _) = parse_search(next()?, false)?;
            if df > 0 && n > 0.0 {
                weighted.push((term.as_str(), bm25::idf(n as f32, df as f32)));
                dfs.push(df as f32);
            }
        }
        if weighted.is_empty() {
            return Ok(Vec::new());
        }
        let avg_len = (total_len / n).max(1.0) as f32;
        // The rarest terms' candidates first; each round's best k are scored on every query
        // term, and a round is the last once no candidate holding only unread terms could
        // pass the k-th best score found (see `TermRounds`).
        let idfs: Vec<f32> = weighted.iter().map(|(_, idf)| *idf).collect();
        let mut rounds = bm25::TermRounds::new(bm25::Bm25Params::default(), &idfs, &dfs, n as f32);
        let mut read: HashSet<String> = HashSet::new();
        let mut top = memlayer_store::ranking::vector::TopK::new(k);
        while let Some(round) = rounds.next_terms(top.kth()) {
            let tags: Vec<String> = round
                .iter()
                .filter_map(|i| weighted.get(*i))
                .map(|(term, _)| token(term))
                .collect();
            let query = format!("{} @t_terms:{{{}}}", t.query, tags.join("|"));
            let best = if t.residual.is_empty() {
                self.bm25_in_redis(&query, &weighted, avg_len, k).await?
            } else {
                self.bm25_here(&query, &weighted, avg_len, &t.residual, k)
                    .await?
            };
            for (score, id) in best {
                if read.insert(id.clone()) {
                    top.offer(score, id);
                }
            }
        }
        let scored = top.into_sorted();
        if scored.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = scored.iter().map(|(_, id)| token(id)).collect();
        let winners = self
            .all_docs(&format!("@t_ns:{{{ns}}} @t_id:{{{}}}", ids.join("|")))
            .await?;
        let mut by_id: HashMap<String, MemoryItem> = HashMap::new();
        for d in &winners {
            let item = d.item()?;
            by_id.insert(item.id.clone(), item);
        }
        Ok(scored
            .into_iter()
            .filter_map(|(score, id)| Some(leg_hit(by_id.remove(&id)?, score, RankedBy::Keyword)))
            .collect())
    }

    /// The best `k` candidates of `query` by BM25, ranked by Redis: an `FT.AGGREGATE` counts
    /// each term in the candidates' stored terms (`contains`), sums the weighted term scores and
    /// keeps the best `k` (ties by id), so only those cross the network, never the candidates.
    /// Redis computes in doubles; the winners' scores are then computed again here, in the
    /// memory backend's arithmetic, from the terms that come back with them. (Two candidates
    /// whose scores differ only past single precision could swap places, as with Postgres'
    /// BM25 in SQL.)
    async fn bm25_in_redis(
        &self,
        query: &str,
        weighted: &[(&str, f32)],
        avg_len: f32,
        k: usize,
    ) -> Result<Vec<(f32, String)>> {
        let params = bm25::Bm25Params::default();
        let (k1, b) = (f64::from(params.k1), f64::from(params.b));
        let mut args: Vec<Value> = vec![self.index().into(), query.into()];
        args.extend(["LOAD", "3", "@id", "@terms", "@doc_len"].map(Value::from));
        let norm = format!(
            "{k1} * ({} + {b} * @doc_len / {})",
            1.0 - b,
            f64::from(avg_len)
        );
        args.extend(["APPLY".into(), norm.into(), "AS".into(), "bm25_norm".into()]);
        let mut sum = Vec::with_capacity(weighted.len());
        for (i, (term, idf)) in weighted.iter().enumerate() {
            // Terms are letters and digits (`text::terms`): nothing to escape in the literal.
            let tf = format!("contains(@terms, \" {term} \")");
            args.extend([
                "APPLY".into(),
                tf.into(),
                "AS".into(),
                format!("bm25_tf{i}").into(),
            ]);
            sum.push(format!(
                "{} * @bm25_tf{i} * {} / (@bm25_tf{i} + @bm25_norm)",
                f64::from(*idf),
                k1 + 1.0
            ));
        }
        args.extend([
            "APPLY".into(),
            sum.join(" + ").into(),
            "AS".into(),
            "bm25".into(),
        ]);
        args.extend(["SORTBY", "4", "@bm25", "DESC", "@id", "ASC", "MAX"].map(Value::from));
        args.push(k.to_string().into());
        args.extend(["LIMIT".into(), "0".into(), k.to_string().into()]);
        args.extend(self.query_tail());
        let reply = self.call("FT.AGGREGATE", args).await?.into_array();
        let wanted: Vec<&str> = weighted.iter().map(|(term, _)| *term).collect();
        let mut scored = Vec::with_capacity(k);
        for row in reply.into_iter().skip(1) {
            let mut fields: HashMap<String, String> = HashMap::new();
            for pair in row.into_array().chunks(2) {
                if let (Some(key), Some(value)) = (
                    pair.first().and_then(string_of),
                    pair.get(1).and_then(string_of),
                ) {
                    fields.insert(key, value);
                }
            }
            let id = fields
                .remove("id")
                .ok_or_else(|| corrupt("item", "a keyword candidate without its id"))?;
            let terms = fields
                .remove("terms")
                .ok_or_else(|| corrupt("item", format!("{id} has no analysed terms")))?;
            scored.push((Self::bm25_score(&terms, &wanted, weighted, avg_len), id));
        }
        scored.sort_by(memlayer_store::ranking::vector::best_first);
        Ok(scored)
    }

    /// The best `k` candidates of `query` by BM25, scored here: every candidate is read whole
    /// (the filter's `residual` needs its metadata) and checked.
    async fn bm25_here(
        &self,
        query: &str,
        weighted: &[(&str, f32)],
        avg_len: f32,
        residual: &[MetaCondition],
        k: usize,
    ) -> Result<Vec<(f32, String)>> {
        let docs = self.all_docs(query).await?;
        let wanted: Vec<&str> = weighted.iter().map(|(term, _)| *term).collect();
        let mut scored: Vec<(f32, String)> = Vec::with_capacity(docs.len());
        for d in &docs {
            if !Self::passes(&d.item()?, residual) {
                continue;
            }
            let Some(id) = d.text("id") else { continue };
            let terms = d
                .text("terms")
                .ok_or_else(|| corrupt("item", format!("{id} has no analysed terms")))?;
            scored.push((Self::bm25_score(&terms, &wanted, weighted, avg_len), id));
        }
        scored.sort_by(memlayer_store::ranking::vector::best_first);
        scored.truncate(k);
        Ok(scored)
    }

    /// BM25 of one stored terms document, in the memory backend's arithmetic.
    fn bm25_score(terms: &str, wanted: &[&str], weighted: &[(&str, f32)], avg_len: f32) -> f32 {
        let params = bm25::Bm25Params::default();
        let (tf, len) = text::term_counts(terms, wanted);
        tf.iter()
            .zip(weighted)
            .filter(|(f, _)| **f > 0.0)
            .map(|(f, (_, idf))| params.term_score(*idf, *f, len, avg_len))
            .sum()
    }

    /// The arguments ending every query: its time limit and the query dialect.
    ///
    /// RediSearch's own limit (500 ms by default) answers a slow query with the results found
    /// so far, as if they were all (`ON_TIMEOUT RETURN`, the default policy): a keyword search
    /// over a large namespace under load would silently miss candidates. The limit given here
    /// is a second past the command timeout, so the client gives up with a `Timeout` error
    /// before Redis could cut an answer short.
    fn query_tail(&self) -> [Value; 4] {
        let ms = self.config.command_timeout.as_millis() + 1000;
        [
            "TIMEOUT".into(),
            ms.to_string().into(),
            "DIALECT".into(),
            "2".into(),
        ]
    }

    fn passes(item: &MemoryItem, residual: &[MetaCondition]) -> bool {
        residual
            .iter()
            .all(|c| memlayer_store::meta_condition_holds(item, c))
    }

    /// The arguments of an `FT.SEARCH` for `query` on the index.
    fn search_args(&self, query: &str, with_scores: bool, extra: Vec<Value>) -> Vec<Value> {
        let mut args: Vec<Value> = vec![self.index().into(), query.into()];
        if with_scores {
            args.push("WITHSCORES".into());
        }
        args.extend(extra);
        args.extend(self.query_tail());
        args
    }

    async fn search_docs(
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
    async fn all_docs(&self, query: &str) -> Result<Vec<Doc>> {
        self.all_docs_returning(query, &[]).await
    }

    /// Every document matching `query`, in pages, with only the named fields (all when empty).
    async fn all_docs_returning(&self, query: &str, fields: &[&str]) -> Result<Vec<Doc>> {
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

    fn sort_field(key: SortKey) -> &'static str {
        match key {
            SortKey::Created => "cat",
            SortKey::Updated => "uat",
            SortKey::Accessed => "acc",
            SortKey::AccessCount => "cnt",
            SortKey::Importance => "imp",
        }
    }

    fn sort_value(item: &MemoryItem, key: SortKey) -> f64 {
        match key {
            SortKey::Accessed => item
                .last_accessed_at
                .map_or(NO_ACCESS, |t| t.as_millis() as f64),
            SortKey::Importance => f64::from(item.importance),
            other => match other.value_of(item) {
                SortValue::Int(v) => v as f64,
                SortValue::Float(v) => v,
            },
        }
    }

    /// Items matching `t`, in (key, id) order after `after`, at most `need`: exact keyset
    /// paging built from numeric ranges, with ties on the key ordered by id in Rust.
    async fn ordered(
        &self,
        t: &Translated,
        key: SortKey,
        order: Order,
        after: Option<(f64, String)>,
        need: usize,
    ) -> Result<Vec<MemoryItem>> {
        let field = Self::sort_field(key);
        let desc = order == Order::Desc;
        let mut out: Vec<MemoryItem> = Vec::new();
        let by_id = |items: &mut Vec<MemoryItem>| {
            items.sort_by(|a, b| {
                if desc {
                    b.id.cmp(&a.id)
                } else {
                    a.id.cmp(&b.id)
                }
            });
        };
        let tie_group = |v: f64| format!("{} @{field}:[{} {}]", t.query, num(v), num(v));
        let mut bound: Option<f64> = None;
        if let Some((v, id)) = after {
            let mut tie: Vec<MemoryItem> = self
                .all_docs(&tie_group(v))
                .await?
                .iter()
                .map(Doc::item)
                .collect::<Result<_>>()?;
            tie.retain(|i| {
                (if desc { i.id < id } else { i.id > id }) && Self::passes(i, &t.residual)
            });
            by_id(&mut tie);
            out.extend(tie);
            bound = Some(v);
        }
        while out.len() < need {
            let range = match bound {
                None => String::new(),
                Some(v) if desc => format!(" @{field}:[-inf ({}]", num(v)),
                Some(v) => format!(" @{field}:[({} +inf]", num(v)),
            };
            let want = (need - out.len() + 1).max(10);
            let query = format!("{}{range}", t.query);
            let (total, mut docs) = self
                .search_docs(
                    &query,
                    vec![
                        "SORTBY".into(),
                        field.into(),
                        if desc { "DESC" } else { "ASC" }.into(),
                        "LIMIT".into(),
                        "0".into(),
                        want.to_string().into(),
                    ],
                    false,
                )
                .await?;
            // RediSearch's sorted answer is occasionally short of its own count when the sort
            // field is also range-filtered; then read the range whole and sort here.
            if (docs.len() as u64) < total.min(want as u64) {
                docs = self.all_docs(&query).await?;
                docs.sort_by(|a, b| {
                    let va = a.item().map(|i| Self::sort_value(&i, key)).unwrap_or(0.0);
                    let vb = b.item().map(|i| Self::sort_value(&i, key)).unwrap_or(0.0);
                    let o = va.total_cmp(&vb);
                    if desc { o.reverse() } else { o }
                });
                docs.truncate(want);
            }
            if docs.is_empty() {
                break;
            }
            let items: Vec<MemoryItem> = docs.iter().map(Doc::item).collect::<Result<_>>()?;
            let last = items
                .last()
                .map(|i| Self::sort_value(i, key))
                .unwrap_or(0.0);
            let full = items.len() >= want;
            // RediSearch orders equal values arbitrarily: settle (value, id) order here.
            let mut settled: Vec<MemoryItem> = items
                .iter()
                .filter(|i| Self::sort_value(i, key) != last && Self::passes(i, &t.residual))
                .cloned()
                .collect();
            settled.sort_by(|a, b| {
                let o = Self::sort_value(a, key)
                    .total_cmp(&Self::sort_value(b, key))
                    .then_with(|| a.id.cmp(&b.id));
                if desc { o.reverse() } else { o }
            });
            out.extend(settled);
            let mut tie: Vec<MemoryItem> = if full {
                self.all_docs(&tie_group(last))
                    .await?
                    .iter()
                    .map(Doc::item)
                    .collect::<Result<_>>()?
            } else {
                items
                    .into_iter()
                    .filter(|i| Self::sort_value(i, key) == last)
                    .collect()
            };
            tie.retain(|i| Self::passes(i, &t.residual));
            by_id(&mut tie);
            out.extend(tie);
            if !full {
                break;
            }
            bound = Some(last);
        }
        out.truncate(need);
        Ok(out)
    }

    async fn ordered_page(
        &self,
        namespace: &str,
        request: &ListRequest,
        cursor: Option<Cursor>,
        offset: usize,
    ) -> Result<(Vec<MemoryItem>, Option<String>)> {
        let t = self.translate(namespace, &request.filter, request.filter.effective_now());
        if t.empty {
            return Ok((Vec::new(), None));
        }
        let after = cursor.map(|c| {
            let v = match c.value {
                SortValue::Int(i) if request.sort == SortKey::Accessed && i == i64::MIN => {
                    NO_ACCESS
                }
                SortValue::Int(i) => i as f64,
                SortValue::Float(f) => f,
            };
            (v, c.id)
        });
        let limit = request.effective_limit();
        let mut items = self
            .ordered(&t, request.sort, request.order, after, offset + limit + 1)
            .await?;
        let mut items: Vec<MemoryItem> = items.drain(..).skip(offset).collect();
        let next = if items.len() > limit {
            items.truncate(limit);
            items
                .last()
                .map(|l| Cursor::after(l, request.sort, request.order).encode())
        } else {
            None
        };
        Ok((items, next))
    }
}

#[async_trait]
impl SearchLegs for RedisStore {
    async fn page(
        &self,
        namespace: &str,
        request: &ListRequest,
        cursor: Option<Cursor>,
        offset: usize,
    ) -> Result<(Vec<MemoryItem>, Option<String>)> {
        self.ordered_page(namespace, request, cursor, offset).await
    }

    async fn keyword_leg(
        &self,
        namespace: &str,
        text_query: &str,
        terms: &[String],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<SearchHit>> {
        if self.config.scorer == "memlayer" {
            return self.bm25_leg(namespace, terms, filter, k).await;
        }
        // Literal words only (letters and digits): no RediSearch syntax can reach the query.
        let words = text::query_words(text_query);
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let t = self.translate(namespace, filter, filter.effective_now());
        if t.empty {
            return Ok(Vec::new());
        }
        let query = format!("{} @content:({})", t.query, words.join("|"));
        let mut fetch = k.max(10);
        loop {
            let (total, docs) = self
                .search_docs(
                    &query,
                    vec![
                        "SCORER".into(),
                        self.config.scorer.clone().into(),
                        "LIMIT".into(),
                        "0".into(),
                        fetch.to_string().into(),
                    ],
                    true,
                )
                .await?;
            let mut hits = Vec::new();
            for d in &docs {
                let item = d.item()?;
                if Self::passes(&item, &t.residual) {
                    hits.push(leg_hit(
                        item,
                        d.score.unwrap_or(0.0) as f32,
                        RankedBy::Keyword,
                    ));
                }
            }
            // Residual conditions: keep reading down the ranking until k survive.
            if hits.len() >= k || docs.len() as u64 >= total || t.residual.is_empty() {
                memlayer_store::ranking::fusion::sort_hits(&mut hits);
                hits.truncate(k);
                return Ok(hits);
            }
            fetch *= 4;
        }
    }

    async fn vector_leg(
        &self,
        namespace: &str,
        vector: &[f32],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<SearchHit>> {
        let Some(pin) = self.load_pin().await? else {
            return Ok(Vec::new());
        };
        memlayer_store::limits::check_query_dim(&pin, vector)?;
        let t = self.translate(namespace, filter, filter.effective_now());
        if t.empty {
            return Ok(Vec::new());
        }
        let blob: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
        let zero = vector.iter().all(|x| *x == 0.0);
        // RediSearch leaves zero vectors out of KNN (their distance is undefined); by contract
        // their cosine is 0, so they are ranked here: every vector for a zero query, and the
        // stored zero vectors otherwise.
        let zero_query = if zero {
            "@t_vec:{y}"
        } else {
            "@t_vec:{y} @t_zero:{y}"
        };
        let mut zeros: Vec<SearchHit> = Vec::new();
        for d in self.all_docs(&format!("{} {zero_query}", t.query)).await? {
            let item = d.item()?;
            if Self::passes(&item, &t.residual) {
                zeros.push(leg_hit(item, 0.0, RankedBy::Vector));
            }
        }
        if zero {
            memlayer_store::ranking::fusion::sort_hits(&mut zeros);
            zeros.truncate(k);
            return Ok(zeros);
        }
        let mut fetch = k.max(10);
        loop {
            let query = format!(
                "({})=>[KNN {fetch} @vec $B EF_RUNTIME {} AS __d]",
                t.query, self.config.ef_runtime
            );
            let (total, docs) = self
                .search_docs(
                    &query,
                    vec![
                        "PARAMS".into(),
                        "2".into(),
                        "B".into(),
                        Value::Bytes(Bytes::from(blob.clone())),
                        "SORTBY".into(),
                        "__d".into(),
                        "ASC".into(),
                        "LIMIT".into(),
                        "0".into(),
                        fetch.to_string().into(),
                    ],
                    false,
                )
                .await?;
            let mut hits = zeros.clone();
            for d in &docs {
                let item = d.item()?;
                if !Self::passes(&item, &t.residual) {
                    continue;
                }
                let dist = d
                    .text("__d")
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or(1.0);
                // A zero vector has no direction: its cosine is 0 by contract.
                let zero_item = item
                    .embedding
                    .as_ref()
                    .is_some_and(|e| e.vector.iter().all(|x| *x == 0.0));
                let score = if zero || zero_item || !dist.is_finite() {
                    0.0
                } else {
                    (1.0 - dist) as f32
                };
                hits.push(leg_hit(item, score, RankedBy::Vector));
            }
            if hits.len() >= k
                || (docs.len() as u64) < fetch as u64
                || docs.len() as u64 >= total
                || t.residual.is_empty()
            {
                memlayer_store::ranking::fusion::sort_hits(&mut hits);
                hits.truncate(k);
                return Ok(hits);
            }
            fetch *= 4;
        }
    }
}

#[async_trait]
impl MemoryStore for RedisStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::full();
        // The default ranks RediSearch's candidates with memlayer's BM25; a named scorer ranks
        // in the engine.
        caps.native_keyword_ranking = self.config.scorer != "memlayer";
        caps.approximate_vectors = true;
        caps
    }

    async fn upsert_many(&self, items: Vec<MemoryItem>) -> Result<Vec<MemoryItem>> {
        let op = "upsert_many";
        limits::check_batch(&items).map_err(|e| tag(e, op))?;
        // Every vector of the batch must agree with the pin before anything is written.
        let mut batch_pin: Option<(String, usize)> = None;
        for e in items.iter().filter_map(|i| i.embedding.as_ref()) {
            match &batch_pin {
                Some((m, d)) => check_pin(
                    &EmbeddingPin {
                        model: m.clone(),
                        dim: *d,
                    },
                    &e.model,
                    e.dim(),
                )
                .map_err(|e| tag(e, op))?,
                None => batch_pin = Some((e.model.clone(), e.dim())),
            }
        }
        if let Some((m, d)) = &batch_pin
            && let Some(p) = self.load_pin().await.map_err(|e| tag(e, op))?
        {
            check_pin(&p, m, *d).map_err(|e| tag(e, op))?;
        }
        let now = Timestamp::now();
        let mut fresh = Vec::with_capacity(items.len());
        for item in items {
            fresh.push(
                memlayer_store::lifecycle::merge_upsert(None, item, now).map_err(|e| tag(e, op))?,
            );
        }
        if let Some((m, d)) = &batch_pin {
            self.pin(m, *d).await.map_err(|e| tag(e, op))?;
        }
        for item in &fresh {
            for (k, v) in &item.metadata.extra {
                if v.is_number() && self.may_add_numeric(&numeric_field(k)) {
                    self.ensure_numeric_field(&numeric_field(k), k)
                        .await
                        .map_err(|e| tag(e, op))?;
                }
            }
        }
        let mut keys: Vec<String> = fresh
            .iter()
            .map(|i| self.key(&i.namespace, &i.id))
            .collect();
        keys.push(self.counts_key());
        keys.push(self.lens_key());
        let mut args: Vec<Value> = vec![now.as_millis().to_string().into()];
        for item in &fresh {
            let fields = self.fields(item);
            args.push(item.namespace.clone().into());
            args.push(item.status.as_str().into());
            args.push(item.created_at.as_millis().to_string().into());
            args.push(item.access_count.to_string().into());
            args.push(
                item.last_accessed_at
                    .map_or(String::new(), |t| t.as_millis().to_string())
                    .into(),
            );
            args.push(fields.len().to_string().into());
            for (k, v) in fields {
                args.push(k.into());
                args.push(v);
            }
        }
        let reply = match self.eval(scripts::UPSERT, keys, args).await {
            Ok(v) => v,
            Err(e) => {
                let msg = e.to_string();
                let index = |s: &str| -> Option<usize> {
                    let rest = msg.split(s).nth(1)?;
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    digits.parse::<usize>().ok()
                };
                if let Some(i) = index("STATUS ") {
                    let item = &fresh[i.saturating_sub(1).min(fresh.len() - 1)];
                    let old = msg
                        .split("STATUS ")
                        .nth(1)
                        .and_then(|s| s.split_whitespace().nth(1))
                        .map(|s| s.trim_end_matches(':'))
                        .unwrap_or("?");
                    return Err(tag(
                        Error::invalid(
                            "status",
                            format!(
                                "cannot move from {old} to {}; legal moves are draft->accepted, draft->discard, accepted->discard",
                                item.status.as_str()
                            ),
                        ),
                        op,
                    ));
                }
                return Err(tag(e, op));
            }
        };
        let rows = reply.into_array();
        let mut out = Vec::with_capacity(fresh.len());
        for (mut item, row) in fresh.into_iter().zip(rows) {
            let r: Vec<String> = row
                .into_array()
                .iter()
                .map(|v| string_of(v).unwrap_or_default())
                .collect();
            let int = |i: usize| r.get(i).and_then(|s| s.parse::<i64>().ok());
            item.version = int(0).map_or(1, |v| v as u64);
            item.created_at = Timestamp::from_millis(int(1).unwrap_or(item.created_at.as_millis()));
            item.updated_at = Timestamp::from_millis(int(2).unwrap_or(item.updated_at.as_millis()));
            item.access_count = int(3).map_or(0, |v| v as u64);
            item.last_accessed_at = int(4).map(Timestamp::from_millis);
            out.push(item);
        }
        Ok(out)
    }

    async fn get(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        let v = self
            .call("HGETALL", vec![self.key(namespace, id).into()])
            .await
            .map_err(|e| tag(e, "get"))?;
        let arr = v.into_array();
        let mut fields = HashMap::new();
        for p in arr.chunks(2) {
            if let (Some(k), Some(v)) = (p.first().and_then(string_of), p.get(1).and_then(bytes_of))
            {
                fields.insert(k, v);
            }
        }
        if fields.is_empty() {
            return Err(tag(Error::not_found(namespace, id), "get"));
        }
        let item = Doc {
            fields,
            score: None,
        }
        .item()
        .map_err(|e| tag(e, "get"))?;
        if item.namespace != namespace || item.deleted {
            return Err(tag(Error::not_found(namespace, id), "get"));
        }
        Ok(item)
    }

    async fn delete(&self, namespace: &str, id: &str) -> Result<()> {
        let n = self
            .eval(
                scripts::DELETE,
                vec![self.key(namespace, id), self.counts_key(), self.lens_key()],
                vec![namespace.into(), "".into()],
            )
            .await
            .map_err(|e| tag(e, "delete"))?;
        if n.as_i64() != Some(1) {
            return Err(tag(Error::not_found(namespace, id), "delete"));
        }
        Ok(())
    }

    async fn clear(&self, namespace: &str, request: &ClearRequest) -> Result<u64> {
        limits::check_clear(namespace, request).map_err(|e| tag(e, "clear"))?;
        let mut filter = request.filter.clone();
        filter.include_deleted = false;
        let t = self.translate(namespace, &filter, filter.effective_now());
        if t.empty {
            return Ok(0);
        }
        let docs = self.all_docs(&t.query).await.map_err(|e| tag(e, "clear"))?;
        let now = Timestamp::now().as_millis().to_string();
        let mut n = 0;
        for d in docs {
            let item = d.item().map_err(|e| tag(e, "clear"))?;
            if !Self::passes(&item, &t.residual) {
                continue;
            }
            let r = self
                .eval(
                    scripts::SOFT_DELETE,
                    vec![self.key(namespace, &item.id)],
                    vec![namespace.into(), now.clone().into()],
                )
                .await
                .map_err(|e| tag(e, "clear"))?;
            if r.as_i64() == Some(1) {
                n += 1;
            }
        }
        Ok(n)
    }

    async fn count(&self, namespace: &str, options: CountOptions) -> Result<u64> {
        if options.include_deleted {
            let v = self
                .call("HGET", vec![self.counts_key().into(), namespace.into()])
                .await
                .map_err(|e| tag(e, "count"))?;
            return Ok(string_of(&v)
                .and_then(|s| s.parse::<i64>().ok())
                .unwrap_or(0)
                .max(0) as u64);
        }
        let (total, _) = self
            .search_docs(
                &format!("@t_ns:{{{}}} @t_del:{{n}}", token(namespace)),
                vec!["LIMIT".into(), "0".into(), "0".into()],
                false,
            )
            .await
            .map_err(|e| tag(e, "count"))?;
        Ok(total)
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
        let now = Timestamp::now().as_millis().to_string();
        let r = self
            .eval(
                scripts::SUPERSEDE,
                vec![self.key(namespace, id), self.key(namespace, by)],
                vec![namespace.into(), now.into(), by.into(), token(by).into()],
            )
            .await
            .map_err(|e| tag(e, "supersede"))?;
        match r.as_i64() {
            Some(1) => self.get(namespace, id).await,
            Some(-1) => Err(tag(Error::not_found(namespace, by), "supersede")),
            _ => Err(tag(Error::not_found(namespace, id), "supersede")),
        }
    }

    async fn restore(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        let now = Timestamp::now().as_millis().to_string();
        let r = self
            .eval(
                scripts::SUPERSEDE,
                vec![self.key(namespace, id), self.key(namespace, id)],
                vec![namespace.into(), now.into(), "".into(), NONE.into()],
            )
            .await
            .map_err(|e| tag(e, "restore"))?;
        match r.as_i64() {
            Some(1) => self.get(namespace, id).await,
            _ => Err(tag(Error::not_found(namespace, id), "restore")),
        }
    }

    async fn predecessors(&self, namespace: &str, id: &str) -> Result<Vec<MemoryItem>> {
        let query = format!(
            "@t_ns:{{{}}} @t_del:{{n}} @t_supby:{{{}}}",
            token(namespace),
            token(id)
        );
        let docs = self
            .all_docs(&query)
            .await
            .map_err(|e| tag(e, "predecessors"))?;
        let mut out: Vec<MemoryItem> = docs
            .iter()
            .map(Doc::item)
            .collect::<Result<Vec<_>>>()
            .map_err(|e| tag(e, "predecessors"))?
            .into_iter()
            .filter(|i| i.superseded_by.as_deref() == Some(id))
            .collect();
        out.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    async fn reinforce(&self, namespace: &str, ids: &[String], at: Timestamp) -> Result<u64> {
        limits::check_ids("ids", ids).map_err(|e| tag(e, "reinforce"))?;
        let unique: HashSet<&String> = ids.iter().collect();
        let mut n = 0;
        for id in unique {
            // The tier is needed for the TTL: read it, then the script re-checks everything.
            let tier = self
                .call("HGET", vec![self.key(namespace, id).into(), "tier".into()])
                .await
                .map_err(|e| tag(e, "reinforce"))?;
            let ttl = string_of(&tier)
                .and_then(|t| Tier::parse(&t))
                .and_then(Tier::default_ttl)
                .map_or(String::new(), |d| d.as_millis().to_string());
            let r = self
                .eval(
                    scripts::REINFORCE,
                    vec![self.key(namespace, id)],
                    vec![
                        namespace.into(),
                        at.as_millis().to_string().into(),
                        ttl.into(),
                    ],
                )
                .await
                .map_err(|e| tag(e, "reinforce"))?;
            if r.as_i64() == Some(1) {
                n += 1;
            }
        }
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
        let query = format!("@t_ns:{{{}}} @t_del:{{n}}", token(namespace));
        let docs = self
            .all_docs_returning(&query, &["id"])
            .await
            .map_err(|e| tag(e, "decay"))?;
        let mut n = 0;
        for d in docs {
            let Some(id) = d.text("id") else { continue };
            // The script re-checks everything and decays from the current scores.
            let r = self
                .eval(
                    scripts::DECAY,
                    vec![self.key(namespace, &id)],
                    vec![
                        namespace.into(),
                        idle_before.as_millis().to_string().into(),
                        factor.to_string().into(),
                        floor.to_string().into(),
                    ],
                )
                .await
                .map_err(|e| tag(e, "decay"))?;
            if r.as_i64() == Some(1) {
                n += 1;
            }
        }
        Ok(n)
    }

    async fn list_expired(&self, now: Timestamp, limit: usize) -> Result<Vec<ExpiredItem>> {
        let (_, docs) = self
            .search_docs(
                &format!("@exp:[-inf {}]", now.as_millis()),
                vec![
                    "SORTBY".into(),
                    "cat".into(),
                    "ASC".into(),
                    "LIMIT".into(),
                    "0".into(),
                    "10000".into(),
                ],
                false,
            )
            .await
            .map_err(|e| tag(e, "list_expired"))?;
        let mut out: Vec<ExpiredItem> = docs
            .iter()
            .filter_map(|d| {
                Some(ExpiredItem {
                    namespace: d.text("namespace")?,
                    id: d.text("id")?,
                    expires_at: Timestamp::from_millis(d.text("expires_at")?.parse().ok()?),
                })
            })
            .collect();
        out.sort_by(|a, b| {
            a.expires_at
                .cmp(&b.expires_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        out.truncate(limit);
        Ok(out)
    }

    async fn delete_if_expired_before(
        &self,
        namespace: &str,
        id: &str,
        cutoff: Timestamp,
    ) -> Result<()> {
        let n = self
            .eval(
                scripts::DELETE,
                vec![self.key(namespace, id), self.counts_key(), self.lens_key()],
                vec![namespace.into(), cutoff.as_millis().to_string().into()],
            )
            .await
            .map_err(|e| tag(e, "delete_if_expired_before"))?;
        if n.as_i64() != Some(1) {
            return Err(tag(
                Error::not_found(namespace, id).with_context("cutoff", cutoff),
                "delete_if_expired_before",
            ));
        }
        Ok(())
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        let v = self
            .call("HGETALL", vec![self.counts_key().into()])
            .await
            .map_err(|e| tag(e, "list_namespaces"))?;
        let arr = v.into_array();
        let mut out: Vec<String> = arr
            .chunks(2)
            .filter_map(|p| {
                let n = p.get(1).and_then(string_of)?.parse::<i64>().ok()?;
                (n > 0).then(|| p.first().and_then(string_of)).flatten()
            })
            .collect();
        out.sort();
        Ok(out)
    }

    async fn delete_namespace(&self, namespace: &str) -> Result<u64> {
        let docs = self
            .all_docs(&format!("@t_ns:{{{}}}", token(namespace)))
            .await
            .map_err(|e| tag(e, "delete_namespace"))?;
        let mut n = 0;
        for d in docs {
            let Some(id) = d.text("id") else { continue };
            let r = self
                .eval(
                    scripts::DELETE,
                    vec![self.key(namespace, &id), self.counts_key(), self.lens_key()],
                    vec![namespace.into(), "".into()],
                )
                .await
                .map_err(|e| tag(e, "delete_namespace"))?;
            if r.as_i64() == Some(1) {
                n += 1;
            }
        }
        Ok(n)
    }

    async fn reassign(&self, ids: &[String], from: &str, to: &str) -> Result<u64> {
        check_namespace(to).map_err(|e| tag(e, "reassign"))?;
        limits::check_ids("ids", ids).map_err(|e| tag(e, "reassign"))?;
        let unique: Vec<&String> = ids.iter().collect::<BTreeSet<_>>().into_iter().collect();
        let mut keys = Vec::with_capacity(unique.len() * 2 + 2);
        for id in &unique {
            keys.push(self.key(from, id));
            keys.push(self.key(to, id));
        }
        keys.push(self.counts_key());
        keys.push(self.lens_key());
        // One script, so the move is all or nothing: a conflict moves no item.
        let moved = match self
            .eval(
                scripts::REASSIGN,
                keys,
                vec![from.into(), to.into(), token(to).into()],
            )
            .await
        {
            Ok(v) => v,
            Err(e) => {
                let conflicting = e
                    .to_string()
                    .split("CONFLICT ")
                    .nth(1)
                    .map(|rest| {
                        rest.chars()
                            .take_while(char::is_ascii_digit)
                            .collect::<String>()
                    })
                    .and_then(|digits| digits.parse::<usize>().ok())
                    .and_then(|i| unique.get(i.wrapping_sub(1)).copied());
                return Err(tag(
                    match conflicting {
                        Some(id) => reassign_conflict(id, to),
                        None => e,
                    },
                    "reassign",
                ));
            }
        };
        Ok(moved.as_i64().map_or(0, |n| n.max(0) as u64))
    }

    async fn embedding_pin(&self) -> Result<Option<EmbeddingPin>> {
        self.load_pin().await.map_err(|e| tag(e, "embedding_pin"))
    }

    async fn ping(&self) -> Result<()> {
        self.call("PING", vec![])
            .await
            .map_err(|e| tag(e, "ping"))?;
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        let _ = self.pool.quit().await;
        Ok(())
    }
}

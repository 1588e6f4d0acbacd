#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

// What a user of the facade needs, by name, so the facade's surface is a decision rather than
// whatever `memlayer-store` exports (its backend-author surface stays there).
pub use memlayer_store::{
    Capabilities, ClearRequest, CountOptions, Cursor, DEFAULT_CONTEXT_WEIGHT,
    DEFAULT_KEYWORD_WEIGHT, DEFAULT_LIMIT, DEFAULT_POOL_DEPTH, DynStore, EmbeddingPin, Error,
    ErrorKind, ExpiredItem, FieldMatch, Filter, Fusion, HybridOptions, Layer, ListRequest,
    MAX_LIMIT, MAX_OFFSET, MemoryStore, MemoryStoreExt, MetaCondition, MetaOp, Order, Page,
    RankedBy, Result, SearchHit, SearchMode, SearchRequest, SearchResults, SortKey, SortValue,
    TimeRange, files, layer, limits, ranking, redact_url, types,
};

/// Embedders, the embedding cache and the store layer that embeds on write and query.
pub mod embed {
    pub use memlayer_embed::*;
}
pub use memlayer_types::{Embedding, Kind, MemoryItem, Metadata, Status, Tier, Timestamp};

/// The agent-facing layer: conversation windows, long-term memory, extraction, summaries,
/// events and sweeping.
#[cfg(feature = "orchestrator")]
pub mod orchestrator {
    pub use memlayer_orchestrator::*;
}

/// The in-memory backend.
#[cfg(feature = "memory")]
pub mod memory {
    pub use memlayer_store_memory::InMemoryStore;
}

/// The SQLite backend.
#[cfg(feature = "sqlite")]
pub mod sqlite {
    pub use memlayer_store_sqlite::{SqliteConfig, SqliteStore, Synchronous};
}

/// The Postgres backend.
#[cfg(feature = "postgres")]
pub mod postgres {
    pub use memlayer_store_postgres::{KeywordRanking, PostgresConfig, PostgresStore};
}

/// The Redis backend.
#[cfg(feature = "redis")]
pub mod redis {
    pub use memlayer_store_redis::{RedisConfig, RedisStore};
}

/// The Chroma backend.
#[cfg(feature = "chroma")]
pub mod chroma {
    pub use memlayer_store_chroma::{ChromaConfig, ChromaStore};
}

mod lazy;
pub use lazy::LazyStore;

/// How to open a store: the URL plus what the URL cannot say.
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// `memory`, `sqlite`, `sqlite:PATH`, `sqlite::memory:`, `postgres://...`, `redis://...`,
    /// `chroma:http://HOST:PORT`.
    pub url: String,
    /// Embeds items written without a vector and the text of vector and hybrid queries.
    pub embedder: Option<embed::DynEmbedder>,
    /// Where the store lives on a shared server: the Postgres schema, the Redis key prefix,
    /// the Chroma collection prefix (each backend's default when unset).
    pub place: Option<String>,
    /// Pooled connections (Postgres, Redis).
    pub pool_size: Option<usize>,
    /// Connect network backends on first use instead of in `open` (the default).
    pub lazy: bool,
}

/// The URL's credentials never reach a log through `{:?}`.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("url", &redact_url(&self.url))
            .field("place", &self.place)
            .field("pool_size", &self.pool_size)
            .field("lazy", &self.lazy)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// The defaults for `url`: no embedder, the backend's place and pool, lazy.
    pub fn new(url: impl Into<String>) -> Self {
        Config {
            url: url.into(),
            embedder: None,
            place: None,
            pool_size: None,
            lazy: true,
        }
    }

    /// Sets the embedder.
    pub fn embedder(mut self, embedder: embed::DynEmbedder) -> Self {
        self.embedder = Some(embedder);
        self
    }

    /// Sets the place (schema, key prefix or collection prefix).
    pub fn place(mut self, place: impl Into<String>) -> Self {
        self.place = Some(place.into());
        self
    }

    /// Sets the pool size.
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = Some(n);
        self
    }

    /// Connects in `open_with` rather than on first use.
    pub fn eager(mut self) -> Self {
        self.lazy = false;
        self
    }
}

fn invalid_url(url: &str, why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::ConfigInvalid,
        format!("{:?}: {why}", redact_url(url)),
    )
}

/// The backend a URL names, checked for shape without connecting.
fn backend_of(url: &str) -> Result<&'static str> {
    let (scheme, rest) = url.split_once(':').unwrap_or((url, ""));
    let network = |name: &'static str, rest: &str, host: &str| {
        if host.is_empty() || host.starts_with('/') || host.starts_with(':') {
            Err(invalid_url(
                url,
                format!("the {name} URL names no host ({rest:?})"),
            ))
        } else {
            Ok(name)
        }
    };
    match scheme {
        "memory" if rest.is_empty() => Ok("memory"),
        "memory" => Err(invalid_url(url, "the memory backend takes no path")),
        "sqlite" => Ok("sqlite"),
        "postgres" | "postgresql" => match rest.strip_prefix("//") {
            Some(host) => network("postgres", rest, host.rsplit('@').next().unwrap_or("")),
            None => Err(invalid_url(url, "expected postgres://USER@HOST:PORT/DB")),
        },
        "redis" | "rediss" => match rest.strip_prefix("//") {
            Some(host) => network("redis", rest, host.rsplit('@').next().unwrap_or("")),
            None => Err(invalid_url(url, "expected redis://HOST:PORT")),
        },
        "chroma" => match rest
            .strip_prefix("http://")
            .or_else(|| rest.strip_prefix("https://"))
        {
            Some(host) => network("chroma", rest, host),
            None => Err(invalid_url(
                url,
                "expected chroma:http://HOST:PORT (the Chroma server's HTTP address)",
            )),
        },
        other => Err(invalid_url(
            url,
            format!(
                "unknown backend {other:?}; expected memory, sqlite:PATH, postgres://..., redis://... or chroma:http://HOST:PORT"
            ),
        )),
    }
}

fn not_compiled(url: &str, backend: &str) -> Error {
    invalid_url(
        url,
        format!("the {backend} backend is not compiled in (enable the `{backend}` feature)"),
    )
}

/// Opens a store from a URL (see the table above), connecting network backends on first use.
///
/// # Errors
/// `ConfigInvalid` naming what is wrong with the URL, or the backend's open errors.
pub async fn open(url: &str) -> Result<DynStore> {
    open_with(Config::new(url)).await
}

/// Opens the store of `url` with the embedder its pin names, or, for a new store, the default
/// one (all-MiniLM-L6-v2 when it can be found or fetched, see [`embed::embedder_for`]); returns
/// it with one line saying which embedder, for start-up messages.
///
/// # Errors
/// As [`open`], and [`embed::embedder_for`]'s.
pub async fn open_embedded(url: &str) -> Result<(DynStore, String)> {
    let raw = open(url).await?;
    let pin = raw.embedding_pin().await?;
    let (embedder, what) = embed::embedder_for(pin.as_ref()).await?;
    let store = embed::EmbeddingStore::new(raw, embedder).await?;
    Ok((std::sync::Arc::new(store), what))
}

/// Opens a store from a [`Config`].
///
/// # Errors
/// `ConfigInvalid` naming what is wrong with the URL (checked before anything connects), or
/// the backend's open errors (for an eager or embedded store).
pub async fn open_with(config: Config) -> Result<DynStore> {
    let mut config = config;
    config.url = config.url.trim().to_owned();
    let backend = backend_of(&config.url)?;
    match backend {
        "memory" | "sqlite" => connect_now(&config).await,
        _ if config.lazy => Ok(std::sync::Arc::new(LazyStore::new(config, backend))),
        _ => connect_now(&config).await,
    }
}

/// Opens the store of `config` now.
pub(crate) async fn connect_now(config: &Config) -> Result<DynStore> {
    let url = config.url.as_str();
    let (_, rest) = url.split_once(':').unwrap_or((url, ""));
    let store: DynStore = match backend_of(url)? {
        #[cfg(feature = "memory")]
        "memory" => std::sync::Arc::new(memory::InMemoryStore::new()),
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = if path.is_empty() { ":memory:" } else { path };
            std::sync::Arc::new(sqlite::SqliteStore::open(path).await?)
        }
        #[cfg(feature = "postgres")]
        "postgres" => {
            let mut c = postgres::PostgresConfig::new(url);
            if let Some(p) = &config.place {
                c = c.schema(p.clone());
            }
            if let Some(n) = config.pool_size {
                c = c.pool_size(n);
            }
            std::sync::Arc::new(postgres::PostgresStore::connect_with(c).await?)
        }
        #[cfg(feature = "redis")]
        "redis" => {
            let mut c = redis::RedisConfig::new(url);
            if let Some(p) = &config.place {
                c = c.prefix(p.clone());
            }
            if let Some(n) = config.pool_size {
                c = c.pool_size(n);
            }
            std::sync::Arc::new(redis::RedisStore::connect_with(c).await?)
        }
        #[cfg(feature = "chroma")]
        "chroma" => {
            let mut c = chroma::ChromaConfig::new(rest);
            if let Some(p) = &config.place {
                c = c.prefix(p.clone());
            }
            std::sync::Arc::new(chroma::ChromaStore::connect_with(c).await?)
        }
        other => return Err(not_compiled(url, other)),
    };
    match &config.embedder {
        Some(e) => Ok(std::sync::Arc::new(
            embed::EmbeddingStore::new(store, e.clone()).await?,
        )),
        None => Ok(store),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_never_show_credentials() {
        let shown = format!("{:?}", Config::new("postgres://app:s3cret@db:5432/mem"));
        assert!(
            !shown.contains("s3cret") && shown.contains("***@db:5432"),
            "{shown}"
        );
        #[cfg(feature = "postgres")]
        {
            let pg = postgres::PostgresConfig::new("postgres://app:s3cret@db/mem");
            assert!(!format!("{pg:?}").contains("s3cret"));
        }
        #[cfg(feature = "redis")]
        {
            let r = redis::RedisConfig::new("redis://:s3cret@127.0.0.1:6379");
            assert!(!format!("{r:?}").contains("s3cret"));
        }
    }

    #[tokio::test]
    async fn open_resolves_urls() {
        assert_eq!(open("memory").await.unwrap().backend(), "memory");
        assert_eq!(open("sqlite::memory:").await.unwrap().backend(), "sqlite");
        let e = open("mysql://x").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
        assert!(e.to_string().contains("mysql"));
        for bad in [
            "chroma:localhost:8000",
            "postgres:nohost",
            "postgres:///db",
            "redis://",
            "memory:extra",
        ] {
            let e = open(bad).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ConfigInvalid, "{bad}");
            assert!(e.to_string().contains(bad), "{e}");
        }
        assert_eq!(open("sqlite").await.unwrap().backend(), "sqlite");
    }

    /// Nothing listens on port 1: a lazy store opens fine and fails on first use with a
    /// temporary error; an eager one fails in `open_with`.
    #[cfg(feature = "redis")]
    #[tokio::test]
    async fn network_backends_connect_on_first_use() {
        let store = open("redis://127.0.0.1:1").await.unwrap();
        assert_eq!(store.backend(), "redis");
        let e = store
            .count("ns", CountOptions::default())
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.is_temporary());
        let eager = open_with(Config::new("redis://127.0.0.1:1").eager()).await;
        assert!(eager.is_err());
    }
}

#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub use memlayer_store::*;

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

/// Opens a store from a URL (see the table above).
///
/// # Errors
/// `ConfigInvalid` naming what is wrong with the URL, or the backend's open errors.
pub async fn open(url: &str) -> Result<DynStore> {
    let url = url.trim();
    let (scheme, rest) = url.split_once(':').unwrap_or((url, ""));
    match scheme {
        #[cfg(feature = "memory")]
        "memory" if rest.is_empty() => Ok(std::sync::Arc::new(memory::InMemoryStore::new())),
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = if path.is_empty() { ":memory:" } else { path };
            Ok(std::sync::Arc::new(sqlite::SqliteStore::open(path).await?))
        }
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => Ok(std::sync::Arc::new(
            postgres::PostgresStore::connect(url).await?,
        )),
        #[cfg(feature = "redis")]
        "redis" => Ok(std::sync::Arc::new(redis::RedisStore::connect(url).await?)),
        #[cfg(feature = "chroma")]
        "chroma" if rest.starts_with("http://") || rest.starts_with("https://") => Ok(
            std::sync::Arc::new(chroma::ChromaStore::connect(rest).await?),
        ),
        #[allow(unreachable_patterns)]
        "memory" | "sqlite" | "postgres" | "postgresql" | "redis" | "chroma" => Err(Error::new(
            ErrorKind::ConfigInvalid,
            format!(
                "{url:?}: the {scheme} backend is not compiled in (enable the `{scheme}` feature) or the URL has extra parts"
            ),
        )),
        other => Err(Error::new(
            ErrorKind::ConfigInvalid,
            format!(
                "{url:?}: unknown backend {other:?}; expected memory, sqlite:PATH, postgres://..., redis://... or chroma:http://HOST:PORT"
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn open_resolves_urls() {
        assert_eq!(open("memory").await.unwrap().backend(), "memory");
        assert_eq!(open("sqlite::memory:").await.unwrap().backend(), "sqlite");
        let e = open("mysql://x").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
        assert!(e.to_string().contains("mysql"));
        let e = open("chroma:localhost:8000").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
    }
}

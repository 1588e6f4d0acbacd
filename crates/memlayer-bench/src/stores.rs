//! Opens a fresh, empty store of any backend for evaluation and benchmarks.

use anyhow::{Result, bail};
use memlayer::DynStore;

/// The database file of a fresh SQLite store, in its temporary directory.
const SQLITE_FILE: &str = "eval.db";

/// Keeps whatever backs a fresh store (a temporary directory) alive as long as it is held.
pub struct Guard {
    _dir: Option<tempfile::TempDir>,
    chroma: Option<memlayer::chroma::ChromaStore>,
    postgres: Option<memlayer::postgres::PostgresStore>,
    /// The URL of a store that can be opened again on the same files (SQLite).
    url: Option<String>,
}

/// The bytes of the files under `path`, folders included.
fn bytes_under(path: &std::path::Path) -> Option<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(path).ok()? {
        let entry = entry.ok()?;
        let meta = entry.metadata().ok()?;
        total += if meta.is_dir() {
            bytes_under(&entry.path())?
        } else {
            meta.len()
        };
    }
    Some(total)
}

impl Guard {
    fn none() -> Self {
        Guard {
            _dir: None,
            chroma: None,
            postgres: None,
            url: None,
        }
    }

    /// The Postgres store itself, for what only it offers (bulk loads).
    pub fn postgres(&self) -> Option<&memlayer::postgres::PostgresStore> {
        self.postgres.as_ref()
    }

    /// The bytes of the store's local files (SQLite: the database and its saved graphs), if
    /// it has any.
    pub fn disk_bytes(&self) -> Option<u64> {
        bytes_under(self._dir.as_ref()?.path())
    }

    /// The bytes of the saved graphs among the local files.
    pub fn graph_bytes(&self) -> Option<u64> {
        bytes_under(
            &self
                ._dir
                .as_ref()?
                .path()
                .join(format!("{SQLITE_FILE}.graphs")),
        )
    }

    /// The store opened again on the same files, as a restarted process would (SQLite);
    /// `None` for stores that live on a server.
    pub async fn reopen(&self) -> Result<Option<DynStore>> {
        match &self.url {
            Some(url) => Ok(Some(memlayer::open(url).await?)),
            None => Ok(None),
        }
    }

    /// Removes what the store left on its server (Chroma's collections, Postgres' schema;
    /// Redis prefixes are cheap to leave); local files go when the guard drops.
    pub async fn release(self) {
        if let Some(store) = self.chroma {
            let _ = store.destroy().await;
        }
        if let Some(store) = self.postgres
            && let Err(e) = store.destroy().await
        {
            eprintln!("could not drop the Postgres schema: {e}");
        }
    }
}

/// A fresh store of `backend`, empty, with a guard that removes its files when dropped.
pub async fn open_fresh(backend: &str) -> Result<(DynStore, Guard)> {
    match backend {
        "memory" => Ok((memlayer::open("memory").await?, Guard::none())),
        "sqlite" => {
            let dir = tempfile::tempdir()?;
            let url = format!("sqlite:{}", dir.path().join(SQLITE_FILE).display());
            Ok((
                memlayer::open(&url).await?,
                Guard {
                    _dir: Some(dir),
                    chroma: None,
                    postgres: None,
                    url: Some(url),
                },
            ))
        }
        "postgres" => {
            let url = server_url("postgres", "MEMLAYER_POSTGRES_URL")?;
            let schema = format!("eval_{}", uuid::Uuid::now_v7().simple());
            let mut config = memlayer::postgres::PostgresConfig::new(url).schema(schema);
            // `MEMLAYER_EVAL_PG_KEYWORD=ts_rank_cd` measures Postgres' own ranking instead.
            if std::env::var("MEMLAYER_EVAL_PG_KEYWORD").is_ok_and(|v| v == "ts_rank_cd") {
                config = config.keyword_ranking(memlayer::postgres::KeywordRanking::TsRankCd);
            }
            // Bulk loads build the vector index with room for the whole graph (about 2 GB
            // at 1M vectors of 384 dimensions).
            let config = config.index_build_memory_mb(4096);
            let store = memlayer::postgres::PostgresStore::connect_with(config).await?;
            let guard = Guard {
                postgres: Some(store.clone()),
                ..Guard::none()
            };
            Ok((std::sync::Arc::new(store), guard))
        }
        "redis" => {
            let url = server_url("redis", "MEMLAYER_REDIS_URL")?;
            let prefix = format!("eval{}:", uuid::Uuid::now_v7().simple());
            let mut config = memlayer::redis::RedisConfig::new(url).prefix(prefix);
            // `MEMLAYER_EVAL_REDIS_SCORER=BM25` (or TFIDF, ...) measures another engine scorer.
            if let Ok(scorer) = std::env::var("MEMLAYER_EVAL_REDIS_SCORER") {
                config.scorer = scorer;
            }
            let store = memlayer::redis::RedisStore::connect_with(config).await?;
            Ok((std::sync::Arc::new(store), Guard::none()))
        }
        "chroma" => {
            let url = server_url("chroma", "MEMLAYER_CHROMA_URL")?;
            let prefix = format!("eval{}-", uuid::Uuid::now_v7().simple());
            let config = memlayer::chroma::ChromaConfig::new(url).prefix(prefix);
            let store = memlayer::chroma::ChromaStore::connect_with(config).await?;
            let guard = Guard {
                chroma: Some(store.clone()),
                ..Guard::none()
            };
            Ok((std::sync::Arc::new(store), guard))
        }
        other => bail!("backend {other:?} is not available to xtask yet"),
    }
}

/// The URL of a server backend: from its env var, or by starting the service.
pub fn server_url(id: &str, var: &str) -> Result<String> {
    if let Ok(url) = std::env::var(var) {
        return Ok(url);
    }
    let env = crate::services::up(&[id.to_owned()])?;
    env.into_iter()
        .find(|(k, _)| k == var)
        .map(|(_, v)| v)
        .ok_or_else(|| anyhow::anyhow!("starting {id} gave no {var}"))
}

//! The store's handle on its database: opening it, and running reads and write transactions
//! (with the vector index kept in step) on the blocking pool.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use memlayer_ann::{Origin, ScanSharing};
use memlayer_store::{Error, ErrorKind, Result};
use rusqlite::{Connection, TransactionBehavior};

use crate::config::SqliteConfig;
use crate::db;
use crate::error::map_sqlite;
use crate::index;
use crate::index::Change;
use crate::schema;

pub(crate) const BACKEND: &str = "sqlite";

/// A memory store in one SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) db: Arc<db::Db>,
    pub(crate) closed: Arc<AtomicBool>,
    pub(crate) index: Arc<index::SearchIndex>,
}

pub(crate) fn tag(e: Error, operation: &'static str) -> Error {
    e.with_backend(BACKEND).with_operation(operation)
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`; `:memory:` gives a private in-memory one.
    ///
    /// # Errors
    /// `Unavailable` when the file cannot be opened, `ConfigInvalid` when it is not a memlayer
    /// database or comes from a newer version.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        SqliteStore::open_with(SqliteConfig::new(path.as_ref().to_string_lossy())).await
    }

    /// A private in-memory store.
    ///
    /// # Errors
    /// Only if SQLite cannot start.
    pub async fn open_in_memory() -> Result<Self> {
        SqliteStore::open_with(SqliteConfig::new(":memory:")).await
    }

    /// Opens with a full configuration.
    ///
    /// # Errors
    /// As [`SqliteStore::open`], and `ConfigInvalid` when the file is pinned to another
    /// embedding model or dimension than `expected_pin`.
    pub async fn open_with(config: SqliteConfig) -> Result<Self> {
        let path = (config.path != ":memory:").then(|| config.path.clone());
        let graphs = path
            .as_ref()
            .filter(|_| config.save_graphs)
            .map(|p| std::path::PathBuf::from(format!("{p}.graphs")));
        let expected = config.expected_pin.clone();
        let db = db::Db::open(
            path,
            config.readers,
            config.busy_timeout,
            config.synchronous,
            move |conn| {
                schema::migrate(conn)?;
                if let (Some(want), Some(have)) = (&expected, schema::load_pin(conn)?)
                    && *want != have {
                        return Err(Error::new(
                            ErrorKind::ConfigInvalid,
                            format!(
                                "the store is pinned to model {:?} with dimension {}, but {:?} with dimension {} was expected",
                                have.model, have.dim, want.model, want.dim
                            ),
                        ));
                    }
                Ok(())
            },
        )
        .await
        .map_err(|e| tag(e, "open"))?;
        Ok(SqliteStore {
            db: Arc::new(db),
            closed: Arc::new(AtomicBool::new(false)),
            // Searches run on the blocking pool, holding a reader, so exact scans gather.
            index: Arc::new(index::SearchIndex::new(
                config.ann.with_scan_sharing(ScanSharing::Gather),
                graphs,
                config.index_cache_bytes,
            )),
        })
    }

    /// How the vector index of `namespace` was last loaded in this process: exact (below the
    /// ANN threshold), its graph built, or restored from the saved graph; `None` before the
    /// namespace's first vector search.
    pub fn vector_index_origin(&self, namespace: &str) -> Option<Origin> {
        self.index.origin(namespace)
    }

    /// How many namespaces have their in-process indexes in memory: (vector sets, keyword
    /// indexes). Searching a namespace without items loads none.
    pub fn loaded_indexes(&self) -> (usize, usize) {
        self.index.loaded()
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::new(ErrorKind::Unavailable, "the store is closed")
                .with_backend(BACKEND)
                .set_temporary(false));
        }
        Ok(())
    }

    pub(crate) async fn read<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.check_open().map_err(|e| tag(e, op))?;
        self.db.read(f).await.map_err(|e| tag(e, op))
    }

    /// Runs `f` in one immediate transaction on the writer; it commits only if `f` succeeds.
    pub(crate) async fn write_tx<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.check_open().map_err(|e| tag(e, op))?;
        self.db
            .write(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(map_sqlite)?;
                let out = f(&tx)?;
                tx.commit().map_err(map_sqlite)?;
                Ok(out)
            })
            .await
            .map_err(|e| tag(e, op))
    }

    /// As [`SqliteStore::write_tx`], for writes that add, remove or rewrite rows or move them
    /// between namespaces: the changes `f` notes bump the index generation in the same
    /// transaction and reach the in-process indexes under their write lock, taken before the
    /// commit.
    pub(crate) async fn write_indexed_tx<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Connection, &mut Vec<Change>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.check_open().map_err(|e| tag(e, op))?;
        let cache = self.index.clone();
        self.db
            .write(move |conn| {
                let tx = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(map_sqlite)?;
                let mut changes = Vec::new();
                let out = f(&tx, &mut changes)?;
                if changes.is_empty() {
                    tx.commit().map_err(map_sqlite)?;
                    return Ok(out);
                }
                let generation = index::bump_generation(&tx)?;
                let pending = cache.pending();
                tx.commit().map_err(map_sqlite)?;
                pending.apply(generation, changes);
                Ok(out)
            })
            .await
            .map_err(|e| tag(e, op))
    }
}

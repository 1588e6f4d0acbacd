//! How to open a SQLite store: the file, the readers, the sync level and the vector index.

use std::time::Duration;

use memlayer_ann::AnnConfig;
use memlayer_store::EmbeddingPin;

use crate::db::Synchronous;

/// How to open a SQLite store.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SqliteConfig {
    /// A file path, or `:memory:` for a private in-memory database.
    pub path: String,
    /// Reader connections besides the writer (file databases only): how many reads run at
    /// once. The default, 8, is more than the cores because concurrent exact vector searches
    /// of a namespace share passes over its vectors (up to eight queries a pass), and a search
    /// holds its reader while it waits for one: with 4 readers the passes ran about one query
    /// each under load. More readers than that add no throughput here since the exact scan
    /// reads sketches (`memlayer-ann`), and each one more in flight lengthens the tail
    /// latency of every search on the same cores (`docs/benchmarks.md`).
    pub readers: usize,
    /// How long a connection waits for a lock before `Unavailable`.
    pub busy_timeout: Duration,
    /// Sync level of commits.
    pub synchronous: Synchronous,
    /// If set, opening a store pinned to another model or dimension fails fast.
    pub expected_pin: Option<EmbeddingPin>,
    /// The in-process vector index: namespaces of `ann.threshold` vectors or more are
    /// searched through an HNSW graph, smaller ones by an exact scan. Its `scan_sharing` is
    /// always [`ScanSharing::Gather`](memlayer_ann::ScanSharing::Gather) here, as searches
    /// run on the blocking pool.
    pub ann: AnnConfig,
    /// Whether namespaces' HNSW graphs are saved beside a database file (in `<path>.graphs/`)
    /// after they are built and at [`close`](memlayer_store::MemoryStore::close), so that the
    /// next process to search restores them instead of building them again. A saved graph is
    /// checked against the file's vectors when restored; a stale or damaged one costs time,
    /// never results. On by default; `:memory:` databases never save.
    pub save_graphs: bool,
    /// About how many bytes the in-process indexes of all namespaces may take: past it, the
    /// least recently searched namespaces' indexes are dropped (and loaded again from the file
    /// when next searched). The size of each is estimated from its item count and dimension.
    pub index_cache_bytes: usize,
}

impl SqliteConfig {
    /// Defaults for `path`: 8 readers, 5 s busy timeout, full sync.
    pub fn new(path: impl Into<String>) -> Self {
        SqliteConfig {
            path: path.into(),
            readers: 8,
            busy_timeout: Duration::from_secs(5),
            synchronous: Synchronous::Full,
            expected_pin: None,
            ann: AnnConfig::default(),
            save_graphs: true,
            index_cache_bytes: 2 << 30,
        }
    }

    /// Sets the budget of the in-process indexes, in bytes.
    pub fn index_cache_bytes(mut self, bytes: usize) -> Self {
        self.index_cache_bytes = bytes;
        self
    }

    /// Sets whether HNSW graphs are saved beside the file and restored from there.
    pub fn save_graphs(mut self, on: bool) -> Self {
        self.save_graphs = on;
        self
    }

    /// Sets the in-process vector index's configuration.
    pub fn ann(mut self, ann: AnnConfig) -> Self {
        self.ann = ann;
        self
    }

    /// Sets the number of reader connections.
    pub fn readers(mut self, n: usize) -> Self {
        self.readers = n;
        self
    }

    /// Sets the sync level.
    pub fn synchronous(mut self, s: Synchronous) -> Self {
        self.synchronous = s;
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

use serde::{Deserialize, Serialize};

/// What a backend can do. `cargo xtask matrix` renders it into `docs/backends.md`, and the
/// conformance suite skips a scenario whose capability is off, loudly.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// BM25-style keyword search.
    pub keyword_search: bool,
    /// Cosine vector search.
    pub vector_search: bool,
    /// Fused keyword + vector search.
    pub hybrid_search: bool,
    /// `upsert_many` is all-or-nothing.
    pub atomic_batch: bool,
    /// Data survives close and reopen.
    pub persistent: bool,
    /// Keyword ranking is done by the engine (otherwise by memlayer's shared BM25).
    pub native_keyword_ranking: bool,
    /// Vector search uses an approximate index above some size.
    pub approximate_vectors: bool,
    /// Largest accepted `upsert_many` batch.
    pub max_batch: usize,
    /// Largest accepted content, in bytes.
    pub max_content_bytes: usize,
    /// Largest accepted embedding dimension.
    pub max_dimension: usize,
}

impl Capabilities {
    /// Everything on, with the shared limits; backends switch off what they lack.
    pub const fn full() -> Self {
        Capabilities {
            keyword_search: true,
            vector_search: true,
            hybrid_search: true,
            atomic_batch: true,
            persistent: true,
            native_keyword_ranking: false,
            approximate_vectors: false,
            max_batch: crate::limits::MAX_BATCH,
            max_content_bytes: crate::limits::MAX_CONTENT_BYTES,
            max_dimension: crate::limits::MAX_DIMENSION,
        }
    }

    /// The boolean capabilities as (name, value) pairs, in a stable order.
    pub fn flags(&self) -> [(&'static str, bool); 7] {
        [
            ("keyword_search", self.keyword_search),
            ("vector_search", self.vector_search),
            ("hybrid_search", self.hybrid_search),
            ("atomic_batch", self.atomic_batch),
            ("persistent", self.persistent),
            ("native_keyword_ranking", self.native_keyword_ranking),
            ("approximate_vectors", self.approximate_vectors),
        ]
    }

    /// Whether a named boolean capability is on; unknown names are off.
    pub fn has(&self, name: &str) -> bool {
        self.flags()
            .iter()
            .any(|(flag, value)| *flag == name && *value)
    }
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities::full()
    }
}

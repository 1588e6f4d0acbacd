//! How to reach Chroma: the URL, the tenant and database, the collection prefix and the limits.

use std::time::Duration;

use memlayer_store::{Error, ErrorKind, Result};

use crate::client::BACKEND;

/// How to reach Chroma and how to lay the store out there.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ChromaConfig {
    /// `http://host:port` of a Chroma 1.x server (v2 API).
    pub url: String,
    /// Prefix of the store's three collection names (`<prefix>items`, `<prefix>index`,
    /// `<prefix>meta`): letters, digits, `.`, `_` and `-`, starting with a letter or digit.
    pub prefix: String,
    /// The Chroma database (in the default tenant).
    pub database: String,
    /// Per-request timeout; a request that waits longer fails with a temporary `Timeout`.
    pub timeout: Duration,
    /// HNSW `M` of the vector index.
    pub hnsw_m: u32,
    /// HNSW construction ef.
    pub hnsw_construction_ef: u32,
    /// HNSW search ef.
    pub hnsw_search_ef: u32,
    /// When HNSW comes back short and the filter selects at most this many vectors, they are
    /// scored exactly at once (otherwise HNSW is asked for more first).
    pub exact_below: usize,
}

impl ChromaConfig {
    /// Defaults for `url`: prefix `memlayer-`, database `default_database`, 10 s timeout,
    /// HNSW M 16, construction ef 200, search ef 100, exact scoring below 1,000 vectors.
    pub fn new(url: impl Into<String>) -> Self {
        ChromaConfig {
            url: url.into(),
            prefix: "memlayer-".into(),
            database: "default_database".into(),
            timeout: Duration::from_secs(10),
            hnsw_m: 16,
            hnsw_construction_ef: 200,
            hnsw_search_ef: 100,
            exact_below: 1000,
        }
    }

    /// Sets the collection name prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the size under which a short HNSW answer is replaced by an exact scan at once (0
    /// makes HNSW retry with larger requests first, the exact scan being the last resort).
    pub fn exact_below(mut self, n: usize) -> Self {
        self.exact_below = n;
        self
    }

    /// Sets the request timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        let starts_ok = self
            .prefix
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
        if !starts_ok || !self.prefix.chars().all(ok_char) || self.prefix.len() > 400 {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!(
                    "chroma prefix {:?} must start with a letter or digit and hold only letters, \
                     digits, '.', '_' and '-' (at most 400 characters)",
                    self.prefix
                ),
            )
            .with_backend(BACKEND));
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!(
                    "chroma url {:?} must start with http:// or https://",
                    self.url
                ),
            )
            .with_backend(BACKEND));
        }
        Ok(())
    }
}

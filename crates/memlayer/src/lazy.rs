//! A store that connects on first use, once, under a lock; a failed connect is retried by the
//! next call rather than remembered.

use async_trait::async_trait;
use memlayer_store::{Capabilities, DynStore, Layer, Result};
use tokio::sync::OnceCell;

use crate::Config;

/// A network store opened on first use.
#[derive(Debug)]
pub struct LazyStore {
    config: Config,
    backend: &'static str,
    inner: OnceCell<DynStore>,
}

impl LazyStore {
    pub(crate) fn new(config: Config, backend: &'static str) -> Self {
        LazyStore {
            config,
            backend,
            inner: OnceCell::new(),
        }
    }

    /// A store that opens `config` on first use (any backend; [`crate::open`] makes one for the
    /// network backends unless told to connect at once).
    ///
    /// # Errors
    /// `ConfigInvalid` naming what is wrong with the URL; nothing connects yet.
    pub fn lazily(config: Config) -> Result<Self> {
        let backend = crate::backend_of(config.url.trim())?;
        Ok(LazyStore::new(config, backend))
    }

    /// The store, connecting now if this is the first use.
    ///
    /// # Errors
    /// The backend's connect errors (`Unavailable`, `ConfigInvalid`).
    pub async fn connected(&self) -> Result<&DynStore> {
        self.inner
            .get_or_try_init(|| crate::connect_now(&self.config))
            .await
    }

    /// Whether the first connect has happened.
    pub fn is_connected(&self) -> bool {
        self.inner.initialized()
    }
}

#[async_trait]
impl Layer for LazyStore {
    fn beneath(&self) -> Option<&DynStore> {
        self.inner.get()
    }

    async fn connect_beneath(&self) -> Result<&DynStore> {
        self.connected().await
    }

    fn backend(&self) -> &'static str {
        self.backend
    }

    /// The connected store's capabilities; before the first connect, the shared defaults with
    /// the backend's known differences (see `docs/backends.md`).
    fn capabilities(&self) -> Capabilities {
        match self.inner.get() {
            Some(s) => s.capabilities(),
            None => {
                let mut c = Capabilities::full();
                c.approximate_vectors = true;
                c
            }
        }
    }

    /// Closes the store if it was ever connected.
    async fn close(&self) -> Result<()> {
        match self.inner.get() {
            Some(s) => s.close().await,
            None => Ok(()),
        }
    }
}

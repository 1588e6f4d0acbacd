//! A store layer that times every operation into the server's metrics, labelled by backend
//! and operation.

use std::sync::Arc;
use std::time::Duration;

use memlayer::{DynStore, Layer};

use crate::metrics::Metrics;

#[derive(Debug)]
pub(crate) struct MeteredStore {
    pub(crate) inner: DynStore,
    pub(crate) metrics: Arc<Metrics>,
}

impl Layer for MeteredStore {
    fn beneath(&self) -> Option<&DynStore> {
        Some(&self.inner)
    }

    fn observe(&self, operation: &'static str, elapsed: Duration, ok: bool) {
        self.metrics
            .observe_store(self.inner.backend(), operation, elapsed, ok);
    }
}

#[cfg(test)]
mod tests {
    //! The conformance suite over the workspace's semantics-preserving layers stacked on the
    //! memory backend: metrics over events over a lazy connection. Each forwards what it does
    //! not change through [`Layer`]'s defaults, so the stack must pass every scenario the bare
    //! backend passes. (`EmbeddingStore` embeds writes and queries by design, so it changes
    //! what the scenarios observe; its own tests cover it.)
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::sync::Arc;

    use memlayer::orchestrator::EventStore;
    use memlayer::{Config, DynStore, LazyStore};
    use memlayer_conformance::FnHarness;

    use super::MeteredStore;
    use crate::metrics::Metrics;

    memlayer_conformance::suite!(memory_layered, || FnHarness::new(|| async {
        let lazy: DynStore =
            Arc::new(LazyStore::lazily(Config::new("memory")).map_err(|e| e.to_string())?);
        let events: DynStore = Arc::new(EventStore::new(lazy, 64));
        Ok(Arc::new(MeteredStore {
            inner: events,
            metrics: Arc::new(Metrics::default()),
        }) as DynStore)
    }));
}

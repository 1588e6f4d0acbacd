//! The conformance suite on the in-memory backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use memlayer_conformance::FnHarness;
use memlayer_store::DynStore;
use memlayer_store_memory::InMemoryStore;

memlayer_conformance::suite!(memory, || FnHarness::new(|| async {
    Ok(Arc::new(InMemoryStore::new()) as DynStore)
}));

// The same suite with every namespace on the HNSW graph from its first vector, so the graph
// path (filtered search, widening, exact fallback, ties) meets every scenario too.
memlayer_conformance::suite!(memory_hnsw, || FnHarness::new(|| async {
    Ok(Arc::new(InMemoryStore::with_ann(
        memlayer_store_memory::AnnConfig::default().with_threshold(1),
    )) as DynStore)
}));

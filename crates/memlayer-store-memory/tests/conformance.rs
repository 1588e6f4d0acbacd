//! The conformance suite on the in-memory backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use memlayer_conformance::FnHarness;
use memlayer_store::DynStore;
use memlayer_store_memory::InMemoryStore;

memlayer_conformance::suite!(memory, || FnHarness::new(|| async {
    Ok(Arc::new(InMemoryStore::new()) as DynStore)
}));

//! The conformance suite on Chroma: every test gets its own collection prefix on the server
//! named by `MEMLAYER_CHROMA_URL` (started by `cargo xtask services up chroma`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use memlayer_conformance::ServerHarness;
use memlayer_store::DynStore;
use memlayer_store_chroma::{ChromaConfig, ChromaStore};

fn prefix_harness() -> ServerHarness {
    let prefix = format!("t{}-", uuid::Uuid::now_v7().simple());
    ServerHarness::new(
        "MEMLAYER_CHROMA_URL",
        "chroma",
        prefix,
        |url, prefix| async move {
            // Every vector search goes through HNSW, so the suite covers the index path and
            // its exact fallback, not only the exact scan small stores get by default.
            let config = ChromaConfig::new(url).prefix(prefix).exact_below(0);
            let store = ChromaStore::connect_with(config)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(store) as DynStore)
        },
    )
    .dropping(|url, prefix| async move {
        let config = ChromaConfig::new(url).prefix(prefix);
        if let Ok(store) = ChromaStore::connect_with(config).await {
            let _ = store.destroy().await;
        }
    })
}

memlayer_conformance::suite!(chroma, prefix_harness);

//! The conformance suite on Chroma: every test gets its own collection prefix on the server
//! named by `MEMLAYER_CHROMA_URL` (started by `cargo xtask services up chroma`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use async_trait::async_trait;
use memlayer_conformance::Harness;
use memlayer_store::DynStore;
use memlayer_store_chroma::{ChromaConfig, ChromaStore};

struct PrefixHarness {
    prefix: String,
}

#[async_trait]
impl Harness for PrefixHarness {
    async fn open(&self) -> Result<DynStore, String> {
        let url = std::env::var("MEMLAYER_CHROMA_URL")
            .map_err(|_| "set MEMLAYER_CHROMA_URL (cargo xtask services up chroma)".to_owned())?;
        // Every vector search goes through HNSW, so the suite covers the index path and its
        // exact fallback, not only the exact scan small stores get by default.
        let config = ChromaConfig::new(url)
            .prefix(self.prefix.clone())
            .exact_below(0);
        let store = ChromaStore::connect_with(config)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(store))
    }

    async fn cleanup(&self) {
        if let Ok(url) = std::env::var("MEMLAYER_CHROMA_URL") {
            let config = ChromaConfig::new(url).prefix(self.prefix.clone());
            if let Ok(store) = ChromaStore::connect_with(config).await {
                let _ = store.destroy().await;
            }
        }
    }
}

fn prefix_harness() -> PrefixHarness {
    PrefixHarness {
        prefix: format!("t{}-", uuid::Uuid::now_v7().simple()),
    }
}

memlayer_conformance::suite!(chroma, prefix_harness);

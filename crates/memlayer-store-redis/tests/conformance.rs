//! The conformance suite on Redis: every test gets its own key prefix and index on the server
//! named by `MEMLAYER_REDIS_URL` (started by `cargo xtask services up redis`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use async_trait::async_trait;
use memlayer_conformance::Harness;
use memlayer_store::DynStore;
use memlayer_store_redis::{RedisConfig, RedisStore};

struct PrefixHarness {
    prefix: String,
}

#[async_trait]
impl Harness for PrefixHarness {
    async fn open(&self) -> Result<DynStore, String> {
        let url = std::env::var("MEMLAYER_REDIS_URL")
            .map_err(|_| "set MEMLAYER_REDIS_URL (cargo xtask services up redis)".to_owned())?;
        let config = RedisConfig::new(url)
            .prefix(self.prefix.clone())
            .pool_size(2);
        let store = RedisStore::connect_with(config)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(store))
    }
}

fn prefix_harness() -> PrefixHarness {
    PrefixHarness {
        prefix: format!("t{}:", uuid::Uuid::now_v7().simple()),
    }
}

memlayer_conformance::suite!(redis, prefix_harness);

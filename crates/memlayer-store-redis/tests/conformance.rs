//! The conformance suite on Redis: every test gets its own key prefix and index on the server
//! named by `MEMLAYER_REDIS_URL` (started by `cargo xtask services up redis`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use memlayer_conformance::ServerHarness;
use memlayer_store::DynStore;
use memlayer_store_redis::{RedisConfig, RedisStore};

fn prefix_harness() -> ServerHarness {
    let prefix = format!("t{}:", uuid::Uuid::now_v7().simple());
    ServerHarness::new(
        "MEMLAYER_REDIS_URL",
        "redis",
        prefix,
        |url, prefix| async move {
            let config = RedisConfig::new(url).prefix(prefix).pool_size(2);
            let store = RedisStore::connect_with(config)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(store) as DynStore)
        },
    )
}

memlayer_conformance::suite!(redis, prefix_harness);

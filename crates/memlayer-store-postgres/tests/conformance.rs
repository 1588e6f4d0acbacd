//! The conformance suite on Postgres: every test gets its own schema on the server named by
//! `MEMLAYER_POSTGRES_URL` (started by `cargo xtask services up postgres`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use memlayer_conformance::ServerHarness;
use memlayer_store::DynStore;
use memlayer_store_postgres::{PostgresConfig, PostgresStore};

fn schema_harness() -> ServerHarness {
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    ServerHarness::new(
        "MEMLAYER_POSTGRES_URL",
        "postgres",
        schema,
        |url, schema| async move {
            let config = PostgresConfig::new(url).schema(schema).pool_size(4);
            let store = PostgresStore::connect_with(config)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(store) as DynStore)
        },
    )
    .dropping(|url, schema| async move {
        let config = PostgresConfig::new(url).schema(schema);
        if let Ok(store) = PostgresStore::connect_with(config).await {
            let _ = store.destroy().await;
        }
    })
}

memlayer_conformance::suite!(postgres, schema_harness);

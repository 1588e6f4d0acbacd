//! The conformance suite on Postgres: every test gets its own schema on the server named by
//! `MEMLAYER_POSTGRES_URL` (started by `cargo xtask services up postgres`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use async_trait::async_trait;
use memlayer_conformance::Harness;
use memlayer_store::DynStore;
use memlayer_store_postgres::{PostgresConfig, PostgresStore};

struct SchemaHarness {
    schema: String,
}

#[async_trait]
impl Harness for SchemaHarness {
    async fn open(&self) -> Result<DynStore, String> {
        let url = std::env::var("MEMLAYER_POSTGRES_URL").map_err(|_| {
            "set MEMLAYER_POSTGRES_URL (cargo xtask services up postgres)".to_owned()
        })?;
        let config = PostgresConfig::new(url)
            .schema(self.schema.clone())
            .pool_size(4);
        let store = PostgresStore::connect_with(config)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(store))
    }

    async fn cleanup(&self) {
        if let Ok(url) = std::env::var("MEMLAYER_POSTGRES_URL") {
            let config = PostgresConfig::new(url).schema(self.schema.clone());
            if let Ok(store) = PostgresStore::connect_with(config).await {
                let _ = store.destroy().await;
            }
        }
    }
}

fn schema_harness() -> SchemaHarness {
    SchemaHarness {
        schema: format!("t_{}", uuid::Uuid::now_v7().simple()),
    }
}

memlayer_conformance::suite!(postgres, schema_harness);

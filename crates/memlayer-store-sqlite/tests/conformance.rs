//! The conformance suite on the SQLite backend: every test gets its own database file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use async_trait::async_trait;
use memlayer_conformance::Harness;
use memlayer_store::DynStore;
use memlayer_store_sqlite::{AnnConfig, SqliteConfig, SqliteStore};

struct FileHarness {
    dir: tempfile::TempDir,
    ann: AnnConfig,
}

#[async_trait]
impl Harness for FileHarness {
    async fn open(&self) -> Result<DynStore, String> {
        let path = self.dir.path().join("memlayer.db");
        let store = SqliteStore::open_with(SqliteConfig::new(path.to_string_lossy()).ann(self.ann))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(store))
    }
}

fn file_harness() -> FileHarness {
    FileHarness {
        dir: tempfile::tempdir().expect("a temporary directory"),
        ann: AnnConfig::default(),
    }
}

/// Every namespace on the HNSW graph from its first vector.
fn hnsw_harness() -> FileHarness {
    FileHarness {
        dir: tempfile::tempdir().expect("a temporary directory"),
        ann: AnnConfig::default().with_threshold(1),
    }
}

memlayer_conformance::suite!(sqlite, file_harness);
memlayer_conformance::suite!(sqlite_hnsw, hnsw_harness);

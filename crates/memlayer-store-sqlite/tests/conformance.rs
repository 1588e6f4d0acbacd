//! The conformance suite on the SQLite backend: every test gets its own database file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use async_trait::async_trait;
use memlayer_conformance::Harness;
use memlayer_store::DynStore;
use memlayer_store_sqlite::SqliteStore;

struct FileHarness {
    dir: tempfile::TempDir,
}

#[async_trait]
impl Harness for FileHarness {
    async fn open(&self) -> Result<DynStore, String> {
        let store = SqliteStore::open(self.dir.path().join("memlayer.db"))
            .await
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(store))
    }
}

fn file_harness() -> FileHarness {
    FileHarness {
        dir: tempfile::tempdir().expect("a temporary directory"),
    }
}

memlayer_conformance::suite!(sqlite, file_harness);

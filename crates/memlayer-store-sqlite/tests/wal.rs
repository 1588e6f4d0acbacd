//! The write-ahead log: checkpointed into the file by the store's checkpoint thread while it
//! writes, and folded in when the store closes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;
use std::time::{Duration, Instant};

use memlayer_store::types::{Kind, MemoryItem};
use memlayer_store::{CountOptions, MemoryStore};
use memlayer_store_sqlite::SqliteStore;

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_is_checkpointed_while_writing_and_folded_in_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let wal = dir.path().join("m.db-wal");
    let store = SqliteStore::open(&path).await.unwrap();
    // 10,000 items of about 1.7 KB (a 384-d vector each): about 4,000 pages of log, four
    // times the size at which the checkpoint thread is woken.
    for batch in 0..20 {
        let items = (0..500)
            .map(|i| {
                let n = batch * 500 + i;
                let v: Vec<f32> = (0..384).map(|d| ((n * 31 + d) % 97) as f32 + 1.0).collect();
                MemoryItem::new("ns", Kind::Fact, format!("item {n}"))
                    .with_id(format!("i{n:05}"))
                    .with_embedding("test/384", v)
            })
            .collect();
        store.upsert_many(items).await.unwrap();
    }
    // Without checkpoints the database file would stay at its first few pages until close.
    let deadline = Instant::now() + Duration::from_secs(30);
    while size(&path) < 8_000_000 {
        assert!(
            Instant::now() < deadline,
            "no checkpoint while open: file {} bytes, log {} bytes",
            size(&path),
            size(&wal)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    store.close().await.unwrap();
    // The writer's connection was the last one open: it folded the log in and removed it.
    assert!(
        !wal.exists(),
        "the log outlived the store: {} bytes",
        size(&wal)
    );
    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        reopened.count("ns", CountOptions::default()).await.unwrap(),
        10_000
    );
    reopened.close().await.unwrap();
}

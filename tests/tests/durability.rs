//! Every write the SQLite store acknowledged survives a SIGKILL of the writing process, and the
//! file passes `PRAGMA integrity_check`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use memlayer::{CountOptions, MemoryStore, SearchRequest};

#[tokio::test]
async fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("durable.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_durability-writer"))
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        acked.push(line.strip_prefix("ack ").unwrap().to_owned());
        // Kill mid-stream, at an odd point so that a batch or a single write is in flight.
        if acked.len() >= 733 {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();

    let conn = rusqlite::Connection::open(&path).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);

    let store = memlayer::sqlite::SqliteStore::open(&path).await.unwrap();
    for id in &acked {
        let item = store.get("durability", id).await.unwrap();
        assert_eq!(
            item.embedding.unwrap().vector.len(),
            4,
            "{id} lost its vector"
        );
    }
    let n = store
        .count("durability", CountOptions::live())
        .await
        .unwrap();
    assert!(
        n >= acked.len() as u64,
        "{n} stored < {} acknowledged",
        acked.len()
    );
    let hits = store
        .search(
            "durability",
            &SearchRequest::keyword("acknowledged").with_limit(5),
        )
        .await
        .unwrap();
    assert_eq!(hits.hits.len(), 5, "the full-text index survived too");
}

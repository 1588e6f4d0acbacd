//! Batched ingest into a fresh SQLite file, for profiling the write path on its own:
//! the bench's kind of items (eight words, a user, a 384-d vector), in batches of 1,000.
//!
//!     cargo run --release -p memlayer-store-sqlite --example ingest -- [ITEMS] [with|without] [SEARCHES]
//!
//! `without` leaves the vectors out, to separate the row cost from the vector cost. Then
//! SEARCHES keyword searches (300 by default) are timed, one at a time.

use std::time::Instant;

use memlayer_ann::synthetic::{Clustered, Rng};
use memlayer_store::MemoryStore;
use memlayer_store::types::{Kind, MemoryItem};
use memlayer_store_sqlite::{SqliteConfig, SqliteStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let with_vectors = args.next().as_deref() != Some("without");
    let searches: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(300);
    let dir = std::env::temp_dir().join(format!("memlayer-ingest-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("ingest.db");
    let store = SqliteStore::open_with(SqliteConfig::new(path.to_string_lossy())).await?;
    let mut rng = Rng::new(1);
    let mut vectors = Clustered::new(384, 1000, 4);
    let items: Vec<MemoryItem> = (0..n)
        .map(|i| {
            let text: Vec<String> = (0..8).map(|_| format!("w{}", rng.zipf(5000))).collect();
            let item = MemoryItem::new("ns", Kind::Fact, text.join(" "))
                .with_id(format!("i{i:07}"))
                .with_user(if i % 100 == 7 { "rare" } else { "common" });
            if with_vectors {
                item.with_embedding("synthetic-384", vectors.next_vector())
            } else {
                item
            }
        })
        .collect();
    let started = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    for item in items {
        batch.push(item);
        if batch.len() == 1000 {
            store.upsert_many(std::mem::take(&mut batch)).await?;
        }
    }
    if !batch.is_empty() {
        store.upsert_many(batch).await?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{n} items ({}) in {secs:.2} s: {:.0} items/s",
        if with_vectors {
            "with vectors"
        } else {
            "without vectors"
        },
        n as f64 / secs
    );
    // Keyword searches after the ingest, as the bench asks them (two mid-frequency words).
    let mut times = Vec::new();
    for q in 0..searches.max(51) {
        let text = format!("w{} w{}", 20 + rng.zipf(400), 20 + rng.zipf(400));
        let t = Instant::now();
        store
            .search("ns", &memlayer_store::SearchRequest::keyword(text))
            .await?;
        if q >= 50 {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    println!("keyword search p50 {:.3} ms", times[times.len() / 2]);
    store.close().await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

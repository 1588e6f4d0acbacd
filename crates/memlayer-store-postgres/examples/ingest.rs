//! Batched ingest into a fresh schema, for profiling the write path on its own: the bench's
//! kind of items (eight words, a user, a 384-d vector), in batches of 1,000.
//!
//!     MEMLAYER_POSTGRES_URL=postgres://... \
//!     cargo run --release -p memlayer-store-postgres --example ingest -- [ITEMS] [with|without]
//!
//! The schema (`ingest_<pid>`) is dropped at the end.

use std::time::Instant;

use memlayer_ann::synthetic::{Clustered, Rng};
use memlayer_store::MemoryStore;
use memlayer_store::types::{Kind, MemoryItem};
use memlayer_store_postgres::{PostgresConfig, PostgresStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let with_vectors = args.next().as_deref() != Some("without");
    let url = std::env::var("MEMLAYER_POSTGRES_URL")?;
    let schema = format!("ingest_{}", std::process::id());
    let store =
        PostgresStore::connect_with(PostgresConfig::new(url.clone()).schema(schema.clone()))
            .await?;
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
    for (b, chunk) in items.chunks(1000).enumerate() {
        let t = Instant::now();
        store.upsert_many(chunk.to_vec()).await?;
        eprintln!("batch {b}: {:.0} ms", t.elapsed().as_secs_f64() * 1e3);
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
    store.close().await?;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await?;
    Ok(())
}

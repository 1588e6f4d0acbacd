//! Writes items to a SQLite store as fast as it can and prints `ack <id>` after each write the
//! store acknowledged. The durability test kills it with SIGKILL mid-stream.

use std::io::Write;

use memlayer::{Kind, MemoryItem, MemoryStore, Tier};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: durability-writer DB_PATH")?;
    let store = memlayer::sqlite::SqliteStore::open(&path).await?;
    let mut out = std::io::stdout().lock();
    let item = |i: u64| {
        MemoryItem::new(
            "durability",
            Kind::Fact,
            format!("acknowledged write number {i}"),
        )
        .with_id(format!("w{i:06}"))
        .with_tier(Tier::Semantic)
        .with_embedding("durability-model", vec![i as f32, 1.0, 0.5, 0.25])
    };
    let mut i = 0u64;
    loop {
        if i.is_multiple_of(10) {
            // Every tenth step is a batch of ten, acknowledged as a whole.
            let batch: Vec<MemoryItem> = (i..i + 10).map(item).collect();
            store.upsert_many(batch).await?;
            for j in i..i + 10 {
                writeln!(out, "ack w{j:06}")?;
            }
            i += 10;
        } else {
            store.upsert(item(i)).await?;
            writeln!(out, "ack w{i:06}")?;
            i += 1;
        }
        out.flush()?;
    }
}

//! Batched ingest into a fresh store, then keyword searches one at a time: for profiling a
//! backend's write and search paths on their own (then vector searches, when the items have
//! vectors), with the bench's kind of items (eight
//! words, a user, a 384-d vector) in batches of 1,000.
//!
//!     cargo run --release -p memlayer --example ingest -- sqlite|memory [ITEMS] [with|without] [SEARCHES]
//!     MEMLAYER_POSTGRES_URL=postgres://... \
//!     cargo run --release -p memlayer --features postgres --example ingest -- postgres ...
//!
//! `without` leaves the vectors out, to separate the row cost from the vector cost. SQLite
//! writes a file in a fresh temporary directory; Postgres a schema of its own
//! (`ingest_<pid>`), emptied at the end unless `MEMLAYER_INGEST_KEEP=1`. SEARCHES defaults
//! to 300.

use std::time::Instant;

use memlayer::{DynStore, Filter, Kind, MemoryItem, SearchRequest};
use memlayer_ann::synthetic::{Clustered, Rng};

async fn open(backend: &str) -> Result<(DynStore, Option<std::path::PathBuf>), memlayer::Error> {
    match backend {
        "memory" => Ok((memlayer::open("memory").await?, None)),
        "sqlite" => {
            let dir = std::env::temp_dir().join(format!("memlayer-ingest-{}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| {
                memlayer::Error::new(memlayer::ErrorKind::Unavailable, e.to_string())
            })?;
            let url = format!("sqlite:{}", dir.join("ingest.db").display());
            Ok((memlayer::open(&url).await?, Some(dir)))
        }
        #[cfg(feature = "postgres")]
        "postgres" => {
            let url = std::env::var("MEMLAYER_POSTGRES_URL").map_err(|_| {
                memlayer::Error::new(
                    memlayer::ErrorKind::ConfigInvalid,
                    "MEMLAYER_POSTGRES_URL is not set",
                )
            })?;
            let config = memlayer::postgres::PostgresConfig::new(url)
                .schema(format!("ingest_{}", std::process::id()));
            let store = memlayer::postgres::PostgresStore::connect_with(config).await?;
            Ok((std::sync::Arc::new(store), None))
        }
        other => Err(memlayer::Error::new(
            memlayer::ErrorKind::ConfigInvalid,
            format!("backend {other:?}: sqlite, or postgres with --features postgres"),
        )),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "sqlite".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let with_vectors = args.next().as_deref() != Some("without");
    let searches: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(300);
    let (store, dir) = open(&backend).await?;
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
    for chunk in items.chunks(1000) {
        store.upsert_many(chunk.to_vec()).await?;
    }
    let secs = started.elapsed().as_secs_f64();
    let kind = if with_vectors {
        "with vectors"
    } else {
        "without vectors"
    };
    println!(
        "{backend}: {n} items ({kind}) in {secs:.2} s: {:.0} items/s",
        n as f64 / secs
    );
    // Keyword searches as the bench asks them (two mid-frequency words); the first 50 warm up.
    let mut times = Vec::new();
    for q in 0..searches.max(51) {
        let text = format!("w{} w{}", 20 + rng.zipf(400), 20 + rng.zipf(400));
        let t = Instant::now();
        store.search("ns", &SearchRequest::keyword(text)).await?;
        if q >= 50 {
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.sort_by(f64::total_cmp);
    println!("keyword search p50 {:.3} ms", times[times.len() / 2]);
    if with_vectors {
        // Vector searches under the bench's all-pass filter (kind `fact`), after the first
        // one, which may build the namespace's index, and 50 more to warm up.
        let filter = Filter::new().kind(Kind::Fact);
        let mut queries = vectors.reseeded(2);
        let search = |v: Vec<f32>| {
            SearchRequest::vector(v)
                .with_filter(filter.clone())
                .with_limit(10)
        };
        let t = Instant::now();
        store.search("ns", &search(queries.next_vector())).await?;
        println!("first vector search {:.2} s", t.elapsed().as_secs_f64());
        let mut times = Vec::new();
        for q in 0..searches.max(51) {
            let request = search(queries.next_vector());
            let t = Instant::now();
            store.search("ns", &request).await?;
            if q >= 50 {
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        times.sort_by(f64::total_cmp);
        println!("vector search p50 {:.3} ms", times[times.len() / 2]);
    }
    // `MEMLAYER_INGEST_KEEP=1` keeps what was written, to look at afterwards.
    if std::env::var("MEMLAYER_INGEST_KEEP").is_ok_and(|v| v == "1") {
        store.close().await?;
        if let Some(dir) = dir {
            println!("kept {}", dir.display());
        }
        return Ok(());
    }
    store.delete_namespace("ns").await?;
    store.close().await?;
    if let Some(dir) = dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}

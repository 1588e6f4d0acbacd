//! Shared parts of the server backends' fault tests: the data written before a fault, and
//! the traffic that runs through it.

use std::time::{Duration, Instant};

use memlayer_store::types::{Kind, MemoryItem, Tier};
use memlayer_store::{MemoryStore, SearchRequest};

/// How many facts [`seed`] writes.
pub const SEEDED: usize = 20;

/// Writes the facts `f0..f19` ("resilient fact number i") into `ns`.
///
/// # Panics
/// When a write fails: the fault has not happened yet.
pub async fn seed(store: &dyn MemoryStore, ns: &str) {
    for i in 0..SEEDED {
        let item = MemoryItem::new(ns, Kind::Fact, format!("resilient fact number {i}"))
            .with_id(format!("f{i}"))
            .with_tier(Tier::Semantic);
        if let Err(e) = store.upsert(item).await {
            panic!("seeding before the fault failed: {e}");
        }
    }
}

/// Alternates reads and keyword searches of the seeded facts until 20 in a row succeed,
/// returning (succeeded, failed). Every success must be the right answer and every failure
/// temporary; recovery must come within `limit`.
///
/// # Panics
/// On a wrong answer, a permanent error, or no recovery within `limit`.
pub async fn traffic_until_recovered(
    store: &dyn MemoryStore,
    ns: &str,
    limit: Duration,
) -> (u64, u64) {
    let (mut ok, mut failed) = (0u64, 0u64);
    let started = Instant::now();
    let mut streak = 0;
    let mut n = 0usize;
    while streak < 20 {
        assert!(started.elapsed() < limit, "the client never recovered");
        n += 1;
        let i = n % SEEDED;
        let outcome = if n.is_multiple_of(2) {
            store.get(ns, &format!("f{i}")).await.map(|item| {
                assert_eq!(
                    item.content,
                    format!("resilient fact number {i}"),
                    "a wrong answer"
                );
            })
        } else {
            store
                .search(ns, &SearchRequest::keyword("resilient").with_limit(5))
                .await
                .map(|r| assert_eq!(r.hits.len(), 5, "a wrong answer"))
        };
        match outcome {
            Ok(()) => {
                ok += 1;
                streak += 1;
            }
            Err(e) => {
                assert!(
                    e.is_temporary(),
                    "a restart must give temporary errors: {e}"
                );
                failed += 1;
                streak = 0;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    (ok, failed)
}

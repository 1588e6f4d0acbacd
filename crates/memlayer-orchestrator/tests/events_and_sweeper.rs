//! Events and the sweeper over real stores (memory and SQLite).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use memlayer_orchestrator::{EventSink, EventStore, MemoryEvent, SweepReport, Sweeper};
use memlayer_store::types::{Kind, MemoryItem, Tier, Timestamp};
use memlayer_store::{ClearRequest, DynStore, ErrorKind, Filter, MemoryStore, SearchRequest};
use memlayer_store_memory::InMemoryStore;
use memlayer_store_sqlite::SqliteStore;

#[derive(Debug, Default)]
struct Collect(Mutex<Vec<MemoryEvent>>);

#[async_trait]
impl EventSink for Collect {
    async fn deliver(&self, event: &MemoryEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

fn fact(id: &str, text: &str) -> MemoryItem {
    MemoryItem::new("ev", Kind::Fact, text)
        .with_id(id)
        .with_tier(Tier::Semantic)
}

async fn events(store: DynStore) {
    let emitter = EventStore::new(store, 64);
    let sink = Arc::new(Collect::default());
    emitter.add_sink(sink.clone());
    let mut rx = emitter.subscribe();
    emitter.upsert(fact("a", "alpha")).await.unwrap();
    emitter
        .upsert_many(vec![fact("a", "alpha two"), fact("b", "beta")])
        .await
        .unwrap();
    emitter
        .search("ev", &SearchRequest::keyword("beta"))
        .await
        .unwrap();
    emitter
        .clear(
            "ev",
            &ClearRequest::matching(Filter::new().kind(Kind::Fact)),
        )
        .await
        .unwrap();
    emitter.delete("ev", "a").await.unwrap();
    // A failed operation publishes nothing.
    assert_eq!(
        emitter.delete("ev", "a").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let want = vec![
        MemoryEvent::Added {
            namespace: "ev".into(),
            ids: ids(&["a"]),
        },
        MemoryEvent::Added {
            namespace: "ev".into(),
            ids: ids(&["b"]),
        },
        MemoryEvent::Updated {
            namespace: "ev".into(),
            ids: ids(&["a"]),
        },
        MemoryEvent::Searched {
            namespace: "ev".into(),
            ids: ids(&["b"]),
        },
        MemoryEvent::Cleared {
            namespace: "ev".into(),
            count: 2,
        },
        MemoryEvent::Deleted {
            namespace: "ev".into(),
            ids: ids(&["a"]),
            count: 1,
        },
    ];
    assert_eq!(*sink.0.lock().unwrap(), want);
    let mut got = Vec::new();
    while let Ok(e) = rx.try_recv() {
        got.push(e);
    }
    assert_eq!(got, want);
}

async fn sweeping(store: DynStore) {
    let emitter = Arc::new(EventStore::new(store, 1024));
    let mut rx = emitter.subscribe();
    let now = Timestamp::now();
    let past = Timestamp::from_millis(now.as_millis() - 1_000);
    let mut batch = Vec::new();
    for i in 0..25 {
        batch.push(
            MemoryItem::new("sw", Kind::Fact, format!("old {i}"))
                .with_id(format!("old{i:02}"))
                .with_expires_at(past),
        );
    }
    batch.push(
        MemoryItem::new("sw", Kind::Fact, "forever")
            .with_id("keep")
            .with_tier(Tier::Semantic),
    );
    emitter.upsert_many(batch).await.unwrap();
    let sweeper = Sweeper::new(emitter.clone()).batch(10);
    let report = sweeper.sweep_once(now).await.unwrap();
    assert_eq!(
        report,
        SweepReport {
            passes: 1,
            found: 25,
            deleted: 25,
            raced: 0,
            decayed: 0,
        }
    );
    assert_eq!(emitter.count("sw", Default::default()).await.unwrap(), 1);
    let expired = std::iter::from_fn(|| rx.try_recv().ok())
        .filter(|e| matches!(e, MemoryEvent::Expired { .. }))
        .count();
    assert_eq!(expired, 25);

    // Race safety: an item whose expiry slid forward after the listing survives.
    let soon = Timestamp::from_millis(now.as_millis() + 1_000);
    emitter
        .upsert(
            MemoryItem::new("sw", Kind::Fact, "slides")
                .with_id("slide")
                .with_expires_at(soon),
        )
        .await
        .unwrap();
    let later = Timestamp::from_millis(now.as_millis() + 2_000);
    let listed = emitter.list_expired(later, 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    emitter
        .upsert(
            MemoryItem::new("sw", Kind::Fact, "slides")
                .with_id("slide")
                .with_expires_at(Timestamp::from_millis(now.as_millis() + 60_000)),
        )
        .await
        .unwrap();
    let err = emitter
        .delete_if_expired_before("sw", "slide", later)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    emitter.get("sw", "slide").await.unwrap();

    // In the background: it sweeps on its own and stops cleanly.
    emitter
        .upsert(
            MemoryItem::new("sw", Kind::Fact, "short")
                .with_id("short")
                .with_expires_at(past),
        )
        .await
        .unwrap();
    let handle = Sweeper::new(emitter.clone())
        .every(Duration::from_millis(20))
        .spawn();
    let mut reports = handle.reports();
    while reports.borrow().deleted == 0 {
        reports.changed().await.unwrap();
    }
    let (total, errors) = handle.stop().await;
    assert_eq!((total.deleted, errors), (1, 0));
    assert!(total.passes >= 1);
    assert_eq!(
        emitter.get("sw", "short").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

async fn decaying(store: DynStore) {
    use memlayer_orchestrator::DecayPolicy;
    let emitter = Arc::new(EventStore::new(store, 64));
    let mut rx = emitter.subscribe();
    let now = Timestamp::now();
    let long_ago = Timestamp::from_millis(now.as_millis() - 7 * 24 * 3600 * 1000);
    emitter
        .upsert(
            fact("old", "old news")
                .with_created_at(long_ago)
                .with_importance(0.8),
        )
        .await
        .unwrap();
    emitter
        .upsert(fact("new", "fresh news").with_importance(0.8))
        .await
        .unwrap();
    let policy = DecayPolicy {
        half_life: Duration::from_secs(3600),
        idle_after: Duration::from_secs(24 * 3600),
        floor: 0.1,
    };
    assert!((policy.factor(Duration::from_secs(3600)) - 0.5).abs() < 1e-6);
    let sweeper = Sweeper::new(emitter.clone())
        .every(Duration::from_secs(3600))
        .decay(policy);
    let report = sweeper.sweep_once(now).await.unwrap();
    assert_eq!(report.decayed, 1);
    let old = emitter.get("ev", "old").await.unwrap();
    assert!((old.importance - 0.4).abs() < 1e-6, "{old:?}");
    assert!((emitter.get("ev", "new").await.unwrap().importance - 0.8).abs() < 1e-6);
    let decayed = std::iter::from_fn(|| rx.try_recv().ok())
        .filter(|e| matches!(e, MemoryEvent::Decayed { count: 1, .. }))
        .count();
    assert_eq!(decayed, 1);
}

#[tokio::test]
async fn decay_on_memory() {
    decaying(Arc::new(InMemoryStore::new())).await;
}

#[tokio::test]
async fn decay_on_sqlite() {
    decaying(Arc::new(SqliteStore::open_in_memory().await.unwrap())).await;
}

#[tokio::test]
async fn events_on_memory() {
    events(Arc::new(InMemoryStore::new())).await;
}

#[tokio::test]
async fn events_on_sqlite() {
    events(Arc::new(SqliteStore::open_in_memory().await.unwrap())).await;
}

/// Reinforce and reassign announce only the ids they changed, never ids that were missing or
/// lived elsewhere.
#[tokio::test]
async fn updates_name_only_the_ids_touched() {
    let emitter = EventStore::new(Arc::new(InMemoryStore::new()), 64);
    emitter.upsert(fact("a", "alpha")).await.unwrap();
    emitter
        .upsert(
            MemoryItem::new("other", Kind::Fact, "elsewhere")
                .with_id("z")
                .with_tier(Tier::Semantic),
        )
        .await
        .unwrap();
    let sink = Arc::new(Collect::default());
    emitter.add_sink(sink.clone());
    let asked = vec!["a".to_owned(), "ghost".to_owned(), "z".to_owned()];
    assert_eq!(
        emitter
            .reinforce("ev", &asked, Timestamp::now())
            .await
            .unwrap(),
        1
    );
    assert_eq!(emitter.reassign(&asked, "ev", "moved").await.unwrap(), 1);
    let updated = |ns: &str| MemoryEvent::Updated {
        namespace: ns.into(),
        ids: vec!["a".into()],
    };
    assert_eq!(
        *sink.0.lock().unwrap(),
        vec![updated("ev"), updated("moved")]
    );
}

#[tokio::test]
async fn sweeping_on_memory() {
    sweeping(Arc::new(InMemoryStore::new())).await;
}

#[tokio::test]
async fn sweeping_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("sweep.db"))
        .await
        .unwrap();
    sweeping(Arc::new(store)).await;
}

/// The Redis Streams sink against the real Redis of `MEMLAYER_REDIS_URL`.
#[cfg(feature = "redis-streams")]
#[tokio::test]
async fn redis_stream_sink_keeps_a_bounded_log() {
    use memlayer_orchestrator::RedisStreamSink;
    let Some(url) = memlayer_conformance::env_or_skip("MEMLAYER_REDIS_URL", "redis") else {
        return;
    };
    let key = format!("memlayer-test-events-{}", Timestamp::now().as_millis());
    let sink = Arc::new(RedisStreamSink::connect(&url, key, 1000).await.unwrap());
    let emitter = EventStore::new(Arc::new(InMemoryStore::new()), 16);
    emitter.add_sink(sink.clone());
    emitter.upsert(fact("a", "alpha")).await.unwrap();
    emitter.delete("ev", "a").await.unwrap();
    let log = sink.read_all().await.unwrap();
    assert_eq!(
        log,
        [
            MemoryEvent::Added {
                namespace: "ev".into(),
                ids: vec!["a".into()],
            },
            MemoryEvent::Deleted {
                namespace: "ev".into(),
                ids: vec!["a".into()],
                count: 1,
            },
        ]
    );
    assert_eq!(sink.failed(), 0);
}

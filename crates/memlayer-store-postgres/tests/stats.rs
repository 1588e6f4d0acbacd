//! BM25's per-namespace statistics (`namespace_stats`, kept by triggers on `items`) against
//! the items they summarise, after every kind of write, under concurrent writers, and after
//! the migration that introduced them backfills an older schema.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use memlayer_store::types::{Kind, MemoryItem, Timestamp};
use memlayer_store::{ClearRequest, Filter, MemoryStore, SearchRequest};
use memlayer_store_postgres::{PostgresConfig, PostgresStore};

mod common;

use common::{sql, url};

/// (namespace, items, total length) as the trigger kept them and as the items say.
async fn stats_and_truth(
    c: &tokio_postgres::Client,
    schema: &str,
) -> (Vec<(String, i64, i64)>, Vec<(String, i64, i64)>) {
    let read = |q: String| async move {
        c.query(&q, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect::<Vec<_>>()
    };
    let kept = read(format!(
        "SELECT namespace, items, total_len FROM {schema}.namespace_stats
         WHERE items <> 0 OR total_len <> 0 ORDER BY namespace"
    ))
    .await;
    let truth = read(format!(
        "SELECT namespace, count(*), COALESCE(sum(doc_len), 0)::bigint FROM {schema}.items
         GROUP BY namespace ORDER BY namespace"
    ))
    .await;
    (kept, truth)
}

fn item(ns: &str, i: usize, words: usize) -> MemoryItem {
    let content = (0..words)
        .map(|w| format!("word{}", (i * 7 + w) % 50))
        .collect::<Vec<_>>()
        .join(" ");
    MemoryItem::new(ns, Kind::Fact, content)
        .with_id(format!("{ns}-{i}"))
        .with_user(if i.is_multiple_of(4) {
            "quarter"
        } else {
            "rest"
        })
}

/// The five best keyword hits of one query, with their scores.
async fn top5(store: &PostgresStore, ns: &str) -> Vec<(String, f32)> {
    store
        .search(ns, &SearchRequest::keyword("word7 word8").with_limit(5))
        .await
        .unwrap()
        .hits
        .into_iter()
        .map(|h| (h.item.id, h.score))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_follow_every_write_and_a_migration_backfills_them() {
    let Some(url) = url() else { return };
    let schema = format!("st_{}", uuid::Uuid::now_v7().simple());
    let store = PostgresStore::connect_with(PostgresConfig::new(&url).schema(&schema).pool_size(8))
        .await
        .unwrap();
    let c = sql(&url).await;
    let (a, b) = ("stats-a", "stats-b");

    store
        .upsert_many((0..60).map(|i| item(a, i, 3 + i % 5)).collect())
        .await
        .unwrap();
    store
        .upsert_many((0..30).map(|i| item(b, i, 4)).collect())
        .await
        .unwrap();
    // Rewrites change lengths; a repeated id in one batch is two runs.
    store
        .upsert_many(vec![item(a, 1, 12), item(a, 2, 1), item(a, 1, 7)])
        .await
        .unwrap();
    store.delete(a, "stats-a-3").await.unwrap();
    let cleared = store
        .clear(a, &ClearRequest::matching(Filter::new().user("quarter")))
        .await
        .unwrap();
    assert!(cleared > 0);
    let moved: Vec<String> = (40..45).map(|i| format!("{a}-{i}")).collect();
    assert_eq!(store.reassign(&moved, a, b).await.unwrap(), 5);
    store.reinforce(b, &moved, Timestamp::now()).await.unwrap();
    let (kept, truth) = stats_and_truth(&c, &schema).await;
    assert_eq!(kept, truth);
    assert_eq!(truth.len(), 2);

    // Concurrent writers of one namespace lose no count.
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for batch in 0..5 {
                    let base = 1000 + w * 100 + batch * 10;
                    store
                        .upsert_many((base..base + 10).map(|i| item(a, i, 2 + i % 3)).collect())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let (kept, truth) = stats_and_truth(&c, &schema).await;
    assert_eq!(kept, truth);

    assert!(store.delete_namespace(b).await.unwrap() > 0);
    let (kept, truth) = stats_and_truth(&c, &schema).await;
    assert_eq!(kept, truth);
    let ranked = top5(&store, a).await;
    store.close().await.unwrap();

    // A version-1 schema (no statistics) is migrated and backfilled on open, and ranks alike.
    c.batch_execute(&format!(
        "DROP TABLE {schema}.namespace_stats;
         DROP FUNCTION {schema}.namespace_stats_apply() CASCADE;
         UPDATE {schema}.meta SET value = '1' WHERE key = 'schema_version';"
    ))
    .await
    .unwrap();
    let reopened = PostgresStore::connect_with(PostgresConfig::new(&url).schema(&schema))
        .await
        .unwrap();
    let (kept, truth) = stats_and_truth(&c, &schema).await;
    assert_eq!(kept, truth);
    let again = top5(&reopened, a).await;
    assert_eq!(again.len(), 5);
    assert_eq!(again, ranked);
    reopened.close().await.unwrap();
    c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

//! Bulk loads: the HNSW index suspended, rows written, the index built once over them.
//! Searches answer the same before, during (exact, without the index) and after, and nothing
//! stored changes. `destroy` then drops the schema.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use memlayer_store::types::{Kind, MemoryItem};
use memlayer_store::{Filter, MemoryStore, SearchRequest};
use memlayer_store_postgres::{PostgresConfig, PostgresStore};

mod common;

use common::{sql, url};

/// A unit vector leaning on axis `i % 8`, a little towards `(i / 8) % 8` (by an amount that
/// grows with `i`, so no two are alike and no ranking has ties).
fn vector(i: usize) -> Vec<f32> {
    let mut v = [0.0f32; 8];
    v[i % 8] = 1.0;
    v[(i / 8) % 8] += 0.1 + i as f32 * 0.0005;
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / norm).collect()
}

fn item(i: usize) -> MemoryItem {
    MemoryItem::new("bulk", Kind::Fact, format!("item {i}"))
        .with_id(format!("b{i:04}"))
        .with_user(if i % 10 == 3 { "rare" } else { "common" })
        .with_embedding("test-8", vector(i))
}

async fn index_exists(url: &str, schema: &str) -> bool {
    sql(url)
        .await
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("{schema}.items_embedding_hnsw")],
        )
        .await
        .unwrap()
        .get(0)
}

/// The ids of the top 10 for a few queries, with and without a selective filter.
async fn answers(store: &PostgresStore) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for q in [0usize, 9, 42] {
        for filter in [Filter::new(), Filter::new().user("rare")] {
            let hits = store
                .search(
                    "bulk",
                    &SearchRequest::vector(vector(q))
                        .with_filter(filter)
                        .with_limit(10),
                )
                .await
                .unwrap()
                .hits;
            assert_eq!(hits.len(), 10, "a vector search came back short");
            out.push(hits.into_iter().map(|h| h.item.id).collect());
        }
    }
    out
}

#[tokio::test]
async fn a_suspended_index_is_rebuilt_and_searches_answer_alike() {
    let Some(url) = url() else { return };
    let schema = format!("bulk_{}", std::process::id());
    // The user filter passes a tenth of the items: a search ranks it exactly (rate 0.2), so
    // the graph's answers compare with the exact ones of the suspended index.
    let config = PostgresConfig::new(url.clone())
        .schema(schema.clone())
        .exact_filter_rate(0.2)
        .index_build_memory_mb(64);
    let store = PostgresStore::connect_with(config).await.unwrap();

    // Nothing pinned yet: nothing to build.
    assert!(!store.build_vector_index().await.unwrap());
    // The first batch pins the model and creates the index.
    store
        .upsert_many((0..100).map(item).collect())
        .await
        .unwrap();
    assert!(index_exists(&url, &schema).await);
    assert!(!store.build_vector_index().await.unwrap(), "it exists");

    store.suspend_vector_index().await.unwrap();
    assert!(!index_exists(&url, &schema).await);
    for chunk in (100..400).collect::<Vec<_>>().chunks(100) {
        store
            .upsert_many(chunk.iter().map(|&i| item(i)).collect())
            .await
            .unwrap();
    }
    assert!(!index_exists(&url, &schema).await, "writes leave it down");
    // Without the index, search is exact.
    let exact = answers(&store).await;
    assert_eq!(store.count("bulk", Default::default()).await.unwrap(), 400);

    // A store connecting meanwhile opens (with a warning) and does not build it.
    let other =
        PostgresStore::connect_with(PostgresConfig::new(url.clone()).schema(schema.clone()))
            .await
            .unwrap();
    assert!(!index_exists(&url, &schema).await);
    other.close().await.unwrap();

    assert!(store.build_vector_index().await.unwrap());
    assert!(index_exists(&url, &schema).await);
    assert!(!store.build_vector_index().await.unwrap(), "built once");
    assert_eq!(answers(&store).await, exact, "the index changes no answer");
    assert_eq!(store.count("bulk", Default::default()).await.unwrap(), 400);
    assert_eq!(
        store.get("bulk", "b0399").await.unwrap().content,
        "item 399"
    );
    // Suspending twice is harmless, and so is building with no memory setting.
    store.suspend_vector_index().await.unwrap();
    store.suspend_vector_index().await.unwrap();
    let plain = PostgresStore::connect_with(
        PostgresConfig::new(url.clone())
            .schema(schema.clone())
            .exact_filter_rate(0.2),
    )
    .await
    .unwrap();
    assert!(plain.build_vector_index().await.unwrap());
    assert_eq!(answers(&plain).await, exact);
    plain.close().await.unwrap();
    store.destroy().await.unwrap();

    let gone: bool = sql(&url)
        .await
        .query_one("SELECT to_regnamespace($1) IS NULL", &[&schema])
        .await
        .unwrap()
        .get(0);
    assert!(gone, "destroy drops the schema");
}

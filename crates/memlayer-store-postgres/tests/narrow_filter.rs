//! A vector search under a filter that passes few of the namespace's items ranks those items
//! exactly rather than walking the HNSW graph: its hits are the exact top 10, and the graph's
//! index is never scanned for it (Postgres' own index statistics show it), while a store told
//! never to do so (`exact_filter_rate(0.0)`) scans it for the same filter, on a field without
//! an index of its own (the agent).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use memlayer_store::types::{Kind, MemoryItem};
use memlayer_store::{Filter, MemoryStore, SearchRequest};
use memlayer_store_postgres::{PostgresConfig, PostgresStore};

mod common;

use common::{sql, url};

const N: usize = 3000;
const DIM: usize = 16;

/// A deterministic pseudo-random unit vector.
fn vector(seed: usize) -> Vec<f32> {
    let mut x = (seed as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let v: Vec<f32> = (0..DIM)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 20_000) as f32 / 10_000.0 - 1.0
        })
        .collect();
    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    v.into_iter().map(|a| a / norm).collect()
}

fn rare(i: usize) -> bool {
    i % 100 == 7
}

fn item(i: usize) -> MemoryItem {
    MemoryItem::new("narrow", Kind::Fact, format!("item {i}"))
        .with_id(format!("n{i:05}"))
        .with_agent(if rare(i) { "rare" } else { "common" })
        .with_embedding("test-16", vector(i))
}

/// The exact top 10 of the rare agent's items for `query`.
fn exact_rare(query: &[f32]) -> Vec<String> {
    let mut scored: Vec<(f32, String)> = (0..N)
        .filter(|i| rare(*i))
        .map(|i| {
            let dot = vector(i).iter().zip(query).map(|(a, b)| a * b).sum::<f32>();
            (dot, format!("n{i:05}"))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    scored.into_iter().take(10).map(|(_, id)| id).collect()
}

async fn top10(store: &PostgresStore, query: &[f32], filter: Filter) -> Vec<String> {
    let hits = store
        .search(
            "narrow",
            &SearchRequest::vector(query.to_vec())
                .with_filter(filter)
                .with_limit(10),
        )
        .await
        .unwrap()
        .hits;
    hits.into_iter().map(|h| h.item.id).collect()
}

/// Scans of the schema's HNSW index so far, as Postgres' statistics show them.
async fn graph_scans(client: &tokio_postgres::Client, schema: &str) -> i64 {
    client
        .query_one(
            "SELECT COALESCE(sum(idx_scan), 0)::bigint FROM pg_stat_user_indexes \
             WHERE indexrelid = to_regclass($1)",
            &[&format!("{schema}.items_embedding_hnsw")],
        )
        .await
        .unwrap()
        .get(0)
}

/// Runs the rare agent's eight queries on a store of `config` and closes it, so that its
/// connections end and report their statistics; checks every answer is the exact one when
/// `exact` is set.
async fn rare_round(config: &PostgresConfig, exact: bool) {
    let store = PostgresStore::connect_with(config.clone()).await.unwrap();
    for q in 0..8 {
        let query = vector(1_000_000 + q);
        let got = top10(&store, &query, Filter::new().agent("rare")).await;
        assert_eq!(got.len(), 10, "query {q} came back short");
        if exact {
            assert_eq!(got, exact_rare(&query), "query {q}: not ranked exactly");
        }
    }
    store.close().await.unwrap();
}

/// Waits until the index statistics reach `at_least`, and returns them.
async fn scans_reaching(client: &tokio_postgres::Client, schema: &str, at_least: i64) -> i64 {
    for _ in 0..150 {
        let n = graph_scans(client, schema).await;
        if n >= at_least {
            return n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the index statistics never reached {at_least}");
}

#[tokio::test]
async fn a_narrow_filter_is_ranked_exactly() {
    let Some(url) = url() else { return };
    let schema = format!("narrow_{}", uuid::Uuid::now_v7().simple());
    let config = PostgresConfig::new(url.clone())
        .schema(schema.clone())
        .hnsw(4, 8)
        .ef_search(1);
    let store = PostgresStore::connect_with(config.clone()).await.unwrap();
    store
        .upsert_many((0..100).map(item).collect())
        .await
        .unwrap();
    store.suspend_vector_index().await.unwrap();
    for chunk in (100..N).collect::<Vec<_>>().chunks(1000) {
        store
            .upsert_many(chunk.iter().copied().map(item).collect())
            .await
            .unwrap();
    }
    // The build also refreshes the planner's statistics, which the estimate reads.
    assert!(store.build_vector_index().await.unwrap());
    let graph_only = config.clone().exact_filter_rate(0.0);
    let client = sql(&url).await;

    // A round on the graph-only store scans the index (the planner picks the graph for
    // an unindexed field); a round ranked exactly then adds no scan. Each round's store is
    // closed, so its connections end and report their statistics at once.
    let start = graph_scans(&client, &schema).await;
    rare_round(&graph_only, false).await;
    let after_graph = scans_reaching(&client, &schema, start + 1).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let after_graph = graph_scans(&client, &schema).await.max(after_graph);
    rare_round(&config, true).await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(
        graph_scans(&client, &schema).await,
        after_graph,
        "a 1% filter's search scanned the HNSW index"
    );

    // A filter every item passes still walks the graph, and still fills the page.
    for q in 0..4 {
        let query = vector(2_000_000 + q);
        assert_eq!(top10(&store, &query, Filter::new()).await.len(), 10);
    }
    store.destroy().await.unwrap();
}

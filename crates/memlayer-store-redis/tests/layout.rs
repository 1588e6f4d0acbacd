//! A store written before keys held the namespace (`<prefix>i:<id>`) is brought to the
//! (namespace, id) keys on open, once, with every item, vector and statistic kept
//! (decisions/0007).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use fred::prelude::*;
use fred::types::CustomCommand;
use memlayer_store::types::{Kind, MemoryItem, Tier};
use memlayer_store::{CountOptions, MemoryStore, SearchRequest};
use memlayer_store_redis::{RedisConfig, RedisStore};

fn url() -> Option<String> {
    memlayer_conformance::env_or_skip("MEMLAYER_REDIS_URL", "redis")
}

async fn raw(client: &Client, args: Vec<Value>) -> Value {
    let name = args[0].as_str().unwrap().to_string();
    client
        .custom::<Value, Value>(CustomCommand::new(name, None, false), args[1..].to_vec())
        .await
        .unwrap()
}

#[tokio::test]
async fn keys_written_before_namespaced_identity_are_renamed_on_open() {
    let Some(url) = url() else { return };
    let prefix = format!("mig{}:", uuid::Uuid::now_v7().simple());
    let config = || {
        RedisConfig::new(url.clone())
            .prefix(prefix.clone())
            .pool_size(2)
    };
    let store = RedisStore::connect_with(config()).await.unwrap();
    for (ns, id, content) in [
        ("a", "one", "the first memory of a"),
        ("a", "two", "the second memory of a"),
        ("b", "three", "the only memory of b"),
    ] {
        let item = MemoryItem::new(ns, Kind::Fact, content)
            .with_id(id)
            .with_tier(Tier::Semantic)
            .with_embedding("m", vec![1.0, 0.0, id.len() as f32]);
        store.upsert(item).await.unwrap();
    }
    store.close().await.unwrap();

    // Turn the store into one of the old layout: `i:<id>` keys, no `keys` mark in meta.
    let client = Builder::from_config(Config::from_url(&url).unwrap())
        .build()
        .unwrap();
    client.init().await.unwrap();
    let keys = raw(&client, vec!["KEYS".into(), format!("{prefix}i:*").into()])
        .await
        .into_array();
    assert_eq!(keys.len(), 3);
    for key in keys {
        let key = key.as_string().unwrap();
        let id = key.rsplit(':').next().unwrap().to_owned();
        raw(
            &client,
            vec![
                "RENAME".into(),
                key.into(),
                format!("{prefix}i:{id}").into(),
            ],
        )
        .await;
    }
    raw(
        &client,
        vec!["HDEL".into(), format!("{prefix}meta").into(), "keys".into()],
    )
    .await;

    let store = RedisStore::connect_with(config()).await.unwrap();
    let one = store.get("a", "one").await.unwrap();
    assert_eq!(
        (one.content.as_str(), one.version),
        ("the first memory of a", 1)
    );
    store.get("b", "three").await.unwrap();
    assert_eq!(store.count("a", CountOptions::all()).await.unwrap(), 2);
    let hits = store
        .search("a", &SearchRequest::keyword("memory"))
        .await
        .unwrap();
    assert_eq!(hits.hits.len(), 2);
    let hits = store
        .search("b", &SearchRequest::vector(vec![1.0, 0.0, 5.0]))
        .await
        .unwrap();
    assert_eq!(hits.hits[0].item.id, "three");
    // The same id can now be written in another namespace: a new item.
    let again = store
        .upsert(MemoryItem::new("b", Kind::Fact, "b's own one").with_id("one"))
        .await
        .unwrap();
    assert_eq!(again.version, 1);
    assert_eq!(
        store.get("a", "one").await.unwrap().content,
        "the first memory of a"
    );
    store.close().await.unwrap();
    raw(
        &client,
        vec![
            "FT.DROPINDEX".into(),
            format!("{prefix}idx").into(),
            "DD".into(),
        ],
    )
    .await;
    for key in ["meta", "nscount", "nslen"] {
        raw(&client, vec!["DEL".into(), format!("{prefix}{key}").into()]).await;
    }
    client.quit().await.unwrap();
}

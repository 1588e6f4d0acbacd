//! Stores a short conversation in `./memlayer.db` and prints a hybrid recall of it.
//!
//! Run with `cargo run --release -p memlayer --example quickstart`. The store embeds with the
//! zero-setup hash embedder (lexical similarity); swap in `MiniLmEmbedder` for recall by meaning.

use std::sync::Arc;

use memlayer::embed::{EmbeddingStore, HashEmbedder};
use memlayer::{Filter, Kind, MemoryItem, MemoryStore, SearchRequest, Tier, Timestamp};
use serde_json::json;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sqlite = memlayer::open("sqlite:./memlayer.db").await?;
    let store = EmbeddingStore::new(sqlite, Arc::new(HashEmbedder::new())).await?;
    let ns = "quickstart";
    let start = Timestamp::now().as_millis();
    let at = |i: i64| Timestamp::from_millis(start + i);
    let conversation = vec![
        MemoryItem::new(ns, Kind::System, "You are a helpful travel assistant."),
        MemoryItem::new(ns, Kind::Human, "I'm planning a trip to Lisbon in May; I'm vegetarian."),
        MemoryItem::new(ns, Kind::Ai, "Let me check the weather for Lisbon in May.")
            .with_tool_calls(vec![json!({"id": "call-1", "name": "weather", "arguments": {"city": "Lisbon", "month": 5}})]),
        MemoryItem::new(ns, Kind::Tool, "{\"avg_high_c\": 22, \"rain_days\": 6}")
            .with_tool_result("call-1", "weather", false),
        MemoryItem::new(ns, Kind::Ai, "Expect about 22 °C and a few rainy days. The Alfama district has great vegetarian food."),
        MemoryItem::new(ns, Kind::Fact, "The user is vegetarian.").with_tier(Tier::Semantic),
    ];
    let items: Vec<MemoryItem> = conversation
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            // Fixed ids: running the example again replaces the same six items.
            m.with_id(format!("quickstart-{i}"))
                .with_user("traveller-1")
                .with_session("trip")
                .with_created_at(at(i as i64))
        })
        .collect();
    store.upsert_many(items).await?;

    let query = "what food does the user eat?";
    let hits = store
        .search(
            ns,
            &SearchRequest::hybrid(query)
                .with_filter(Filter::new().user("traveller-1"))
                .with_limit(3),
        )
        .await?;
    println!(
        "hybrid recall for {query:?} ({} items stored in ./memlayer.db):",
        store.count(ns, Default::default()).await?
    );
    for hit in hits.hits {
        println!(
            "  {:>6.3}  [{:?}, keyword {:?}, vector {:?}]  {}: {}",
            hit.score,
            hit.ranked_by,
            hit.keyword_score,
            hit.vector_score,
            hit.item.kind,
            hit.item.content
        );
    }
    store.close().await?;
    Ok(())
}

//! Short-term memory over real stores: memory and SQLite (the latter reopened, to prove a
//! restart keeps the conversation).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use memlayer_orchestrator::{Scope, ShortTermMemory, WindowConfig};
use memlayer_store::types::{Kind, MemoryItem};
use memlayer_store::{DynStore, ErrorKind};
use memlayer_store_memory::InMemoryStore;
use memlayer_store_sqlite::SqliteStore;
use serde_json::json;

fn msg(kind: Kind, text: &str) -> MemoryItem {
    MemoryItem::new("", kind, text)
}

/// Twelve rounds; every third round calls two tools.
fn rounds() -> Vec<MemoryItem> {
    let mut out = vec![msg(Kind::System, "You are a travel agent.")];
    for r in 0..12 {
        out.push(msg(Kind::Human, &format!("question {r}")));
        if r % 3 == 0 {
            let calls = vec![
                json!({"id": format!("r{r}a"), "name": "flights", "args": {}}),
                json!({"id": format!("r{r}b"), "name": "hotels", "args": {}}),
            ];
            out.push(msg(Kind::Ai, "").with_tool_calls(calls));
            for id in ["a", "b"] {
                out.push(
                    msg(Kind::Tool, &format!("result {r}{id}")).with_tool_result(
                        format!("r{r}{id}"),
                        "search",
                        false,
                    ),
                );
            }
        }
        out.push(msg(Kind::Ai, &format!("answer {r}")));
    }
    out
}

async fn exercise(store: DynStore) {
    let memory = ShortTermMemory::new(store.clone(), "conv");
    let scope = Scope::session("s1").with_agent("travel");
    // Appended one by one: the stored order is the conversation order.
    let messages = rounds();
    for m in messages.clone() {
        memory.append(&scope, m).await.unwrap();
    }
    let stored = memory.messages(&scope).await.unwrap();
    let texts = |ms: &[MemoryItem]| ms.iter().map(|m| m.content.clone()).collect::<Vec<_>>();
    let expected: Vec<String> = messages
        .iter()
        .map(|m| match (m.content.is_empty(), m.tool_calls.is_empty()) {
            (true, false) => "tool calls: flights, hotels".to_owned(),
            _ => m.content.clone(),
        })
        .collect();
    assert_eq!(texts(&stored), expected);
    assert!(
        stored
            .iter()
            .all(|m| m.metadata.session_id.as_deref() == Some("s1"))
    );

    // Another agent's conversation in the same session is a different conversation.
    let other = Scope::session("s1").with_agent("billing");
    memory
        .append(&other, msg(Kind::Human, "invoice?"))
        .await
        .unwrap();
    assert_eq!(memory.messages(&other).await.unwrap().len(), 1);
    assert_eq!(memory.messages(&scope).await.unwrap().len(), messages.len());

    let w = memory
        .window(&scope, &WindowConfig::new().max_rounds(2))
        .await
        .unwrap();
    assert_eq!(w.rounds_total, 12);
    assert_eq!(
        texts(&w.messages),
        [
            "You are a travel agent.",
            "question 10",
            "answer 10",
            "question 11",
            "answer 11"
        ]
    );
    // Every budget keeps tool calls and their results together, and the newest round.
    for budget in [0, 10, 25, 40, 60, 100, 1000] {
        let w = memory
            .window(&scope, &WindowConfig::new().max_tokens(budget))
            .await
            .unwrap();
        let calls: Vec<&str> = w
            .messages
            .iter()
            .flat_map(memlayer_orchestrator::window::call_ids)
            .collect();
        let results: Vec<&str> = w
            .messages
            .iter()
            .filter_map(|m| m.tool_call_id.as_deref())
            .collect();
        assert_eq!(calls, results, "budget {budget}");
        assert_eq!(w.messages.last().unwrap().content, "answer 11");
        assert!(w.tokens <= budget || w.over_budget);
    }

    // Bad input names the field and stores nothing.
    let err = memory
        .append(&scope, msg(Kind::Fact, "not a message"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("kind"), "{err}");
    let err = memory
        .append(&scope, msg(Kind::Tool, "no call id"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("tool_call_id"), "{err}");
    let err = memory
        .append(&Scope::default(), msg(Kind::Human, "whose?"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("scope"), "{err}");
    assert_eq!(memory.messages(&scope).await.unwrap().len(), messages.len());
}

#[tokio::test]
async fn short_term_on_memory() {
    exercise(Arc::new(InMemoryStore::new())).await;
}

#[tokio::test]
async fn short_term_on_sqlite_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("conv.db");
    let store: DynStore = Arc::new(SqliteStore::open(&path).await.unwrap());
    exercise(store.clone()).await;
    store.close().await.unwrap();
    // A new process: the conversation and its window are all still there.
    let store: DynStore = Arc::new(SqliteStore::open(&path).await.unwrap());
    let memory = ShortTermMemory::new(store, "conv");
    let scope = Scope::session("s1").with_agent("travel");
    let w = memory
        .window(&scope, &WindowConfig::new().max_rounds(1))
        .await
        .unwrap();
    let texts: Vec<&str> = w.messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(
        texts,
        ["You are a travel agent.", "question 11", "answer 11"]
    );
    assert_eq!(memory.clear(&scope).await.unwrap(), rounds().len() as u64);
    assert!(memory.messages(&scope).await.unwrap().is_empty());
}

async fn summarising(store: DynStore) {
    use memlayer_orchestrator::{ExtractiveSummarizer, SummaryConfig};
    use memlayer_store::{Filter, MemoryStoreExt};
    let memory = ShortTermMemory::new(store.clone(), "sum");
    let scope = Scope::user("u1");
    let stored = memory.append_many(&scope, rounds()).await.unwrap();
    let config = SummaryConfig::default()
        .message_threshold(20)
        .keep_recent(3);
    let summarizer = ExtractiveSummarizer::default();
    let before = memlayer_store::types::Timestamp::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let summary = memory
        .summarize_if_needed(&scope, &config, &summarizer)
        .await
        .unwrap()
        .expect("over the threshold");
    assert_eq!(summary.kind, Kind::Summary);
    assert!(
        summary.content.contains("User: question 0"),
        "{}",
        summary.content
    );
    // The last three messages reach back to the start of their round: rounds 10 and 11 stay.
    let live = memory.messages(&scope).await.unwrap();
    let texts: Vec<&str> = live.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(
        texts,
        [
            "You are a travel agent.",
            summary.content.as_str(),
            "question 10",
            "answer 10",
            "question 11",
            "answer 11"
        ]
    );
    // The window keeps the summary like a system message.
    let w = memory
        .window(&scope, &WindowConfig::new().max_rounds(1))
        .await
        .unwrap();
    assert_eq!(w.messages.len(), 4);
    // What it replaced is superseded, not lost: time travel shows it, lineage lists it.
    let then = store
        .list_all("sum", scope.filter().as_of(before))
        .await
        .unwrap();
    assert_eq!(then.len(), stored.len());
    let replaced = store.predecessors("sum", &summary.id).await.unwrap();
    // Everything but the system message and the four kept messages.
    assert_eq!(replaced.len(), stored.len() - 5);
    // Below the threshold now: nothing to do. A second summary later rolls the first in.
    assert!(
        memory
            .summarize_if_needed(&scope, &config, &summarizer)
            .await
            .unwrap()
            .is_none()
    );
    memory
        .append_many(&scope, rounds()[1..].to_vec())
        .await
        .unwrap();
    let second = memory
        .summarize_if_needed(&scope, &config, &summarizer)
        .await
        .unwrap()
        .unwrap();
    assert!(second.content.starts_with(&summary.content));
    let summaries = store
        .list_all("sum", Filter::new().kind(Kind::Summary))
        .await
        .unwrap();
    assert_eq!(
        summaries.len(),
        1,
        "the first summary is superseded by the second"
    );
}

#[tokio::test]
async fn summaries_on_memory() {
    summarising(Arc::new(InMemoryStore::new())).await;
}

#[tokio::test]
async fn summaries_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("s.db")).await.unwrap();
    summarising(Arc::new(store)).await;
}

//! The end-to-end conversation, through the facade, on all five backends: 20 rounds with tool
//! calls kept in a window, rule-based extraction into long-term memory with a superseded
//! statement, a summary that replaces the older rounds, events, and a sweep of expired items.
//!
//! Server backends read `MEMLAYER_POSTGRES_URL`, `MEMLAYER_REDIS_URL` and
//! `MEMLAYER_CHROMA_URL` (`cargo xtask services up`); when `MEMLAYER_REQUIRE_BACKENDS` names a
//! backend (CI does), its absence fails the test instead of skipping it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;
use std::time::Duration;

use memlayer::orchestrator::{
    DecayPolicy, EventStore, ExtractionType, ExtractiveSummarizer, LongTermMemory, MemoryEvent,
    MemoryOrchestrator, OrchestratorConfig, RuleExtractor, Scope, ShortTermMemory, SummaryConfig,
    Sweeper, TaskState, WindowConfig,
};
use memlayer::{DynStore, Filter, Kind, MemoryItem, MemoryStoreExt, Timestamp};
use serde_json::json;

fn url(backend: &str, var: &str) -> Option<String> {
    memlayer_conformance::env_or_skip(var, backend)
}

fn fresh() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

fn human(text: &str) -> MemoryItem {
    MemoryItem::new("", Kind::Human, text)
}

fn ai(text: &str) -> MemoryItem {
    MemoryItem::new("", Kind::Ai, text)
}

/// Round `r` of the conversation; every fourth round calls two tools.
fn round(r: usize) -> Vec<MemoryItem> {
    let said = match r {
        2 => "I live in London. Can you find me a flat?".to_owned(),
        5 => "By the way, my name is Sam.".to_owned(),
        15 => "Update: I moved to Paris last month.".to_owned(),
        _ => format!("Question number {r} about flats."),
    };
    let mut out = vec![human(&said)];
    if r.is_multiple_of(4) {
        out.push(ai("").with_tool_calls(vec![
            json!({"id": format!("c{r}a"), "name": "search_flats", "args": {"round": r}}),
            json!({"id": format!("c{r}b"), "name": "check_prices", "args": {"round": r}}),
        ]));
        for id in ["a", "b"] {
            out.push(
                MemoryItem::new("", Kind::Tool, format!("tool output {r}{id}")).with_tool_result(
                    format!("c{r}{id}"),
                    "search",
                    false,
                ),
            );
        }
    }
    out.push(ai(&format!("Answer number {r}.")));
    out
}

async fn scenario(backend: &str, store: DynStore) {
    let emitter = Arc::new(EventStore::new(store.clone(), 4096));
    let mut events = emitter.subscribe();
    let store: DynStore = emitter.clone();
    let stm = ShortTermMemory::new(store.clone(), "chat");
    let scope = Scope::session("sess-1")
        .with_user("sam")
        .with_agent("realtor");

    // 20 rounds, appended turn by turn.
    let mut conversation = Vec::new();
    for r in 0..20 {
        for m in round(r) {
            conversation.push(stm.append(&scope, m).await.unwrap());
        }
    }
    let all = stm.messages(&scope).await.unwrap();
    assert_eq!(all.len(), conversation.len(), "{backend}");

    // A window by rounds and tokens never separates tool calls from their results.
    for budget in [40, 80, 160, 100_000] {
        let w = stm
            .window(
                &scope,
                &WindowConfig::new().max_rounds(6).max_tokens(budget),
            )
            .await
            .unwrap();
        let calls: Vec<String> = w
            .messages
            .iter()
            .flat_map(|m| memlayer::orchestrator::window::call_ids(m).map(str::to_owned))
            .collect();
        let results: Vec<String> = w
            .messages
            .iter()
            .filter_map(|m| m.tool_call_id.clone())
            .collect();
        assert_eq!(calls, results, "{backend} budget {budget}");
        assert_eq!(w.messages.last().unwrap().content, "Answer number 19.");
        assert!(w.rounds_kept <= 6);
    }

    // Extraction into long-term memory: the move to Paris supersedes London.
    let ltm = LongTermMemory::new(store.clone(), "memories").near_duplicate(None);
    let orchestrator = MemoryOrchestrator::new(
        Arc::new(RuleExtractor),
        ltm.clone(),
        OrchestratorConfig::default()
            .batch_size(8)
            .max_concurrent(2),
    );
    let owner = Scope::user("sam").with_agent("realtor");
    let reports = orchestrator.process(&owner, &all).await;
    assert!(
        reports
            .iter()
            .all(|r| matches!(r.state, TaskState::Completed(_))),
        "{backend}: {reports:?}"
    );
    let mut profile: Vec<String> = ltm
        .list(&owner, Some(ExtractionType::UserProfile))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.content)
        .collect();
    profile.sort();
    assert_eq!(
        profile,
        ["The user lives in Paris", "The user's name is Sam"],
        "{backend}"
    );
    // London is superseded by Paris, not lost: the lineage and time travel both show it.
    let paris = ltm
        .list(&owner, Some(ExtractionType::UserProfile))
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.content.contains("Paris"))
        .unwrap();
    let lineage = store.predecessors("memories", &paris.id).await.unwrap();
    assert_eq!(lineage.len(), 1, "{backend}");
    let london = &lineage[0];
    assert_eq!(london.content, "The user lives in London", "{backend}");
    let closed = london.valid_to.unwrap();
    let then = store
        .list_all(
            "memories",
            owner
                .owner_filter()
                .kind(ExtractionType::UserProfile.kind())
                .as_of(Timestamp::from_millis(closed.as_millis() - 1)),
        )
        .await
        .unwrap();
    assert!(
        then.iter().any(|m| m.id == london.id) || london.valid_from == Some(closed),
        "{backend}: {then:?}"
    );
    // A replay stores nothing.
    let again = orchestrator.process(&owner, &all).await;
    assert!(again.iter().all(|r| r.attempts == 0), "{backend}");

    // The summary replaces the older rounds; the window holds it and the recent rounds.
    let summary = stm
        .summarize_if_needed(
            &scope,
            &SummaryConfig::default()
                .message_threshold(30)
                .keep_recent(6),
            &ExtractiveSummarizer::default(),
        )
        .await
        .unwrap()
        .expect("over the threshold");
    let w = stm.window(&scope, &WindowConfig::new()).await.unwrap();
    assert_eq!(w.messages[0].id, summary.id, "{backend}");
    assert!(w.messages.len() < all.len());
    let replaced = store.predecessors("chat", &summary.id).await.unwrap();
    assert_eq!(
        replaced.len() + w.messages.len() - 1,
        all.len(),
        "{backend}"
    );

    // Sweeping: expired items go, the rest stay, and the emitter reports them.
    let past = Timestamp::from_millis(Timestamp::now().as_millis() - 1_000);
    for i in 0..3 {
        store
            .upsert(
                MemoryItem::new("scratch", Kind::Fact, format!("temporary note {i}"))
                    .with_expires_at(past),
            )
            .await
            .unwrap();
    }
    let report = Sweeper::new(store.clone())
        .sweep_once(Timestamp::now())
        .await
        .unwrap();
    assert!(report.deleted >= 3, "{backend}: {report:?}");
    assert_eq!(store.count("scratch", Default::default()).await.unwrap(), 0);
    assert_eq!(stm.messages(&scope).await.unwrap().len(), w.messages.len());
    let mut expired = 0;
    while let Ok(e) = events.try_recv() {
        if matches!(e, MemoryEvent::Expired { .. }) {
            expired += 1;
        }
    }
    assert!(expired >= 3, "{backend}");
    let live = store.list_all("chat", Filter::new()).await.unwrap();
    assert_eq!(live.len(), w.messages.len(), "{backend}");

    // Decay on the same schedule: one half-life later, idle memories weigh half as much.
    let decay = Sweeper::new(store.clone())
        .every(Duration::from_secs(3600))
        .decay(DecayPolicy {
            half_life: Duration::from_secs(3600),
            idle_after: Duration::ZERO,
            floor: 0.1,
        })
        .sweep_once(Timestamp::from_millis(Timestamp::now().as_millis() + 1_000))
        .await
        .unwrap();
    assert!(decay.decayed > 0, "{backend}: {decay:?}");
    let name = ltm
        .list(&owner, Some(ExtractionType::UserProfile))
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.content.contains("Sam"))
        .unwrap();
    assert!((name.importance - 0.25).abs() < 1e-6, "{backend}: {name:?}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn conversation_on_memory() {
    runtime().block_on(async {
        scenario("memory", memlayer::open("memory").await.unwrap()).await;
    });
}

#[test]
fn conversation_on_sqlite() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("conv.db").display());
        scenario("sqlite", memlayer::open(&url).await.unwrap()).await;
    });
}

#[test]
fn conversation_on_postgres() {
    let Some(url) = url("postgres", "MEMLAYER_POSTGRES_URL") else {
        return;
    };
    runtime().block_on(async {
        let config =
            memlayer::postgres::PostgresConfig::new(url).schema(format!("e2e_{}", fresh()));
        let store = memlayer::postgres::PostgresStore::connect_with(config)
            .await
            .unwrap();
        scenario("postgres", Arc::new(store)).await;
    });
}

#[test]
fn conversation_on_redis() {
    let Some(url) = url("redis", "MEMLAYER_REDIS_URL") else {
        return;
    };
    runtime().block_on(async {
        let config = memlayer::redis::RedisConfig::new(url).prefix(format!("e2e{}:", fresh()));
        let store = memlayer::redis::RedisStore::connect_with(config)
            .await
            .unwrap();
        scenario("redis", Arc::new(store)).await;
    });
}

#[test]
fn conversation_on_chroma() {
    let Some(url) = url("chroma", "MEMLAYER_CHROMA_URL") else {
        return;
    };
    runtime().block_on(async {
        let config = memlayer::chroma::ChromaConfig::new(url).prefix(format!("e2e{}-", fresh()));
        let store = memlayer::chroma::ChromaStore::connect_with(config)
            .await
            .unwrap();
        scenario("chroma", Arc::new(store.clone())).await;
        store.destroy().await.unwrap();
    });
}

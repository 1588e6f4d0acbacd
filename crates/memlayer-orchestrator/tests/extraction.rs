//! The extraction orchestrator over real stores, with the rule extractor, a scripted
//! extractor, and the LLM extractor against a local OpenAI-compatible server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use memlayer_orchestrator::{
    ChatClient, ExtractionType, Extractor, LlmExtractor, LongTermMemory, MemoryOrchestrator,
    NewMemory, OrchestratorConfig, RuleExtractor, Scope, TaskState,
};
use memlayer_store::types::{Kind, MemoryItem};
use memlayer_store::{DynStore, Error, ErrorKind, Filter, MemoryStoreExt, Result};
use memlayer_store_memory::InMemoryStore;
use memlayer_store_sqlite::SqliteStore;
use serde_json::{Value, json};

fn human(text: &str) -> MemoryItem {
    MemoryItem::new("conv", Kind::Human, text)
}

fn fast() -> OrchestratorConfig {
    OrchestratorConfig::default()
        .batch_size(2)
        .max_concurrent(2)
        .max_attempts(3)
        .backoff(Duration::from_millis(5))
}

async fn profile(store: &DynStore, scope: &Scope) -> Vec<String> {
    let mut v: Vec<String> = LongTermMemory::new(store.clone(), "mem")
        .list(scope, Some(ExtractionType::UserProfile))
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.content)
        .collect();
    v.sort();
    v
}

async fn rules_end_to_end(store: DynStore) {
    let scope = Scope::user("ada");
    let ltm = LongTermMemory::new(store.clone(), "mem").near_duplicate(None);
    let orch = MemoryOrchestrator::new(Arc::new(RuleExtractor), ltm, fast());
    let messages = vec![
        human("Hello, my name is Ada."),
        human("I live in London and I like tea."),
        human("Actually I moved to Paris last week."),
    ];
    let reports = orch.process(&scope, &messages).await;
    assert_eq!(reports.len(), 2);
    assert!(
        reports
            .iter()
            .all(|r| matches!(r.state, TaskState::Completed(_)))
    );
    assert_eq!(
        profile(&store, &scope).await,
        [
            "The user likes tea",
            "The user lives in Paris",
            "The user's name is Ada"
        ]
    );
    // A replay stores nothing: every batch is already done.
    let again = orch.process(&scope, &messages).await;
    assert!(
        again
            .iter()
            .all(|r| r.attempts == 0 && r.outcomes.is_empty())
    );
    // Even a new orchestrator (a restart) knows, from the task records in the store.
    let ltm = LongTermMemory::new(store.clone(), "mem").near_duplicate(None);
    let fresh = MemoryOrchestrator::new(Arc::new(RuleExtractor), ltm, fast());
    let replay = fresh.process(&scope, &messages).await;
    assert!(replay.iter().all(|r| r.attempts == 0));
    let all = store
        .list_all("mem", Filter::new().include_superseded(true))
        .await
        .unwrap();
    // 4 statements (London superseded by Paris) + 2 task records.
    assert_eq!(all.len(), 6, "{all:#?}");
}

#[tokio::test]
async fn rules_on_memory() {
    rules_end_to_end(Arc::new(InMemoryStore::new())).await;
}

#[tokio::test]
async fn rules_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("x.db")).await.unwrap();
    rules_end_to_end(Arc::new(store)).await;
}

/// Fails a scripted number of times per batch, and records the peak concurrency.
#[derive(Debug, Default)]
struct Flaky {
    failures_left: Mutex<std::collections::HashMap<String, usize>>,
    fail_first: usize,
    running: AtomicUsize,
    peak: AtomicUsize,
}

#[async_trait]
impl Extractor for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }

    async fn extract(&self, messages: &[MemoryItem]) -> Result<Vec<NewMemory>> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        let key = messages[0].id.clone();
        let mut left = self.failures_left.lock().unwrap();
        let n = left.entry(key).or_insert(self.fail_first);
        if *n > 0 {
            *n -= 1;
            return Err(Error::new(ErrorKind::Unavailable, "model overloaded").set_temporary(true));
        }
        Ok(messages
            .iter()
            .map(|m| NewMemory::new(ExtractionType::Facts, format!("noted: {}", m.content)))
            .collect())
    }
}

#[tokio::test]
async fn retries_concurrency_and_dead_letters() {
    let store: DynStore = Arc::new(InMemoryStore::new());
    let scope = Scope::session("s");
    let messages: Vec<MemoryItem> = (0..10).map(|i| human(&format!("m{i}"))).collect();
    // Two failures per batch, three attempts: every batch completes on its third try.
    let flaky = Arc::new(Flaky {
        fail_first: 2,
        ..Flaky::default()
    });
    let orch = MemoryOrchestrator::new(
        flaky.clone(),
        LongTermMemory::new(store.clone(), "mem"),
        fast(),
    );
    let reports = orch.process(&scope, &messages).await;
    assert_eq!(reports.len(), 5);
    for r in &reports {
        assert_eq!((r.state.clone(), r.attempts), (TaskState::Completed(2), 3));
        assert_eq!(orch.state(&r.key), Some(TaskState::Completed(2)));
    }
    assert!(
        flaky.peak.load(Ordering::SeqCst) <= 2,
        "max_concurrent holds"
    );
    assert!(orch.dead_letters().is_empty());

    // Always failing: every batch ends in the dead-letter list and in the store.
    let hopeless = Arc::new(Flaky {
        fail_first: usize::MAX,
        ..Flaky::default()
    });
    let orch = MemoryOrchestrator::new(hopeless, LongTermMemory::new(store.clone(), "dl"), fast());
    let reports = orch.process(&scope, &messages[..4]).await;
    assert!(
        reports
            .iter()
            .all(|r| matches!(&r.state, TaskState::Failed(e) if e.contains("overloaded")))
    );
    let dead = orch.dead_letters();
    assert_eq!(dead.len(), 2);
    assert!(
        dead.iter()
            .all(|d| d.attempts == 3 && d.message_ids.len() == 2)
    );
    let stored = store
        .list_all(
            "dl",
            Filter::new().kind(Kind::Custom("extraction_dead_letter".into())),
        )
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    // The letters carry the batch's scope, so erasing the session's data finds them too.
    let scoped = store
        .list_all(
            "dl",
            Filter::new()
                .session("s")
                .kind(Kind::Custom("extraction_dead_letter".into())),
        )
        .await
        .unwrap();
    assert_eq!(scoped.len(), 2, "dead letters are stamped with the scope");
}

/// A local OpenAI-compatible chat server answering from a script.
async fn chat_server(script: Vec<String>) -> (String, Arc<AtomicUsize>) {
    #[derive(Clone)]
    struct S {
        script: Arc<Mutex<VecDeque<String>>>,
        calls: Arc<AtomicUsize>,
    }
    async fn complete(State(s): State<S>, Json(body): Json<Value>) -> Json<Value> {
        s.calls.fetch_add(1, Ordering::SeqCst);
        assert_eq!(body["response_format"]["type"], "json_object");
        let transcript = body["messages"][1]["content"].as_str().unwrap_or("");
        assert!(transcript.starts_with("human: "), "{transcript}");
        let content = s.script.lock().unwrap().pop_front().unwrap_or_default();
        Json(json!({"choices": [{"message": {"role": "assistant", "content": content}}]}))
    }
    let calls = Arc::new(AtomicUsize::new(0));
    let state = S {
        script: Arc::new(Mutex::new(script.into())),
        calls: calls.clone(),
    };
    let app = Router::new()
        .route("/v1/chat/completions", post(complete))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), calls)
}

#[tokio::test]
async fn llm_extractor_retries_malformed_output_then_dead_letters() {
    let good = json!({"memories": [{
        "type": "user_profile", "content": "The user lives in Oslo",
        "subject": "user", "predicate": "lives_in", "object": "Oslo", "confidence": 0.9
    }]})
    .to_string();
    let script = vec![
        "this is not json".to_owned(),
        json!({"memories": [{"type": "opinion", "content": "x"}]}).to_string(),
        good,
        // The second conversation only ever gets broken answers.
        "{\"memories\": 7}".to_owned(),
        "[]".to_owned(),
        "".to_owned(),
    ];
    let (url, calls) = chat_server(script).await;
    let chat = ChatClient::new(&url, "test-model").unwrap();
    let store: DynStore = Arc::new(InMemoryStore::new());
    let config = fast().batch_size(10).max_concurrent(1);
    let orch = MemoryOrchestrator::new(
        Arc::new(LlmExtractor::new(chat)),
        LongTermMemory::new(store.clone(), "mem"),
        config,
    );
    let scope = Scope::user("u");
    let r = orch.process(&scope, &[human("I'm in Oslo now")]).await;
    assert_eq!(
        (r[0].state.clone(), r[0].attempts),
        (TaskState::Completed(1), 3)
    );
    assert_eq!(profile(&store, &scope).await, ["The user lives in Oslo"]);
    let r = orch.process(&scope, &[human("something else")]).await;
    assert!(matches!(&r[0].state, TaskState::Failed(e) if e.contains("extraction")));
    assert_eq!(orch.dead_letters().len(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 6);
}

#[tokio::test]
async fn llm_summarizer_writes_the_summary_it_is_given_and_rejects_bad_answers() {
    use memlayer_orchestrator::{LlmSummarizer, ShortTermMemory, SummaryConfig, SummaryTemplate};
    let (url, calls) = chat_server(vec![
        json!({"summary": "   "}).to_string(),
        json!({"summary": "Sam asked about flats in Paris; three were found."}).to_string(),
    ])
    .await;
    let summarizer = LlmSummarizer::new(ChatClient::new(&url, "m").unwrap());
    let store: DynStore = Arc::new(InMemoryStore::new());
    let stm = ShortTermMemory::new(store.clone(), "conv");
    let scope = Scope::session("s");
    let mut messages = Vec::new();
    for i in 0..6 {
        messages.push(human(&format!("question {i}")));
        messages.push(MemoryItem::new("", Kind::Ai, format!("answer {i}")));
    }
    stm.append_many(&scope, messages).await.unwrap();
    let config = SummaryConfig::default()
        .message_threshold(4)
        .keep_recent(2)
        .template(SummaryTemplate::Facts);
    // An empty summary is malformed: nothing is written.
    let err = stm
        .summarize_if_needed(&scope, &config, &summarizer)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("summary"), "{err}");
    assert_eq!(stm.messages(&scope).await.unwrap().len(), 12);
    let summary = stm
        .summarize_if_needed(&scope, &config, &summarizer)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        summary.content,
        "Sam asked about flats in Paris; three were found."
    );
    assert_eq!(summary.metadata.extra["template"], "facts");
    assert_eq!(stm.messages(&scope).await.unwrap().len(), 3);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

//! Long-term memory over real stores (memory and SQLite, each behind the embedding layer so
//! near duplicates are found by cosine).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use memlayer_embed::{EmbeddingStore, HashEmbedder};
use memlayer_orchestrator::{AddOutcome, ExtractionType, LongTermMemory, NewMemory, Scope, Triple};
use memlayer_store::types::Timestamp;
use memlayer_store::{DynStore, Filter, MemoryStoreExt};
use memlayer_store_memory::InMemoryStore;
use memlayer_store_sqlite::SqliteStore;

async fn embedded(inner: DynStore) -> DynStore {
    Arc::new(
        EmbeddingStore::new(inner, Arc::new(HashEmbedder::new()))
            .await
            .unwrap(),
    )
}

async fn exercise(store: DynStore) {
    let ltm = LongTermMemory::new(store.clone(), "ltm").near_duplicate(Some(0.9));
    let alice = Scope::user("alice");
    let bob = Scope::user("bob");
    let facts = ExtractionType::Facts;
    let profile = ExtractionType::UserProfile;

    // Exact duplicates merge, whatever the case and punctuation.
    let first = ltm
        .add(
            &alice,
            NewMemory::new(facts, "The office is in Lyon.").with_tag("work"),
        )
        .await
        .unwrap();
    assert!(matches!(first, AddOutcome::Added(_)));
    let again = ltm
        .add(
            &alice,
            NewMemory::new(facts, "the office is in LYON").with_confidence(0.95),
        )
        .await
        .unwrap();
    let AddOutcome::Duplicate(merged) = again else {
        panic!("expected a duplicate, got {again:?}")
    };
    assert_eq!(merged.id, first.item().id);
    assert_eq!(merged.version, 2);
    assert_eq!(merged.confidence, 0.95);
    assert!(merged.tags.contains("work"));
    // Another owner's identical memory is their own.
    let bobs = ltm
        .add(&bob, NewMemory::new(facts, "The office is in Lyon."))
        .await
        .unwrap();
    assert!(matches!(bobs, AddOutcome::Added(_)));
    assert_ne!(bobs.item().id, first.item().id);

    // Statements: the same object confirms, another object supersedes.
    let lives = |city: &str| {
        NewMemory::new(profile, format!("Alice lives in {city}"))
            .with_triple(Triple::new("alice", "lives_in", city))
            .with_confidence(0.6)
    };
    let paris = ltm.add(&alice, lives("Paris")).await.unwrap();
    assert!(matches!(paris, AddOutcome::Added(_)));
    let confirmed = ltm
        .add(
            &alice,
            NewMemory::new(profile, "alice resides in paris")
                .with_triple(Triple::new("Alice", "lives_in", "PARIS"))
                .with_confidence(0.6),
        )
        .await
        .unwrap();
    let AddOutcome::Confirmed(c) = confirmed else {
        panic!("expected a confirmation, got {confirmed:?}")
    };
    assert_eq!(c.id, paris.item().id);
    assert!((c.confidence - 0.8).abs() < 1e-6, "{}", c.confidence);
    let before_move = Timestamp::now();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let berlin = ltm.add(&alice, lives("Berlin")).await.unwrap();
    let AddOutcome::Superseded { new, old } = &berlin else {
        panic!("expected supersession, got {berlin:?}")
    };
    assert_eq!(old.id, paris.item().id);
    assert_eq!(old.superseded_by.as_deref(), Some(new.id.as_str()));
    assert!(old.valid_to.is_some());
    let now_profile = ltm.list(&alice, Some(profile)).await.unwrap();
    assert_eq!(now_profile.len(), 1);
    assert_eq!(now_profile[0].content, "Alice lives in Berlin");
    // The old statement is still there for time travel and lineage.
    let then = store
        .list_all(
            "ltm",
            alice.owner_filter().kind(profile.kind()).as_of(before_move),
        )
        .await
        .unwrap();
    assert_eq!(then.len(), 1);
    assert_eq!(then[0].content, "Alice lives in Paris");
    let lineage = store.predecessors("ltm", &new.id).await.unwrap();
    assert_eq!(lineage.len(), 1);
    // Moving back revives the old statement and closes Berlin.
    let back = ltm.add(&alice, lives("Paris")).await.unwrap();
    let AddOutcome::Superseded { new: p2, old: b2 } = &back else {
        panic!("expected supersession, got {back:?}")
    };
    assert_eq!(p2.id, paris.item().id);
    assert_eq!(b2.id, new.id);

    // Near duplicates (by cosine) replace the older wording.
    let tea = ltm
        .add(
            &alice,
            NewMemory::new(
                ExtractionType::AgentExperience,
                "alice wants green tea with honey in the morning",
            ),
        )
        .await
        .unwrap();
    let tea2 = ltm
        .add(
            &alice,
            NewMemory::new(
                ExtractionType::AgentExperience,
                "alice wants green tea with honey every morning",
            ),
        )
        .await
        .unwrap();
    let AddOutcome::Superseded { old, .. } = &tea2 else {
        panic!("expected a near duplicate, got {tea2:?}")
    };
    assert_eq!(old.id, tea.item().id);
    let experiences = ltm
        .list(&alice, Some(ExtractionType::AgentExperience))
        .await
        .unwrap();
    assert_eq!(experiences.len(), 1);

    // Bad input names the field.
    let err = ltm
        .add(&alice, NewMemory::new(facts, " ... "))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("content"), "{err}");
    // Live: both offices, Paris, the newer tea; superseded: Berlin and the older tea.
    assert_eq!(store.list_all("ltm", Filter::new()).await.unwrap().len(), 4);
    let everything = Filter::new().include_superseded(true);
    assert_eq!(store.list_all("ltm", everything).await.unwrap().len(), 6);
}

#[tokio::test]
async fn long_term_on_memory() {
    exercise(embedded(Arc::new(InMemoryStore::new())).await).await;
}

#[tokio::test]
async fn long_term_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("ltm.db")).await.unwrap();
    exercise(embedded(Arc::new(store)).await).await;
}

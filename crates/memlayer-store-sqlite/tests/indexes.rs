//! The in-process vector and keyword indexes against the file: they survive restarts (rebuilt
//! from `items`), see other handles' writes, and the graph answers like the
//! exact scan.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use memlayer_store::types::{Kind, MemoryItem};
use memlayer_store::{Filter, MemoryStore, SearchRequest};
use memlayer_store_sqlite::{AnnConfig, SqliteConfig, SqliteStore};

const DIM: usize = 16;

fn vector(i: usize) -> Vec<f32> {
    (0..DIM)
        // 7919 is prime to 10007: no two items below 10,007 share a vector, so no ties.
        .map(|d| (((i * 7919 + d * 104_729) % 10_007) as f32 / 10_007.0) - 0.5)
        .collect()
}

fn item(i: usize) -> MemoryItem {
    MemoryItem::new("ns", Kind::Fact, format!("item {i}"))
        .with_id(format!("i{i:04}"))
        .with_user(if i % 10 == 3 { "rare" } else { "common" })
        .with_embedding("test/16", vector(i))
}

fn config(path: &std::path::Path, threshold: usize) -> SqliteConfig {
    SqliteConfig::new(path.to_string_lossy()).ann(AnnConfig::default().with_threshold(threshold))
}

async fn open(path: &std::path::Path, threshold: usize) -> SqliteStore {
    SqliteStore::open_with(config(path, threshold))
        .await
        .unwrap()
}

/// A store opened with `config` on a new file in `dir`, holding items `0..n`; and its path.
async fn filled(
    dir: &tempfile::TempDir,
    config: impl Fn(&std::path::Path) -> SqliteConfig,
    n: usize,
) -> (std::path::PathBuf, SqliteStore) {
    let path = dir.path().join("m.db");
    let store = SqliteStore::open_with(config(&path)).await.unwrap();
    store.upsert_many((0..n).map(item).collect()).await.unwrap();
    (path, store)
}

/// The ids a search of "ns" returns, best first.
async fn ids(store: &SqliteStore, request: SearchRequest) -> Vec<String> {
    store
        .search("ns", &request)
        .await
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.item.id)
        .collect()
}

async fn top(store: &SqliteStore, q: &[f32], filter: Filter, k: usize) -> Vec<String> {
    let request = SearchRequest::vector(q.to_vec())
        .with_filter(filter)
        .with_limit(k);
    ids(store, request).await
}

#[tokio::test(flavor = "multi_thread")]
async fn graph_answers_survive_a_restart_and_match_the_exact_scan() {
    let dir = tempfile::tempdir().unwrap();
    let (path, store) = filled(&dir, |p| config(p, 100), 600).await;
    let q = vector(1234);
    let graph = top(&store, &q, Filter::new(), 10).await;
    let graph_rare = top(&store, &q, Filter::new().user("rare"), 10).await;
    store.close().await.unwrap();

    // Reopened: the index is rebuilt from the file; an exact store agrees.
    let reopened = open(&path, 100).await;
    assert_eq!(top(&reopened, &q, Filter::new(), 10).await, graph);
    let exact = open(&path, usize::MAX).await;
    assert_eq!(top(&exact, &q, Filter::new(), 10).await, graph);
    let rare = top(&exact, &q, Filter::new().user("rare"), 10).await;
    assert_eq!(rare.len(), 10);
    assert_eq!(graph_rare, rare);
}

#[tokio::test(flavor = "multi_thread")]
async fn another_handles_writes_reach_this_handles_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let a = open(&path, 50).await;
    let b = open(&path, 50).await;
    a.upsert_many((0..200).map(item).collect()).await.unwrap();
    let q = vector(777);
    // Both handles load their index.
    let before = top(&a, &q, Filter::new(), 3).await;
    assert_eq!(top(&b, &q, Filter::new(), 3).await, before);

    // B writes the query itself and deletes A's best hit; A sees both.
    b.upsert(
        MemoryItem::new("ns", Kind::Fact, "the query")
            .with_id("exact-match")
            .with_embedding("test/16", q.clone()),
    )
    .await
    .unwrap();
    b.delete("ns", &before[0]).await.unwrap();
    let after = top(&a, &q, Filter::new(), 3).await;
    assert_eq!(after[0], "exact-match");
    assert!(!after.contains(&before[0]), "{after:?}");

    // A's own writes reach A's index too, without a reload: reassigning moves vectors.
    a.reassign(&["exact-match".to_owned()], "ns", "elsewhere")
        .await
        .unwrap();
    assert_ne!(top(&a, &q, Filter::new(), 1).await[0], "exact-match");
    let moved = a
        .search("elsewhere", &SearchRequest::vector(q.clone()).with_limit(1))
        .await
        .unwrap();
    assert_eq!(moved.hits[0].item.id, "exact-match");
    assert!((moved.hits[0].vector_score.unwrap() - 1.0).abs() < 1e-5);
}

async fn keyword_ids(store: &SqliteStore, text: &str, filter: Filter) -> Vec<String> {
    let request = SearchRequest::keyword(text)
        .with_filter(filter)
        .with_limit(10);
    ids(store, request).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_keyword_index_follows_other_handles_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.db");
    let a = open(&path, 50).await;
    let b = open(&path, 50).await;
    a.upsert_many((0..300).map(item).collect()).await.unwrap();
    let before = keyword_ids(&a, "zebra", Filter::new()).await;
    assert!(before.is_empty());
    assert_eq!(keyword_ids(&b, "zebra", Filter::new()).await, before);

    // B writes a matching item and rewrites one so it no longer matches; A sees both.
    b.upsert(MemoryItem::new("ns", Kind::Fact, "a zebra crossing").with_id("z1"))
        .await
        .unwrap();
    b.upsert(MemoryItem::new("ns", Kind::Fact, "zebra zebra").with_id("z2"))
        .await
        .unwrap();
    assert_eq!(keyword_ids(&a, "zebra", Filter::new()).await, ["z2", "z1"]);
    b.upsert(MemoryItem::new("ns", Kind::Fact, "a horse").with_id("z2"))
        .await
        .unwrap();
    assert_eq!(keyword_ids(&a, "zebra", Filter::new()).await, ["z1"]);
    b.delete("ns", "z1").await.unwrap();
    assert!(keyword_ids(&a, "zebra", Filter::new()).await.is_empty());

    // A's own writes, without a reload. "item" matches all 300 items with one score (ties go
    // by id); the user filter passes every tenth, and still gets 10 hits.
    a.upsert(
        MemoryItem::new("ns", Kind::Fact, "zebra again")
            .with_id("z3")
            .with_user("rare"),
    )
    .await
    .unwrap();
    assert_eq!(keyword_ids(&a, "zebra", Filter::new()).await, ["z3"]);
    // Only the best 40 of the ranking are sorted at first; the filter's later runs reach past
    // them and must still see the rest in order.
    let rare = keyword_ids(&a, "item", Filter::new().user("rare")).await;
    let want: Vec<String> = (0..10).map(|i| format!("i{:04}", i * 10 + 3)).collect();
    assert_eq!(rare, want);
    a.close().await.unwrap();
    b.close().await.unwrap();

    // Reopened: loaded from the file.
    let reopened = open(&path, 50).await;
    assert_eq!(keyword_ids(&reopened, "zebra", Filter::new()).await, ["z3"]);
    assert_eq!(
        keyword_ids(&reopened, "item", Filter::new().user("rare")).await,
        rare
    );
}

/// The first vector search of "ns" (any query), which loads its vector index.
async fn load_vectors(store: &SqliteStore) -> memlayer_store_sqlite::Origin {
    top(store, &vector(1), Filter::new(), 1).await;
    store.vector_index_origin("ns").unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn saved_graphs_are_restored_after_a_restart_and_follow_later_writes() {
    use memlayer_store_sqlite::Origin;
    let dir = tempfile::tempdir().unwrap();
    let (path, store) = filled(&dir, |p| config(p, 100), 600).await;
    assert_eq!(load_vectors(&store).await, Origin::Built);
    let queries: Vec<Vec<f32>> = (0..20).map(|i| vector(3000 + i * 37)).collect();
    let mut before = Vec::new();
    for q in &queries {
        before.push(top(&store, q, Filter::new(), 10).await);
    }
    store.close().await.unwrap();
    let graphs = dir.path().join("m.db.graphs");
    assert!(std::fs::read_dir(&graphs).unwrap().count() >= 2);

    // The same graph comes back: the same answers.
    let reopened = open(&path, 100).await;
    assert_eq!(
        load_vectors(&reopened).await,
        Origin::Restored {
            kept: 600,
            inserted: 0,
            removed: 0
        }
    );
    for (q, want) in queries.iter().zip(&before) {
        assert_eq!(&top(&reopened, q, Filter::new(), 10).await, want);
    }
    reopened.close().await.unwrap();

    // Writes the saved graph has not seen: 50 deleted, 20 vectors changed, 80 new.
    let writer = SqliteStore::open_with(config(&path, 100).save_graphs(false))
        .await
        .unwrap();
    for i in 0..50 {
        writer.delete("ns", &format!("i{i:04}")).await.unwrap();
    }
    let changed: Vec<MemoryItem> = (100..120)
        .map(|i| item(i).with_embedding("test/16", vector(i + 5000)))
        .collect();
    writer.upsert_many(changed).await.unwrap();
    writer
        .upsert_many((600..680).map(item).collect())
        .await
        .unwrap();
    writer.close().await.unwrap();

    let patched = open(&path, 100).await;
    assert_eq!(
        load_vectors(&patched).await,
        Origin::Restored {
            kept: 530,
            inserted: 100,
            removed: 70
        }
    );
    // The patched graph is approximate: its answers against the exact scan's.
    let exact = open(&path, usize::MAX).await;
    let (mut found, mut wanted) = (0, 0);
    for q in queries
        .iter()
        .chain([vector(105 + 5000), vector(650), vector(10)].iter())
    {
        for filter in [Filter::new(), Filter::new().user("rare")] {
            let got = top(&patched, q, filter.clone(), 10).await;
            let want = top(&exact, q, filter, 10).await;
            assert_eq!(got.len(), 10);
            wanted += want.len();
            found += want.iter().filter(|w| got.contains(w)).count();
        }
    }
    let recall = found as f64 / wanted as f64;
    // 1.0 in 20 runs out of 20 (0.945-0.970 before removed nodes were buried).
    assert!(recall >= 0.98, "recall@10 {recall} against the exact scan");
    // A changed vector is found under its new value; a deleted item never comes back.
    assert_eq!(
        top(&patched, &vector(105 + 5000), Filter::new(), 1).await,
        ["i0105"]
    );
    assert!(
        !top(&patched, &vector(10), Filter::new(), 10)
            .await
            .contains(&"i0010".to_owned())
    );

    // A deleted namespace's saved graph goes with it.
    exact.close().await.unwrap();
    patched.delete_namespace("ns").await.unwrap();
    patched.close().await.unwrap();
    assert_eq!(std::fs::read_dir(&graphs).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn graphs_are_not_saved_when_saving_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let off = |p: &std::path::Path| config(p, 100).save_graphs(false);
    let (path, store) = filled(&dir, off, 300).await;
    load_vectors(&store).await;
    store.close().await.unwrap();
    assert!(!dir.path().join("m.db.graphs").exists());
    let reopened = SqliteStore::open_with(off(&path)).await.unwrap();
    assert_eq!(
        load_vectors(&reopened).await,
        memlayer_store_sqlite::Origin::Built
    );
}

/// Searching namespaces that hold nothing (any name a client makes up) loads no index, so it
/// cannot grow the process's memory; a namespace with items gets its indexes as before.
#[tokio::test]
async fn searching_empty_namespaces_loads_no_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir.path().join("s.db"), usize::MAX).await;
    store.upsert(item(1)).await.unwrap();
    for i in 0..200 {
        let ns = format!("made-up-{i}");
        for request in [
            SearchRequest::keyword("item"),
            SearchRequest::vector(vector(1)),
            SearchRequest::hybrid("item").with_vector(vector(1)),
        ] {
            assert!(store.search(&ns, &request).await.unwrap().hits.is_empty());
        }
    }
    assert_eq!(store.loaded_indexes(), (0, 0));
    let hits = store
        .search("ns", &SearchRequest::hybrid("item").with_vector(vector(1)))
        .await
        .unwrap();
    assert_eq!(hits.hits.len(), 1);
    assert_eq!(store.loaded_indexes(), (1, 1));
}

/// A store at `path` holding items `0..50`, whose namespace's graph was built (and saved) by a
/// vector search.
async fn graphed(path: &std::path::Path) -> SqliteStore {
    let store = open(path, 1).await;
    for i in 0..50 {
        store.upsert(item(i)).await.unwrap();
    }
    store
        .search("ns", &SearchRequest::vector(vector(3)))
        .await
        .unwrap();
    store
}

/// Files that hold memories are their owner's alone: the database (and its write-ahead log)
/// and the saved graphs.
#[cfg(unix)]
#[tokio::test]
async fn the_database_and_its_graphs_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private.db");
    let store = graphed(&path).await;
    store.close().await.unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    let graphs = std::path::PathBuf::from(format!("{}.graphs", path.display()));
    assert_eq!(mode(&graphs), 0o700);
    let mut saved = 0;
    for entry in std::fs::read_dir(&graphs).unwrap() {
        assert_eq!(mode(&entry.unwrap().path()), 0o600);
        saved += 1;
    }
    assert!(saved > 0, "a graph was saved");
}

/// `scrub` after a forget leaves no saved graph of the namespace and an empty write-ahead log.
#[tokio::test]
async fn scrub_drops_saved_graphs_and_truncates_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scrub.db");
    let store = graphed(&path).await;
    let graphs = std::path::PathBuf::from(format!("{}.graphs", path.display()));
    assert!(std::fs::read_dir(&graphs).unwrap().count() > 0);
    for i in 0..50 {
        store.delete("ns", &format!("i{i:04}")).await.unwrap();
    }
    let cleaned = store.scrub(&["ns".to_owned()]).await.unwrap();
    assert!(
        cleaned.iter().any(|l| l.contains("truncated")),
        "{cleaned:?}"
    );
    assert_eq!(std::fs::read_dir(&graphs).unwrap().count(), 0);
    let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
    assert_eq!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0), 0);
    // Nothing of the deleted contents is left in the database file.
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        !bytes.windows(b"item 17".len()).any(|w| w == b"item 17"),
        "secure_delete zeroed the deleted rows"
    );
    assert!(
        store
            .search("ns", &SearchRequest::keyword("item"))
            .await
            .unwrap()
            .hits
            .is_empty()
    );
    store.close().await.unwrap();
}

/// The indexes stay within their budget: past it, the least recently searched namespaces'
/// indexes are dropped, and a search of one of them loads it again with the same answer.
#[tokio::test]
async fn indexes_past_the_budget_drop_the_least_recently_searched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("budget.db");
    let store = SqliteStore::open_with(config(&path, usize::MAX).index_cache_bytes(1))
        .await
        .unwrap();
    for ns in ["n1", "n2", "n3"] {
        for i in 0..5 {
            let mut it = item(i);
            it.namespace = ns.to_owned();
            store.upsert(it).await.unwrap();
        }
    }
    let mut first = Vec::new();
    for ns in ["n1", "n2", "n3"] {
        let hits = store
            .search(ns, &SearchRequest::keyword("item"))
            .await
            .unwrap();
        first.push(hits.hits.len());
        assert_eq!(
            store.loaded_indexes(),
            (0, 1),
            "only the last searched stays"
        );
    }
    assert_eq!(first, [5, 5, 5]);
    let again = store
        .search("n1", &SearchRequest::hybrid("item").with_vector(vector(2)))
        .await
        .unwrap();
    assert_eq!(again.hits.len(), 5);
    assert_eq!(again.hits[0].item.id, "i0002");
}

//! The `memlayer` binary against temporary SQLite stores: every subcommand with its output
//! asserted, an export/import round trip between backends, forget checked through every API,
//! and a resumable re-embedding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use indicatif::ProgressBar;
use memlayer::{
    CountOptions, DynStore, ErrorKind, Filter, Kind, MemoryItem, MemoryStoreExt, SearchMode,
    SearchRequest, Timestamp,
};
use memlayer_cli::transfer;
use serde_json::Value;

mod common;

use common::{BIN, memlayer, ok};

fn json(out: &Output) -> Value {
    serde_json::from_str(&ok(out)).unwrap()
}

fn url_of(path: &Path) -> String {
    format!("sqlite:{}", path.display())
}

#[test]
fn every_subcommand_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The default store is ./memlayer.db, and the embedder is stated at start-up.
    let out = Command::new(BIN)
        .current_dir(d)
        .env_remove("MEMLAYER_URL")
        .env_remove("MEMLAYER_MINILM_DIR")
        .env("MEMLAYER_OFFLINE", "1")
        .env("XDG_CACHE_HOME", d.join("cache"))
        .args([
            "add",
            "agent",
            "Alice is vegetarian and lives in Lisbon",
            "--user",
            "alice",
            "--tag",
            "diet",
            "--id",
            "a1",
        ])
        .output()
        .unwrap();
    assert_eq!(ok(&out), "stored a1 (version 1)\n");
    assert!(String::from_utf8_lossy(&out.stderr).contains("embedder: memlayer/hash-v1-384"));
    assert!(d.join("memlayer.db").is_file());
    let url = url_of(&d.join("memlayer.db"));

    ok(&memlayer(
        d,
        &url,
        &[
            "add",
            "agent",
            "Bob likes sushi",
            "--user",
            "bob",
            "--id",
            "b1",
        ],
    ));
    ok(&memlayer(
        d,
        &url,
        &[
            "add",
            "agent",
            "hello there",
            "--kind",
            "human",
            "--user",
            "bob",
            "--session",
            "s1",
            "--id",
            "m1",
        ],
    ));
    ok(&memlayer(
        d,
        &url,
        &["add", "other", "a note", "--id", "o1"],
    ));

    let got = json(&memlayer(d, &url, &["--json", "get", "agent", "a1"]));
    assert_eq!(got["content"], "Alice is vegetarian and lives in Lisbon");
    assert_eq!(got["metadata"]["user_id"], "alice");
    assert_eq!(got["tags"], serde_json::json!(["diet"]));
    assert_eq!(got["embedding"]["model"], "memlayer/hash-v1-384");
    let table = ok(&memlayer(d, &url, &["get", "agent", "b1"]));
    assert!(table.contains("content    Bob likes sushi"), "{table}");

    let hits = json(&memlayer(
        d,
        &url,
        &["--json", "search", "agent", "vegetarian Lisbon"],
    ));
    assert_eq!(hits["hits"][0]["item"]["id"], "a1", "{hits}");
    let hits = json(&memlayer(
        d,
        &url,
        &["--json", "search", "agent", "sushi", "--mode", "keyword"],
    ));
    let ids: Vec<&str> = hits["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["item"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["b1"]);
    let hits = json(&memlayer(
        d,
        &url,
        &[
            "--json", "search", "agent", "anything", "--user", "bob", "--kind", "human",
        ],
    ));
    assert_eq!(hits["hits"].as_array().unwrap().len(), 1, "{hits}");
    assert_eq!(hits["hits"][0]["item"]["id"], "m1");
    let table = ok(&memlayer(d, &url, &["search", "agent", "vegetarian"]));
    assert!(table.starts_with("score  keyword  vector  id"), "{table}");
    assert!(table.lines().nth(1).unwrap().contains("a1"), "{table}");

    let page = json(&memlayer(
        d,
        &url,
        &["--json", "list", "agent", "--limit", "2"],
    ));
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let page2 = json(&memlayer(
        d,
        &url,
        &[
            "--json", "list", "agent", "--limit", "2", "--cursor", &cursor,
        ],
    ));
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert!(page2["next_cursor"].is_null());

    assert_eq!(ok(&memlayer(d, &url, &["namespaces"])), "agent\nother\n");
    let stats = json(&memlayer(d, &url, &["--json", "stats"]));
    assert_eq!(stats["backend"], "sqlite");
    assert_eq!(stats["embedding"]["dim"], 384);
    assert_eq!(
        stats["namespaces"][0],
        serde_json::json!({"namespace": "agent", "live": 3, "soft_deleted": 0})
    );

    assert_eq!(
        ok(&memlayer(
            d,
            &url,
            &["clear", "agent", "--user", "bob", "--kind", "human"]
        )),
        "cleared 1 items\n"
    );
    let stats = json(&memlayer(d, &url, &["--json", "stats"]));
    assert_eq!(stats["namespaces"][0]["soft_deleted"], 1);
    // A clear that selects everything needs --all.
    let refused = memlayer(d, &url, &["clear", "other"]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("memlayer: ") && err.contains("all"),
        "{err}"
    );
    assert_eq!(
        ok(&memlayer(d, &url, &["clear", "other", "--all"])),
        "cleared 1 items\n"
    );

    assert_eq!(
        ok(&memlayer(d, &url, &["delete", "agent", "b1"])),
        "deleted b1\n"
    );
    let missing = memlayer(d, &url, &["get", "agent", "b1"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no item \"b1\""));

    // Bad input: one clear line, non-zero exit.
    let bad = memlayer(d, &url, &["search", "agent", "x", "--mode", "psychic"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--mode is \"psychic\""));
    let bad = memlayer(d, "mysql://nope", &["stats"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("mysql"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_deletes_expired_items_and_dry_run_only_lists() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let url = url_of(&path);
    {
        let store = memlayer::open(&url).await.unwrap();
        let past = Timestamp::now().saturating_sub(std::time::Duration::from_secs(60));
        store
            .upsert(
                MemoryItem::new("n", Kind::Fact, "old")
                    .with_id("gone")
                    .with_expires_at(past),
            )
            .await
            .unwrap();
        store
            .upsert(MemoryItem::new("n", Kind::Fact, "keep").with_id("kept"))
            .await
            .unwrap();
        store.close().await.unwrap();
    }
    let d = dir.path();
    let dry = json(&memlayer(d, &url, &["--json", "sweep", "--dry-run"]));
    assert_eq!(dry["would_delete"].as_array().unwrap().len(), 1, "{dry}");
    assert_eq!(dry["would_delete"][0]["id"], "gone");
    let text = ok(&memlayer(d, &url, &["sweep", "--dry-run"]));
    assert!(
        text.contains("1 expired items would be deleted (dry run)"),
        "{text}"
    );
    let swept = json(&memlayer(d, &url, &["--json", "sweep"]));
    assert_eq!(swept["deleted"], 1, "{swept}");
    let store = memlayer::open(&url).await.unwrap();
    assert_eq!(
        store.get("n", "gone").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(store.get("n", "kept").await.unwrap().content, "keep");
}

/// Items covering what an export must carry: kinds, tool calls, metadata, tags, embeddings,
/// expiry, supersession, a large payload repeated (stored once as a blob), a soft-deleted item.
async fn seed(store: &DynStore) {
    let big = "x".repeat(3000);
    let mut items = vec![
        MemoryItem::new("agent", Kind::Human, "what is the weather in Paris?").with_id("h1").with_user("alice").with_session("s1"),
        MemoryItem::new("agent", Kind::Ai, "let me check")
            .with_id("a1")
            .with_user("alice")
            .with_session("s1")
            .with_tool_calls(vec![serde_json::json!({"id": "c1", "name": "weather", "args": {"city": "Paris", "blob": big.clone()}})]),
        MemoryItem::new("agent", Kind::Tool, big.clone()).with_id("t1").with_user("alice").with_session("s1").with_tool_result("c1", "weather", false),
        MemoryItem::new("agent", Kind::Tool, big.clone()).with_id("t2").with_user("alice").with_session("s1").with_tool_result("c2", "weather", false),
        MemoryItem::new("agent", Kind::Fact, "Alice lives in Paris")
            .with_id("f1")
            .with_user("alice")
            .with_tag("home")
            .with_extra("source", "chat")
            .with_extra("n", 3)
            .with_importance(0.8)
            .with_embedding("test-model", vec![0.6, 0.8, 0.0]),
        MemoryItem::new("agent", Kind::Fact, "Bob lives in Rome").with_id("f2").with_user("bob").with_embedding("test-model", vec![0.0, 0.6, 0.8]),
        MemoryItem::new("agent", Kind::Custom("note".into()), "expired already")
            .with_id("e1")
            .with_user("bob")
            .with_expires_at(Timestamp::now().saturating_sub(std::time::Duration::from_secs(5))),
        MemoryItem::new("other", Kind::Summary, "a summary").with_id("s1").with_user("alice"),
        MemoryItem::new("agent", Kind::Fact, "soon deleted").with_id("d1").with_user("bob"),
    ];
    for (n, item) in items.iter_mut().enumerate() {
        item.created_at = Timestamp::from_millis(1_700_000_000_000 + n as i64 * 1000);
    }
    store.upsert_many(items).await.unwrap();
    store.supersede("agent", "f2", "f1").await.unwrap();
    store
        .clear(
            "agent",
            &memlayer::ClearRequest::matching(
                Filter::new()
                    .user("bob")
                    .kind(Kind::Fact)
                    .include_superseded(false),
            ),
        )
        .await
        .unwrap();
}

async fn export_bytes(store: &DynStore) -> Vec<u8> {
    let namespaces = store.list_namespaces().await.unwrap();
    let mut out = Vec::new();
    transfer::export(store, &namespaces, &mut out, &ProgressBar::hidden())
        .await
        .unwrap();
    out
}

async fn import_bytes(store: &DynStore, bytes: &[u8]) -> transfer::Transfer {
    let mut r = std::io::BufReader::new(bytes);
    transfer::import(store, &mut r, &ProgressBar::hidden())
        .await
        .unwrap()
}

/// A fresh Postgres store when `MEMLAYER_POSTGRES_URL` is set (required in CI).
async fn postgres() -> Option<DynStore> {
    let url = memlayer_conformance::env_or_skip("MEMLAYER_POSTGRES_URL", "postgres")?;
    let place = format!(
        "cli_{}_{}",
        std::process::id(),
        Timestamp::now().as_millis()
    );
    Some(
        memlayer::open_with(memlayer::Config::new(url).place(place))
            .await
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_import_round_trips_byte_for_byte_between_backends() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = memlayer::open(&url_of(&dir.path().join("a.db")))
        .await
        .unwrap();
    seed(&sqlite).await;
    let first = export_bytes(&sqlite).await;
    let text = String::from_utf8(first.clone()).unwrap();
    // The repeated 3000-byte payload is written once; the soft-deleted item not at all.
    assert_eq!(
        text.matches(&"x".repeat(3000)).count(),
        2,
        "the tool result and the tool-call payload, once each"
    );
    assert!(!text.contains("soon deleted"));
    assert!(text.contains("expired already") && text.contains("Bob lives in Rome"));
    assert!(
        text.lines()
            .next()
            .unwrap()
            .contains("\"memlayer_export\":1")
    );

    let mut targets: Vec<(String, DynStore)> =
        vec![("memory".into(), memlayer::open("memory").await.unwrap())];
    if let Some(pg) = postgres().await {
        targets.push(("postgres".into(), pg));
    }
    for (name, target) in targets {
        let done = import_bytes(&target, &first).await;
        assert_eq!(done.items, 8, "{name}");
        assert_eq!(done.vectors, 2, "{name}");
        let second = export_bytes(&target).await;
        assert_eq!(
            String::from_utf8(second).unwrap(),
            text,
            "sqlite -> {name} -> export differs"
        );
        // Embeddings and model ids came along, and search sees them.
        let f1 = target.get("agent", "f1").await.unwrap();
        assert_eq!(f1.embedding.unwrap().vector, vec![0.6, 0.8, 0.0]);
        let hits = target
            .search("agent", &SearchRequest::vector(vec![0.6, 0.8, 0.0]))
            .await
            .unwrap();
        assert_eq!(hits.hits[0].item.id, "f1", "{name}");
        // Back into SQLite through the binary: same bytes again.
        let file = dir.path().join(format!("{name}.jsonl"));
        std::fs::write(&file, &text).unwrap();
        let url = url_of(&dir.path().join(format!("from-{name}.db")));
        let imported = ok(&memlayer(
            dir.path(),
            &url,
            &["import", file.to_str().unwrap()],
        ));
        assert_eq!(
            imported,
            "imported 8 items (2 with vectors, 2 shared blobs)\n"
        );
        let exported = memlayer(dir.path(), &url, &["export"]);
        assert_eq!(ok(&exported), text, "through the binary");
        let said = String::from_utf8_lossy(&exported.stderr);
        assert!(said.contains("from 2 namespaces"), "{said}");
        let one = memlayer(dir.path(), &url, &["export", "--namespace", "agent"]);
        ok(&one);
        let said = String::from_utf8_lossy(&one.stderr);
        assert!(
            said.contains(" from 1 namespace\n"),
            "one is singular: {said}"
        );
        target.close().await.unwrap();
    }

    // A corrupted blob or a dangling reference is refused, naming the line.
    let bad = text.replacen("\"value\":\"xxx", "\"value\":\"yxx", 1);
    let err = transfer::import(
        &memlayer::open("memory").await.unwrap(),
        &mut std::io::BufReader::new(bad.as_bytes()),
        &ProgressBar::hidden(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    let dangling: String = text
        .lines()
        .filter(|l| !l.starts_with("{\"$blob\""))
        .map(|l| format!("{l}\n"))
        .collect();
    let err = transfer::import(
        &memlayer::open("memory").await.unwrap(),
        &mut std::io::BufReader::new(dangling.as_bytes()),
        &ProgressBar::hidden(),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("not defined before it") && err.to_string().contains("line "),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_leaves_nothing_of_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let url = url_of(&dir.path().join("f.db"));
    let store = memlayer::open(&url).await.unwrap();
    seed(&store).await;
    let before_agent = store.count("agent", CountOptions::all()).await.unwrap();
    store.close().await.unwrap();

    let out = json(&memlayer(
        dir.path(),
        &url,
        &["--json", "forget", "--user", "alice"],
    ));
    assert_eq!(out["items"], 6, "{out}");
    assert_eq!(out["vectors"], 1, "{out}");
    assert_eq!(
        out["namespaces"][0],
        serde_json::json!({"namespace": "agent", "items": 5, "vectors": 1, "messages": 4, "summaries": 0, "other": 1})
    );
    assert_eq!(
        out["namespaces"][1],
        serde_json::json!({"namespace": "other", "items": 1, "vectors": 0, "messages": 0, "summaries": 1, "other": 0})
    );

    let store = memlayer::open(&url).await.unwrap();
    for (ns, id) in [
        ("agent", "h1"),
        ("agent", "a1"),
        ("agent", "t1"),
        ("agent", "t2"),
        ("agent", "f1"),
        ("other", "s1"),
    ] {
        assert_eq!(
            store.get(ns, id).await.unwrap_err().kind(),
            ErrorKind::NotFound,
            "{id}"
        );
    }
    for ns in ["agent", "other"] {
        let everything = Filter::new()
            .user("alice")
            .include_deleted(true)
            .include_expired(true)
            .include_superseded(true);
        assert!(
            store
                .list_all(ns, everything.clone())
                .await
                .unwrap()
                .is_empty(),
            "{ns}"
        );
        for mode in [
            SearchMode::Recent,
            SearchMode::Keyword,
            SearchMode::Vector,
            SearchMode::Hybrid,
        ] {
            let mut request = SearchRequest::new(mode)
                .with_query("Paris weather summary lives")
                .with_filter(everything.clone());
            if mode == SearchMode::Vector {
                request = request.with_vector(vec![0.6, 0.8, 0.0]);
            }
            let hits = store.search(ns, &request).await.unwrap();
            assert!(hits.hits.is_empty(), "{ns} {mode:?}: {:?}", hits.hits);
        }
        let unfiltered = store
            .search(
                ns,
                &SearchRequest::vector(vec![0.6, 0.8, 0.0])
                    .with_filter(Filter::new().include_superseded(true)),
            )
            .await
            .unwrap();
        assert!(
            unfiltered
                .hits
                .iter()
                .all(|h| h.item.metadata.user_id.as_deref() != Some("alice"))
        );
    }
    assert_eq!(
        store.count("agent", CountOptions::all()).await.unwrap(),
        before_agent - 5
    );
    let export = export_bytes(&store).await;
    assert!(!String::from_utf8(export).unwrap().contains("alice"));
    // Bob's items are untouched.
    assert_eq!(
        store.get("agent", "f2").await.unwrap().content,
        "Bob lives in Rome"
    );
    store.close().await.unwrap();
    let table = ok(&memlayer(dir.path(), &url, &["forget", "--user", "alice"]));
    assert!(
        table.contains("forgot user alice: 0 items and 0 vectors deleted in 0 namespaces"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reembed_is_resumable() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let source = url_of(&d.join("src.db"));
    let target = url_of(&d.join("dst.db"));
    for (i, text) in [
        "red apples",
        "green pears",
        "blue plums",
        "ripe figs",
        "sour limes",
    ]
    .iter()
    .enumerate()
    {
        ok(&memlayer(
            d,
            &source,
            &["add", "fruit", text, "--id", &format!("i{i}")],
        ));
    }
    // With MEMLAYER_MINILM_DIR (as in CI) the copy is embedded with MiniLM; else with the hash
    // embedder, which still exercises the resumption.
    let minilm = std::env::var("MEMLAYER_MINILM_DIR").ok();
    let run = |extra: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(d)
            .env_remove("MEMLAYER_MINILM_DIR")
            .env("MEMLAYER_OFFLINE", "1")
            .env("XDG_CACHE_HOME", d.join("cache"));
        if let Some(m) = &minilm {
            cmd.env("MEMLAYER_MINILM_DIR", m);
        }
        cmd.args(["--json", "--url", &source, "reembed", "--to", &target])
            .args(extra);
        serde_json::from_str::<Value>(&ok(&cmd.output().unwrap())).unwrap()
    };
    let first = run(&["--max-items", "2"]);
    assert_eq!(first["embedded"], 2, "{first}");
    let second = run(&[]);
    assert_eq!(second["embedded"], 3, "{second}");
    assert_eq!(second["skipped"], 2, "{second}");
    let third = run(&[]);
    assert_eq!(third["embedded"], 0, "{third}");
    assert_eq!(third["skipped"], 5, "{third}");

    let store = memlayer::open(&target).await.unwrap();
    let want = if minilm.is_some() {
        "sentence-transformers/all-MiniLM-L6-v2"
    } else {
        "memlayer/hash-v1-384"
    };
    let pin = store.embedding_pin().await.unwrap().unwrap();
    assert_eq!(pin.model, want);
    for i in 0..5 {
        let item = store.get("fruit", &format!("i{i}")).await.unwrap();
        assert_eq!(item.embedding.unwrap().model, want);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forget_deletes_the_users_events_from_the_event_log() {
    let Some(redis) = memlayer_conformance::env_or_skip("MEMLAYER_REDIS_URL", "redis") else {
        return;
    };
    use memlayer::orchestrator::{EventStore, MemoryEvent, RedisStreamSink};
    let key = format!(
        "cli-forget-events-{}-{}",
        std::process::id(),
        Timestamp::now().as_millis()
    );
    let dir = tempfile::tempdir().unwrap();
    let url = url_of(&dir.path().join("ev.db"));
    let sink = Arc::new(
        RedisStreamSink::connect(&redis, key.clone(), 10_000)
            .await
            .unwrap(),
    );
    let emitter = EventStore::new(memlayer::open(&url).await.unwrap(), 64);
    emitter.add_sink(sink.clone());
    let store: DynStore = Arc::new(emitter);
    seed(&store).await;
    store
        .upsert(
            MemoryItem::new("agent", Kind::Fact, "Bob's note")
                .with_id("b9")
                .with_user("bob"),
        )
        .await
        .unwrap();
    store
        .search(
            "agent",
            &SearchRequest::keyword("Paris").with_filter(Filter::new().user("alice")),
        )
        .await
        .unwrap();
    store.close().await.unwrap();
    // Events name items by id only; these are alice's.
    let names = |e: &MemoryEvent, ids: &[&str]| {
        let text = serde_json::to_string(e).unwrap();
        ids.iter().any(|id| text.contains(&format!("\"{id}\"")))
    };
    let alice = ["h1", "a1", "t1", "t2", "f1", "s1"];
    let before = sink.read_all().await.unwrap();
    let of_alice = before.iter().filter(|e| names(e, &alice)).count();
    assert_eq!(of_alice, 3, "two Added, one Searched: {before:?}");

    // A bad event log is refused before anything is deleted.
    let bad = memlayer(
        dir.path(),
        &url,
        &["forget", "--user", "alice", "--events", "redis://nohost"],
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--events"));
    let reopened = memlayer::open(&url).await.unwrap();
    assert_eq!(
        reopened.get("agent", "f1").await.unwrap().content,
        "Alice lives in Paris"
    );
    reopened.close().await.unwrap();

    let out = json(&memlayer(
        dir.path(),
        &url,
        &[
            "--json",
            "forget",
            "--user",
            "alice",
            "--events",
            &format!("{redis}/{key}"),
        ],
    ));
    assert_eq!(out["items"], 6, "{out}");
    assert_eq!(out["events"], 3, "{out}");
    let after = sink.read_all().await.unwrap();
    assert!(after.iter().all(|e| !names(e, &alice)), "{after:?}");
    assert_eq!(after.len(), before.len() - 3);
    // The events of other users' items stay.
    assert!(after.iter().any(|e| names(e, &["b9"])), "{after:?}");
}

/// Logs written to a pipe (a file, a log collector) carry no ANSI colour codes.
#[test]
fn serve_logs_to_a_pipe_in_plain_text() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let url = url_of(&dir.path().join("logs.db"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env_remove("MEMLAYER_URL")
        .env_remove("MEMLAYER_MINILM_DIR")
        .env("MEMLAYER_OFFLINE", "1")
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .env("RUST_LOG", "info")
        .args(["--url", &url, "serve", "--no-auth", "--bind"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        let listening = line.contains("listening");
        lines.push(line);
        if listening {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let text = lines.join("\n");
    assert!(text.contains("listening"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "ANSI codes in piped logs: {text:?}"
    );
}

/// A log reader that goes away (its pipe closed) does not stop the server: requests logged
/// after that are still answered.
#[test]
fn serve_outlives_its_log_reader() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let url = url_of(&dir.path().join("pipe.db"));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env_remove("MEMLAYER_URL")
        .env_remove("MEMLAYER_MINILM_DIR")
        .env("MEMLAYER_OFFLINE", "1")
        .env("XDG_CACHE_HOME", dir.path().join("cache"))
        .env("RUST_LOG", "info")
        .args(["--url", &url, "serve", "--bind"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    // The start-up line, not the warning before it that mentions listening on loopback.
    let listening = lines.any(|l| l.is_ok_and(|l| l.contains("memlayer-server listening")));
    drop(lines);
    let mut answers = Vec::new();
    if listening {
        for _ in 0..3 {
            let mut answer = String::new();
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.write_all(
                    b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                );
                let _ = s.read_to_string(&mut answer);
            }
            answers.push(answer);
        }
    }
    let alive = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(listening, "serve never said it listens");
    assert!(alive, "serve exited once its log reader went away");
    for a in &answers {
        assert!(a.starts_with("HTTP/1.1 200"), "{answers:?}");
    }
}

//! `memlayer import --from <format>` through the binary, with files written in each peer's
//! published shapes: what is kept, that a re-import changes nothing, and that a broken file is
//! reported by line with nothing written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::process::Output;

use memlayer::{CountOptions, DynStore, Kind, Timestamp};

mod common;

use common::{memlayer, ok as stdout};

struct Fixture {
    dir: tempfile::TempDir,
    url: String,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("import.db").display());
        Fixture { dir, url }
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    fn import(&self, args: &[&str]) -> Output {
        let mut all = vec!["import"];
        all.extend_from_slice(args);
        memlayer(self.dir.path(), &self.url, &all)
    }

    async fn store(&self) -> DynStore {
        memlayer::open(&self.url).await.unwrap()
    }
}

async fn count(store: &DynStore, ns: &str) -> u64 {
    store.count(ns, CountOptions::default()).await.unwrap()
}

/// The shape of mem0's `Memory.get_all` (v1.1): `{"results": [...]}`, each memory with its
/// id, text, hash, metadata, ISO timestamps (with an offset) and owners.
const MEM0: &str = r#"{"results": [
  {"id": "3c90c3cc-0d44-4b50-8888-8dd25736052a", "memory": "Likes to play cricket on weekends",
   "hash": "b8b1b8a5", "metadata": {"category": "hobbies"},
   "created_at": "2024-07-19T23:49:26.195412-07:00", "updated_at": null, "user_id": "alice"},
  {"id": "9d2a6f1e-77b0-4c0e-9d54-0d4f1c2e3a11", "memory": "Is a vegetarian",
   "hash": "17c0d4e2", "metadata": null,
   "created_at": "2024-07-20T10:00:00-07:00", "updated_at": "2024-07-21T10:00:00-07:00",
   "user_id": "alice", "agent_id": "chef", "run_id": "run-1", "actor_id": "alice", "role": "user"}
]}"#;

#[tokio::test]
async fn mem0_memories_keep_ids_owners_times_and_metadata() {
    let f = Fixture::new();
    let file = f.file("mem0.json", MEM0);
    let out = f.import(&["--from", "mem0", "--namespace", "agent", &file]);
    assert_eq!(
        stdout(&out),
        "imported 2 items from mem0 (2 records)\n",
        "{out:?}"
    );
    // A re-import replaces: the same two items.
    stdout(&f.import(&["--from", "mem0", "--namespace", "agent", &file]));
    let store = f.store().await;
    assert_eq!(count(&store, "agent").await, 2);
    let cricket = store
        .get("agent", "3c90c3cc-0d44-4b50-8888-8dd25736052a")
        .await
        .unwrap();
    assert_eq!(cricket.kind, Kind::Fact);
    assert_eq!(cricket.metadata.user_id.as_deref(), Some("alice"));
    assert_eq!(cricket.metadata.extra["category"], "hobbies");
    assert_eq!(cricket.metadata.extra["mem0_hash"], "b8b1b8a5");
    assert_eq!(
        cricket.created_at,
        Timestamp::parse_rfc3339("2024-07-20T06:49:26.195Z").unwrap()
    );
    let veg = store
        .get("agent", "9d2a6f1e-77b0-4c0e-9d54-0d4f1c2e3a11")
        .await
        .unwrap();
    assert_eq!(veg.metadata.agent_id.as_deref(), Some("chef"));
    assert_eq!(veg.metadata.session_id.as_deref(), Some("run-1"));
    assert_eq!(veg.metadata.extra["role"], "user");
    assert_eq!(
        veg.metadata.extra["source_updated_at"],
        Timestamp::parse_rfc3339("2024-07-21T17:00:00Z")
            .unwrap()
            .to_rfc3339()
    );
}

#[tokio::test]
async fn a_broken_file_is_reported_by_line_and_nothing_is_written() {
    let f = Fixture::new();
    let file = f.file(
        "broken.jsonl",
        concat!(
            "{\"id\": \"a\", \"memory\": \"fine\", \"user_id\": \"u\"}\n",
            "{\"id\": \"b\", \"user_id\": \"u\"}\n",
            "{\"id\": \"c\", \"memory\": \"late\", \"created_at\": \"last tuesday\"}\n",
            "[1, 2]\n",
        ),
    );
    let out = f.import(&["--from", "mem0", &file]);
    assert!(!out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("line 2: memory: is required"), "{said}");
    assert!(
        said.contains("line 3: created_at: \"last tuesday\" is not an ISO 8601 datetime"),
        "{said}"
    );
    assert!(said.contains("line 4: expected a JSON object"), "{said}");
    assert!(
        said.contains("nothing was imported: 3 records of 4 could not be mapped from mem0"),
        "{said}"
    );
    assert_eq!(
        count(&f.store().await, "default").await,
        0,
        "line 1 was not written"
    );
    // Not JSON at all: the line that does not parse.
    let file = f.file("garbage.jsonl", "{\"memory\": \"x\"}\n{oops\n");
    let out = f.import(&["--from", "mem0", &file]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 2:"),
        "{out:?}"
    );
}

/// Agent Memory Server: long-term records as `search_long_term_memory` returns them, and a
/// working-memory session as `GET /v1/working-memory/{id}` returns it.
const AMS_RECORDS: &str = r#"{"memories": [
  {"id": "01J0AMS1", "text": "Bob's flight to Lyon leaves at 9", "namespace": "travel",
   "user_id": "bob", "session_id": "s9", "topics": ["travel"], "entities": ["Lyon"],
   "memory_type": "episodic", "created_at": "2025-03-01T08:00:00Z",
   "last_accessed": "2025-03-02T08:00:00Z", "event_date": "2025-03-10T09:00:00Z",
   "memory_hash": "x", "discrete_memory_extracted": "t", "dist": 0.12},
  {"text": "Bob prefers aisle seats", "namespace": "travel", "user_id": "bob",
   "memory_type": "semantic"}
], "total": 2, "next_offset": null}"#;

const AMS_SESSION: &str = r#"{"session_id": "s9", "namespace": "travel", "user_id": "bob",
  "messages": [
    {"id": "m-1", "role": "user", "content": "Book me a seat to Lyon",
     "created_at": "2025-03-01T07:59:00Z"},
    {"role": "assistant", "content": "Done: seat 14C."}
  ],
  "memories": [], "data": {}, "context": null, "tokens": 0}"#;

#[tokio::test]
async fn ams_records_and_sessions_keep_their_namespace_and_fields() {
    let f = Fixture::new();
    let records = f.file("ams.json", AMS_RECORDS);
    let session = f.file("session.json", AMS_SESSION);
    assert_eq!(
        stdout(&f.import(&["--from", "ams", &records])),
        "imported 2 items from ams (2 records)\n"
    );
    assert_eq!(
        stdout(&f.import(&["--from", "ams", &session])),
        "imported 2 items from ams (1 record)\n"
    );
    // Again: ids are kept or derived, so nothing is added.
    stdout(&f.import(&["--from", "ams", &records]));
    stdout(&f.import(&["--from", "ams", &session]));
    let store = f.store().await;
    assert_eq!(count(&store, "travel").await, 4);
    let flight = store.get("travel", "01J0AMS1").await.unwrap();
    assert_eq!(flight.metadata.user_id.as_deref(), Some("bob"));
    assert!(flight.tags.contains("topic:travel") && flight.tags.contains("entity:Lyon"));
    assert_eq!(
        flight.created_at,
        Timestamp::parse_rfc3339("2025-03-01T08:00:00Z").unwrap()
    );
    let first = store.get("travel", "m-1").await.unwrap();
    assert_eq!(first.kind, Kind::Human);
    assert_eq!(first.metadata.session_id.as_deref(), Some("s9"));
    // A bad record names its field.
    let bad = f.file("bad.json", r#"[{"text": "x", "memory_type": "dream"}]"#);
    let out = f.import(&["--from", "ams", &bad]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("record 1: memory_type:"),
        "{out:?}"
    );
}

/// LangGraph `BaseStore` items (`Item.dict()`), one per line: a plain value and langmem's.
const LANGGRAPH: &str = concat!(
    r#"{"namespace": ["memories", "user-1"], "key": "k1", "value": {"content": "prefers tea"}, "created_at": "2025-01-02T03:04:05+00:00", "updated_at": "2025-01-03T03:04:05+00:00"}"#,
    "\n",
    r#"{"namespace": ["memories", "user-1"], "key": "k2", "value": {"kind": "Memory", "content": {"content": "works at ACME"}}, "created_at": "2025-01-02T03:04:05+00:00", "updated_at": "2025-01-02T03:04:05+00:00"}"#,
    "\n",
);

#[tokio::test]
async fn langgraph_items_become_items_of_their_namespace_path() {
    let f = Fixture::new();
    let file = f.file("lg.jsonl", LANGGRAPH);
    stdout(&f.import(&["--from", "langgraph", &file]));
    stdout(&f.import(&["--from", "langgraph", &file]));
    let store = f.store().await;
    assert_eq!(count(&store, "memories.user-1").await, 2);
    let all = store
        .list("memories.user-1", &memlayer::ListRequest::default())
        .await
        .unwrap();
    let mut contents: Vec<&str> = all.items.iter().map(|i| i.content.as_str()).collect();
    contents.sort_unstable();
    assert_eq!(contents, ["prefers tea", "works at ACME"]);
    assert!(
        all.items
            .iter()
            .all(|i| i.metadata.extra["langgraph_namespace"]
                == serde_json::json!(["memories", "user-1"]))
    );
}

#[tokio::test]
async fn generic_jsonl_and_csv_follow_the_mapping() {
    let f = Fixture::new();
    let jsonl = f.file(
        "notes.jsonl",
        concat!(
            r#"{"text": "Renew the passport", "uid": "carol", "ts": 1700000000, "labels": ["todo", "travel"], "source": "app"}"#,
            "\n",
            r#"{"text": "Dentist on Friday", "uid": "carol", "ts": "2023-11-15T10:00:00Z"}"#,
            "\n",
        ),
    );
    let map = "content=text,user=uid,created_at=ts,tags=labels";
    let args = [
        "--from",
        "jsonl",
        "--map",
        map,
        "--namespace",
        "notes",
        &jsonl,
    ];
    assert_eq!(
        stdout(&f.import(&args)),
        "imported 2 items from jsonl (2 records)\n"
    );
    stdout(&f.import(&args));
    let csv = f.file(
        "notes.csv",
        "note,owner,when,tags\n\"Call mum, then dad\",dave,2024-05-01T12:00:00Z,\"family;phone\"\n",
    );
    let out = f.import(&[
        "--from",
        "csv",
        "--map",
        "content=note,user=owner,created_at=when,tags=tags",
        "--namespace",
        "notes",
        &csv,
    ]);
    assert_eq!(stdout(&out), "imported 1 item from csv (1 record)\n");
    let store = f.store().await;
    assert_eq!(count(&store, "notes").await, 3);
    let page = store
        .list("notes", &memlayer::ListRequest::default())
        .await
        .unwrap();
    let passport = page
        .items
        .iter()
        .find(|i| i.content == "Renew the passport")
        .unwrap();
    assert_eq!(passport.metadata.user_id.as_deref(), Some("carol"));
    assert_eq!(
        passport.created_at,
        Timestamp::from_millis(1_700_000_000_000)
    );
    assert!(passport.tags.contains("todo") && passport.tags.contains("travel"));
    assert_eq!(passport.metadata.extra["source"], "app");
    let call = page
        .items
        .iter()
        .find(|i| i.content == "Call mum, then dad")
        .unwrap();
    assert!(call.tags.contains("family") && call.tags.contains("phone"));
    // A mapping is required, and a mapped field that is missing is reported by line.
    let out = f.import(&["--from", "jsonl", &jsonl]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("content=<field> is required"));
    let out = f.import(&["--from", "jsonl", "--map", "content=body", &jsonl]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("line 1: body: is required (mapped to content)"),
        "{out:?}"
    );
}

//! The native API end to end: a real server on an ephemeral port over a SQLite file, driven by
//! a real HTTP client.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use memlayer_server::{Auth, ServerConfig, serve};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

struct Server {
    base: String,
    http: Client,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn start(auth: Auth, max_body_bytes: usize) -> Server {
    let mut config = ServerConfig::default();
    config.auth = auth;
    config.max_body_bytes = max_body_bytes;
    start_with(config).await
}

async fn start_with(config: ServerConfig) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("api.db").display());
    let store = memlayer::open(&url).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        serve(listener, store, config, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Server {
        base: format!("http://{addr}"),
        http: Client::new(),
        _dir: dir,
        stop: Some(tx),
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut r = self.http.request(method, self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, value)
    }

    async fn raw(&self, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn write_answers_leave_the_vector_out() {
    let s = start(Auth::Disabled, 8 << 20).await;
    let item = |id: &str| {
        json!({"id": id, "kind": "fact", "content": format!("{id} has a vector"),
               "embedding": {"model": "m", "vector": [0.1, 0.2, 0.3]}})
    };
    let (st, created) = s
        .call(Method::POST, "/ns/w/items", None, Some(item("a")))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let (st, replaced) = s
        .call(Method::PUT, "/ns/w/items/a", None, Some(item("a")))
        .await;
    assert_eq!(st, StatusCode::OK, "{replaced}");
    let (st, batch) = s
        .call(
            Method::POST,
            "/ns/w/items/batch",
            None,
            Some(json!([item("b")])),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{batch}");
    let (st, superseded) = s
        .call(
            Method::POST,
            "/ns/w/items/a/supersede",
            None,
            Some(json!({"by": "b"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{superseded}");
    let (st, restored) = s
        .call(Method::POST, "/ns/w/items/a/restore", None, None)
        .await;
    assert_eq!(st, StatusCode::OK, "{restored}");
    for (what, answer) in [
        ("create", &created),
        ("put", &replaced),
        ("batch", &batch["items"][0]),
        ("supersede", &superseded),
        ("restore", &restored),
    ] {
        assert!(answer["id"].is_string(), "{what}: {answer}");
        assert!(answer.get("embedding").is_none(), "{what}: {answer}");
    }
    // The vector is stored all the same: a get returns it.
    let (st, got) = s.call(Method::GET, "/ns/w/items/a", None, None).await;
    assert_eq!(st, StatusCode::OK, "{got}");
    assert_eq!(got["embedding"]["model"], "m", "{got}");
}

#[tokio::test]
async fn search_hits_leave_their_vectors_out_unless_asked_for_them() {
    let s = start(Auth::Disabled, 8 << 20).await;
    let (st, a) = s
        .call(
            Method::POST,
            "/ns/v/items",
            None,
            Some(json!({"id": "a", "kind": "fact", "content": "vectors here",
                        "embedding": {"model": "m", "vector": [0.1, 0.2, 0.3]}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{a}");
    let body = json!({"mode": "vector", "vector": [0.1, 0.2, 0.3]});
    for query in ["", "?vectors=false"] {
        let (st, without) = s
            .call(
                Method::POST,
                &format!("/ns/v/search{query}"),
                None,
                Some(body.clone()),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{query}: {without}");
        assert_eq!(without["hits"][0]["item"]["id"], "a", "{query}: {without}");
        assert!(
            without["hits"][0]["item"].get("embedding").is_none(),
            "{query}: {without}"
        );
    }
    let (st, with) = s
        .call(Method::POST, "/ns/v/search?vectors=true", None, Some(body))
        .await;
    assert_eq!(st, StatusCode::OK, "{with}");
    let vector: Vec<f32> = with["hits"][0]["item"]["embedding"]["vector"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    assert_eq!(vector, [0.1f32, 0.2, 0.3], "f32 values round-trip: {with}");
}

#[tokio::test]
async fn the_contract_over_http() {
    let s = start(Auth::Disabled, 8 << 20).await;
    let (st, v) = s.call(Method::GET, "/health", None, None).await;
    assert_eq!((st, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (st, v) = s.call(Method::GET, "/ready", None, None).await;
    assert_eq!(
        (st, v["backend"].as_str()),
        (StatusCode::OK, Some("sqlite"))
    );

    let (st, a) = s
        .call(
            Method::POST,
            "/ns/demo/items",
            None,
            Some(
                json!({"kind": "fact", "content": "The office is in Lyon", "tier": "semantic",
                        "metadata": {"user_id": "ann"}, "tags": ["work"]}),
            ),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{a}");
    let id = a["id"].as_str().unwrap().to_owned();
    assert_eq!(a["version"], 1);
    let (st, b) = s
        .call(
            Method::PUT,
            "/ns/demo/items/b",
            None,
            Some(json!({"kind": "fact", "content": "The office moved to Paris"})),
        )
        .await;
    assert_eq!((st, b["id"].as_str()), (StatusCode::OK, Some("b")));
    let (st, got) = s
        .call(Method::GET, &format!("/ns/demo/items/{id}"), None, None)
        .await;
    assert_eq!(
        (st, got["content"].as_str()),
        (StatusCode::OK, Some("The office is in Lyon"))
    );
    let (st, _) = s.call(Method::GET, "/ns/other/items/b", None, None).await;
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "another namespace does not see it"
    );

    let (st, hits) = s
        .call(
            Method::POST,
            "/ns/demo/search",
            None,
            Some(json!({"mode": "keyword", "query": "office Lyon",
                        "filter": {"user": {"match": "is", "value": "ann"}}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{hits}");
    assert_eq!(hits["hits"].as_array().unwrap().len(), 1);
    assert_eq!(hits["hits"][0]["item"]["id"].as_str(), Some(id.as_str()));
    assert!(hits["hits"][0]["keyword_score"].as_f64().unwrap() > 0.0);

    let (st, batch) = s
        .call(
            Method::POST,
            "/ns/demo/items/batch",
            None,
            Some(json!([
                {"id": "c", "kind": "fact", "content": "one"},
                {"id": "d", "kind": "fact", "content": "two"}
            ])),
        )
        .await;
    assert_eq!(
        (st, batch["items"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(2))
    );
    let (_, page) = s
        .call(
            Method::POST,
            "/ns/demo/list",
            None,
            Some(json!({"limit": 3})),
        )
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest) = s
        .call(
            Method::POST,
            "/ns/demo/list",
            None,
            Some(json!({"limit": 3, "cursor": cursor})),
        )
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);

    let (st, sup) = s
        .call(
            Method::POST,
            &format!("/ns/demo/items/{id}/supersede"),
            None,
            Some(json!({"by": "b"})),
        )
        .await;
    assert_eq!(
        (st, sup["superseded_by"].as_str()),
        (StatusCode::OK, Some("b"))
    );
    let (_, pred) = s
        .call(Method::GET, "/ns/demo/items/b/predecessors", None, None)
        .await;
    assert_eq!(pred["items"][0]["id"].as_str(), Some(id.as_str()));
    let (st, _) = s
        .call(
            Method::POST,
            &format!("/ns/demo/items/{id}/restore"),
            None,
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (_, r) = s
        .call(
            Method::POST,
            "/ns/demo/reinforce",
            None,
            Some(json!({"ids": [id, "missing"]})),
        )
        .await;
    assert_eq!(r["reinforced"], 1);

    // Clear needs a filter or an explicit all.
    let (st, e) = s
        .call(Method::POST, "/ns/demo/clear", None, Some(json!({})))
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let (st, c) = s
        .call(
            Method::POST,
            "/ns/demo/clear",
            None,
            Some(json!({"filter": {"tags": ["work"]}})),
        )
        .await;
    assert_eq!((st, c["cleared"].as_u64()), (StatusCode::OK, Some(1)));
    let (_, n) = s.call(Method::GET, "/ns/demo", None, None).await;
    assert_eq!(n["count"], 3);
    let (st, _) = s.call(Method::DELETE, "/ns/demo/items/c", None, None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s.call(Method::DELETE, "/ns/demo/items/c", None, None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, ns) = s.call(Method::GET, "/namespaces", None, None).await;
    assert_eq!(ns["namespaces"], json!(["demo"]));
    let (_, del) = s.call(Method::DELETE, "/ns/demo", None, None).await;
    assert_eq!(del["deleted"], 3);
}

#[tokio::test]
async fn conversations_and_memories_over_http() {
    let s = start(Auth::Disabled, 8 << 20).await;
    let scope = json!({"session": "s1", "agent": "bot"});
    let (st, v) = s
        .call(
            Method::POST,
            "/ns/chat/conversations/append",
            None,
            Some(json!({"scope": scope, "messages": [
                {"kind": "system", "content": "be brief"},
                {"kind": "human", "content": "find flights"},
                {"kind": "ai", "content": "", "tool_calls": [{"id": "c1", "name": "flights"}]},
                {"kind": "tool", "content": "3 flights", "tool_call_id": "c1", "tool_name": "flights"},
                {"kind": "ai", "content": "I found 3"},
                {"kind": "human", "content": "thanks"},
                {"kind": "ai", "content": "welcome"}
            ]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, w) = s
        .call(
            Method::POST,
            "/ns/chat/conversations/window",
            None,
            Some(json!({"scope": scope, "max_rounds": 1})),
        )
        .await;
    let contents: Vec<&str> = w["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents, ["be brief", "thanks", "welcome"]);
    assert_eq!(w["rounds_total"], 2);

    let remember = |city: &str| {
        json!({"scope": {"user": "ann"}, "type": "user_profile",
               "content": format!("Ann lives in {city}"),
               "subject": "ann", "predicate": "lives_in", "object": city})
    };
    let (_, a) = s
        .call(
            Method::POST,
            "/ns/mem/memories",
            None,
            Some(remember("Rome")),
        )
        .await;
    assert_eq!(a["outcome"], "added");
    let (_, d) = s
        .call(
            Method::POST,
            "/ns/mem/memories",
            None,
            Some(remember("Rome")),
        )
        .await;
    assert_eq!(d["outcome"], "duplicate");
    let (_, m) = s
        .call(
            Method::POST,
            "/ns/mem/memories",
            None,
            Some(remember("Oslo")),
        )
        .await;
    assert_eq!(m["outcome"], "superseded");
    assert_eq!(m["replaced"]["content"], "Ann lives in Rome");
    let (st, e) = s
        .call(
            Method::POST,
            "/ns/mem/memories",
            None,
            Some(json!({"scope": {"user": "ann"}, "type": "opinion", "content": "x"})),
        )
        .await;
    assert_eq!(
        (st, e["error"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("type"))
    );
}

#[tokio::test]
async fn tokens_confine_requests_to_their_namespaces() {
    let auth = Auth::parse("token-a=ns-a;token-b=ns-b;admin=*").unwrap();
    let s = start(auth, 8 << 20).await;
    let item = json!({"id": "x", "kind": "fact", "content": "secret of b"});
    let (st, _) = s
        .call(
            Method::POST,
            "/ns/ns-b/items",
            Some("token-b"),
            Some(item.clone()),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    // A cannot read, write, search, clear or delete in B, and nothing changes.
    for (method, path, body) in [
        (Method::GET, "/ns/ns-b/items/x", None),
        (
            Method::PUT,
            "/ns/ns-b/items/x",
            Some(json!({"kind": "fact", "content": "overwritten"})),
        ),
        (
            Method::POST,
            "/ns/ns-b/search",
            Some(json!({"mode": "recent"})),
        ),
        (Method::POST, "/ns/ns-b/clear", Some(json!({"all": true}))),
        (Method::DELETE, "/ns/ns-b/items/x", None),
        (Method::DELETE, "/ns/ns-b", None),
    ] {
        let (st, e) = s.call(method.clone(), path, Some("token-a"), body).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{method} {path}: {e}");
        assert_eq!(e["error"]["kind"], "forbidden");
    }
    let (st, _) = s.call(Method::GET, "/ns/ns-b/items/x", None, None).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _) = s
        .call(Method::GET, "/ns/ns-b/items/x", Some("wrong"), None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, got) = s
        .call(Method::GET, "/ns/ns-b/items/x", Some("token-b"), None)
        .await;
    assert_eq!(
        (st, got["content"].as_str(), got["version"].as_u64()),
        (StatusCode::OK, Some("secret of b"), Some(1))
    );
    // Namespace listings show only what the token may touch.
    s.call(
        Method::POST,
        "/ns/ns-a/items",
        Some("token-a"),
        Some(json!({"kind": "fact", "content": "a's"})),
    )
    .await;
    let (_, a) = s
        .call(Method::GET, "/namespaces", Some("token-a"), None)
        .await;
    assert_eq!(a["namespaces"], json!(["ns-a"]));
    let (_, all) = s
        .call(Method::GET, "/namespaces", Some("admin"), None)
        .await;
    assert_eq!(all["namespaces"], json!(["ns-a", "ns-b"]));
}

#[tokio::test]
async fn malformed_input_gets_4xx_and_leaves_data_intact() {
    let s = start(Auth::Disabled, 64 * 1024).await;
    let (st, _) = s
        .call(
            Method::PUT,
            "/ns/safe/items/keep",
            None,
            Some(json!({"kind": "fact", "content": "precious", "tier": "semantic"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let cases: Vec<(&str, Vec<u8>, StatusCode)> = vec![
        (
            "/ns/safe/items",
            br#"{"kind": "fact", "content": "trunc"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/ns/safe/items",
            b"\xff\xfe{}".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/ns/safe/items",
            br#"{"kind": 7, "content": "x"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/ns/safe/items",
            br#"{"kind": "fact"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/ns/safe/items",
            br#"[1, 2]"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/ns/safe/items",
            br#"{"kind": "fact", "content": "x", "importance": 7}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/ns/safe/search",
            br#"{"mode": "sideways"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/ns/safe/search",
            br#"{"mode": "keyword", "query": "x", "limit": 100000}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "/ns/safe/items/batch",
            br#"{"not": "a list"}"#.to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (path, body, want) in cases {
        let (st, e) = s.raw(path, body.clone()).await;
        assert_eq!(st, want, "{path} {:?}: {e}", String::from_utf8_lossy(&body));
        assert!(e["error"]["message"].is_string(), "{e}");
    }
    // Bad values name the field.
    let (_, e) = s
        .raw(
            "/ns/safe/items",
            br#"{"kind": "fact", "content": "x", "importance": 7}"#.to_vec(),
        )
        .await;
    assert_eq!(e["error"]["field"], "importance");
    // Over the body limit: 413, whatever the content.
    let huge = json!({"kind": "fact", "content": "x".repeat(100 * 1024)});
    let (st, _) = s
        .raw("/ns/safe/items", serde_json::to_vec(&huge).unwrap())
        .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
    // Nothing of that reached the store.
    let (_, n) = s.call(Method::GET, "/ns/safe", None, None).await;
    assert_eq!(n["count"], 1);
    let (_, keep) = s.call(Method::GET, "/ns/safe/items/keep", None, None).await;
    assert_eq!(
        (keep["content"].as_str(), keep["version"].as_u64()),
        (Some("precious"), Some(1))
    );
}

#[tokio::test]
async fn batches_above_the_store_limit_are_413() {
    let s = start(Auth::Disabled, 8 << 20).await;
    let items: Vec<Value> = (0..10_001)
        .map(|i| json!({"id": format!("i{i}"), "kind": "fact", "content": "x"}))
        .collect();
    let (st, e) = s
        .call(
            Method::POST,
            "/ns/big/items/batch",
            None,
            Some(Value::Array(items)),
        )
        .await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    let (_, n) = s.call(Method::GET, "/ns/big", None, None).await;
    assert_eq!(n["count"], 0);
}

#[tokio::test]
async fn metrics_openapi_and_export_import() {
    let mut config = ServerConfig::default();
    config.namespace_gauges = true;
    let s = start_with(config).await;
    for i in 0..3 {
        s.call(
            Method::PUT,
            &format!("/ns/src/items/i{i}"),
            None,
            Some(
                json!({"kind": "fact", "content": format!("fact {i}"), "tier": "semantic",
                        "embedding": {"model": "m", "vector": [1.0, i as f32, 0.5]}}),
            ),
        )
        .await;
    }
    s.call(
        Method::POST,
        "/ns/src/clear",
        None,
        Some(json!({"filter": {"exclude_ids": ["i0", "i1"]}, "all": true})),
    )
    .await;
    // Export carries everything, the soft-deleted item and the vectors included.
    let text = s
        .http
        .get(s.url("/ns/src/export"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().any(|l| l["deleted"] == true));
    assert!(lines.iter().all(|l| l["embedding"]["model"] == "m"));
    // Into another server.
    let other = start(Auth::Disabled, 8 << 20).await;
    let resp = other
        .http
        .post(other.url("/ns/dst/import"))
        .header("content-type", "application/x-ndjson")
        .body(text.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(
        (v["imported"].as_u64(), v["skipped_deleted"].as_u64()),
        (Some(2), Some(1))
    );
    let (_, got) = other
        .call(Method::GET, "/ns/dst/items/i1", None, None)
        .await;
    assert_eq!(got["embedding"]["vector"], json!([1.0, 1.0, 0.5]));
    assert_eq!(got["content"], "fact 1");
    // A bad line anywhere stores nothing.
    let bad = format!("{}\n{{\"kind\": \"fact\", \"content\": \"\"}}\n", lines[0]);
    let resp = s
        .http
        .post(s.url("/ns/bad/import"))
        .header("content-type", "application/x-ndjson")
        .body(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let e: Value = resp.json().await.unwrap();
    assert!(
        e["error"]["message"].as_str().unwrap().contains("line 2"),
        "{e}"
    );
    let (_, n) = s.call(Method::GET, "/ns/bad", None, None).await;
    assert_eq!(n["count"], 0);

    let metrics = s
        .http
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            "memlayer_http_requests_total{route=\"/ns/{ns}/items/{id}\",method=\"PUT\",status=\"2xx\"} 3"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("memlayer_http_request_duration_seconds_bucket{route=\"/ns/{ns}/import\"")
    );
    assert!(
        metrics.contains("memlayer_items{backend=\"sqlite\",namespace=\"src\",state=\"live\"} 2")
    );
    assert!(
        metrics.contains("memlayer_items{backend=\"sqlite\",namespace=\"src\",state=\"all\"} 3")
    );

    let (st, doc) = s.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/ns/{ns}/search",
        "/ns/{ns}/items/{id}",
        "/ns/{ns}/memories",
        "/metrics",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
}

//! API keys end to end: keys made in the store, a real server checking them, a real HTTP
//! client presenting them. Scopes, namespaces, rotation, revocation, expiry, metrics, and the
//! reserved namespace no route reaches.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::{Duration, Instant};

use memlayer::DynStore;
use memlayer_server::{
    Auth, KEY_CACHE, KEYS_NAMESPACE, KeyScope, Keys, NewKey, ServerConfig, serve,
};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

struct Server {
    base: String,
    http: Client,
    store: DynStore,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(tokens: Option<&str>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("keys.db").display());
    let store = memlayer::open(&url).await.unwrap();
    let auth = match tokens {
        Some(spec) => Auth::parse(spec).unwrap(),
        None => Auth::Disabled,
    };
    let mut config = ServerConfig::default();
    config.auth = auth.with_keys(store.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let served = store.clone();
    tokio::spawn(async move {
        serve(listener, served, config, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Server {
        base: format!("http://{addr}"),
        http: Client::new(),
        store,
        _dir: dir,
        _stop: tx,
    }
}

impl Server {
    async fn call(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn key(&self, name: &str, scope: KeyScope, namespaces: &[&str]) -> String {
        let new = NewKey {
            name: name.into(),
            scope,
            namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
            expires_in: None,
        };
        Keys::new(self.store.clone()).create(new).await.unwrap().1
    }
}

fn item(content: &str) -> Value {
    json!({ "kind": "fact", "content": content })
}

#[tokio::test]
async fn scopes_and_namespaces_hold_on_every_route() {
    let s = start(None).await;
    let reader = s.key("reader", KeyScope::Read, &["a"]).await;
    let writer = s.key("writer", KeyScope::Write, &["a"]).await;
    let admin = s.key("ops", KeyScope::Admin, &[]).await;
    assert!(reader.starts_with("mlk_") && reader.len() > 70, "{reader}");

    // No key, a made-up key, and a key-shaped guess are all 401, whatever the route.
    for token in ["", "nope", "mlk_0123456789ab_guess"] {
        let (st, _) = s
            .call(
                token,
                Method::POST,
                "/ns/a/search",
                Some(json!({"query": "x"})),
            )
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{token:?}");
    }

    // write: writes and reads its namespace, not another, not the keys.
    let (st, body) = s
        .call(
            &writer,
            Method::POST,
            "/ns/a/items",
            Some(item("alice likes tea")),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        s.call(&writer, Method::POST, "/ns/b/items", Some(item("x")))
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.call(&writer, Method::GET, "/keys", None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.call(&writer, Method::GET, "/metrics", None).await.0,
        StatusCode::FORBIDDEN
    );

    // read: searches, lists and gets; every write is 403 and changes nothing.
    let (st, body) = s
        .call(
            &reader,
            Method::POST,
            "/ns/a/search",
            Some(json!({"query": "tea", "mode": "keyword"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["hits"].as_array().unwrap().len(), 1);
    assert_eq!(
        s.call(&reader, Method::GET, &format!("/ns/a/items/{id}"), None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        s.call(&reader, Method::POST, "/ns/a/list", Some(json!({})))
            .await
            .0,
        StatusCode::OK
    );
    for (method, path, body) in [
        (Method::POST, "/ns/a/items".to_owned(), Some(item("y"))),
        (Method::DELETE, format!("/ns/a/items/{id}"), None),
        (
            Method::POST,
            "/ns/a/clear".to_owned(),
            Some(json!({"all": true})),
        ),
        (Method::DELETE, "/ns/a".to_owned(), None),
        (
            Method::POST,
            "/v1/long-term-memory/".to_owned(),
            Some(json!({"memories": [{"text": "z", "namespace": "a"}]})),
        ),
    ] {
        let (st, b) = s.call(&reader, method.clone(), &path, body).await;
        assert_eq!(st, StatusCode::FORBIDDEN, "{method} {path}: {b}");
        assert!(b.to_string().contains("write"), "{b}");
    }
    assert_eq!(
        s.call(&reader, Method::GET, "/ns/a", None).await.1["count"],
        1
    );

    // The AMS routes answer each key's namespaces only.
    let (st, body) = s
        .call(
            &reader,
            Method::POST,
            "/v1/long-term-memory/search",
            Some(json!({"text": "tea", "search_mode": "keyword"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{body}");
    let (_, ns) = s.call(&admin, Method::GET, "/namespaces", None).await;
    assert_eq!(
        ns["namespaces"],
        json!(["a"]),
        "the keys' namespace stays hidden"
    );

    // admin: every namespace, the keys, the metrics; never the reserved namespace itself.
    assert_eq!(
        s.call(&admin, Method::POST, "/ns/b/items", Some(item("b's")))
            .await
            .0,
        StatusCode::CREATED
    );
    let path = format!("/ns/{KEYS_NAMESPACE}/list");
    for token in [&admin, &writer] {
        assert_eq!(
            s.call(token, Method::POST, &path, Some(json!({}))).await.0,
            StatusCode::FORBIDDEN
        );
    }
    let (st, b) = s
        .call(
            &admin,
            Method::POST,
            &format!("/ns/{KEYS_NAMESPACE}/items"),
            Some(item("forged")),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{b}");
    let (st, listed) = s.call(&admin, Method::GET, "/keys", None).await;
    assert_eq!(st, StatusCode::OK);
    let text = listed.to_string();
    assert_eq!(listed["keys"].as_array().unwrap().len(), 3, "{text}");
    for secret in [&reader, &writer, &admin] {
        let tail = secret.rsplit('_').next().unwrap();
        assert!(!text.contains(tail), "a secret in the key list");
    }
    assert!(!text.contains("digest"), "{text}");

    // Metrics count requests per key name, never per secret.
    let (_, metrics) = s.call(&admin, Method::GET, "/metrics", None).await;
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(
        metrics.contains("memlayer_key_requests_total{key=\"reader\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("memlayer_auth_refused_total 3"),
        "{metrics}"
    );
    assert!(!metrics.contains(reader.rsplit('_').next().unwrap()));
}

#[tokio::test]
async fn keys_are_made_rotated_and_revoked_over_http() {
    let s = start(Some("root-token=*")).await;
    let (st, made) = s
        .call(
            "root-token",
            Method::POST,
            "/keys",
            Some(json!({"name": "agent", "scope": "write", "namespaces": ["a"], "expires": "30d"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{made}");
    let old = made["token"].as_str().unwrap().to_owned();
    let id = made["key"]["id"].as_str().unwrap().to_owned();
    assert!(made["key"]["expires_at"].is_string(), "{made}");
    assert_eq!(
        s.call(&old, Method::POST, "/ns/a/items", Some(item("one")))
            .await
            .0,
        StatusCode::CREATED
    );

    // Bad input names its field; a second live key may not take the name.
    for (body, field) in [
        (
            json!({"name": "x", "scope": "owner", "namespaces": ["a"]}),
            "scope",
        ),
        (json!({"name": "x", "scope": "read"}), "namespace"),
        (
            json!({"name": "x", "scope": "read", "namespaces": ["*"]}),
            "namespace",
        ),
        (
            json!({"name": "x", "scope": "read", "namespaces": ["a"], "expires": "soon"}),
            "expires",
        ),
        (
            json!({"name": "", "scope": "read", "namespaces": ["a"]}),
            "name",
        ),
        (
            json!({"name": "agent", "scope": "read", "namespaces": ["a"]}),
            "name",
        ),
    ] {
        let (st, b) = s
            .call("root-token", Method::POST, "/keys", Some(body.clone()))
            .await;
        assert!(st.is_client_error(), "{body}: {st} {b}");
        assert!(b.to_string().contains(field), "{body}: {b}");
    }

    // Rotation with a grace period: both secrets work, then only the new one.
    let (st, rotated) = s
        .call(
            "root-token",
            Method::POST,
            &format!("/keys/{id}/rotate"),
            Some(json!({"grace": "3s"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{rotated}");
    let new = rotated["token"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(
        rotated["key"]["previous_valid_until"].is_string(),
        "{rotated}"
    );
    for token in [&old, &new] {
        assert_eq!(
            s.call(token, Method::GET, "/ns/a", None).await.0,
            StatusCode::OK
        );
    }
    tokio::time::sleep(Duration::from_secs(3) + KEY_CACHE).await;
    assert_eq!(
        s.call(&old, Method::GET, "/ns/a", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.call(&new, Method::GET, "/ns/a", None).await.0,
        StatusCode::OK
    );

    // Revocation by name: refused within the key cache time, and listed as revoked.
    let (st, revoked) = s
        .call("root-token", Method::DELETE, "/keys/agent", None)
        .await;
    assert_eq!(st, StatusCode::OK, "{revoked}");
    assert!(revoked["key"]["revoked_at"].is_string());
    let started = Instant::now();
    while s.call(&new, Method::GET, "/ns/a", None).await.0 == StatusCode::OK {
        assert!(
            started.elapsed() < KEY_CACHE * 2,
            "a revoked key still works"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        s.call(&new, Method::GET, "/ns/a", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The data the key wrote is untouched.
    assert_eq!(
        s.call("root-token", Method::GET, "/ns/a", None).await.1["count"],
        1
    );
    assert_eq!(
        s.call("root-token", Method::POST, "/keys/nobody/rotate", None)
            .await
            .0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_expired_key_is_refused_and_use_is_recorded() {
    let s = start(None).await;
    let keys = Keys::new(s.store.clone());
    let (_, short) = keys
        .create(NewKey {
            name: "short".into(),
            scope: KeyScope::Read,
            namespaces: vec!["a".into()],
            expires_in: Some(Duration::from_secs(1)),
        })
        .await
        .unwrap();
    assert_eq!(
        s.call(&short, Method::GET, "/ns/a", None).await.0,
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        s.call(&short, Method::GET, "/ns/a", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The first accepted request noted the key's use.
    let listed = keys.list().await.unwrap();
    assert!(listed[0].last_used_at.is_some(), "{listed:?}");
    // The keys' items are in the reserved namespace, and the digest is all they hold.
    let page = s
        .store
        .list(KEYS_NAMESPACE, &memlayer::ListRequest::new())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let stored = serde_json::to_string(&page.items[0]).unwrap();
    assert!(!stored.contains(short.rsplit('_').next().unwrap()));
}

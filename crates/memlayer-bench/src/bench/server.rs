//! The HTTP server on SQLite, measured as a client sees it.

use std::sync::Arc;

use anyhow::{Result, bail};
use memlayer::SearchRequest;
use serde_json::{Value, json};

use super::backends::labelled;
use super::data::Data;
use super::timing::{timed, timed_row};

/// The HTTP server on SQLite: keyword and vector searches at 64 concurrent clients.
pub(crate) async fn server_rows(d: &Data, quick: bool) -> Result<Vec<Value>> {
    let calls = if quick { 500 } else { 5000 };
    let n = d.items.len();
    let (store, guard) = crate::stores::open_fresh("sqlite").await?;
    for chunk in d.items.chunks(1000) {
        store.upsert_many(chunk.to_vec()).await?;
    }
    // Load the in-process vector index before serving: at 100k its build outlasts the
    // server's request timeout, and the first HTTP search would fail the warm-up.
    store
        .search(
            "bench",
            &SearchRequest::vector(d.queries[0].1.clone()).with_limit(10),
        )
        .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(memlayer_server::serve(
        listener,
        store.clone(),
        memlayer_server::ServerConfig::default(),
        async {
            let _ = rx.await;
        },
    ));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()?;
    let mut rows = Vec::new();
    // Hits with their 384-d vectors (`?vectors=true`), and without (the server's default,
    // what an agent that reads the contents gets). The op names say what the response holds.
    for (op, mode, query) in [
        ("server_keyword", "keyword", "?vectors=true"),
        ("server_vector", "vector", "?vectors=true"),
        ("server_keyword_no_vectors", "keyword", ""),
        ("server_vector_no_vectors", "vector", ""),
    ] {
        let url = format!("http://{addr}/ns/bench/search{query}");
        // The request bodies are written once, before the clock starts, as a load generator
        // sends fixed bodies: the two cores that run the server also run the 64 clients, and
        // what is measured is the server's work, not the clients' JSON writing.
        let bodies: Vec<Vec<u8>> = d
            .queries
            .iter()
            .map(|(text, v)| {
                let body = if mode == "keyword" {
                    json!({"mode": "keyword", "query": text, "limit": 10})
                } else {
                    json!({"mode": "vector", "vector": v, "limit": 10})
                };
                serde_json::to_vec(&body)
            })
            .collect::<std::result::Result<_, _>>()?;
        let bodies = Arc::new(bodies);
        let client = client.clone();
        let t = timed(64, calls, 50, move |k| {
            let client = client.clone();
            let url = url.clone();
            let body = bodies[k % bodies.len()].clone();
            async move {
                let r = client
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("server answered {}", r.status());
                }
                r.bytes().await?;
                Ok(())
            }
        })
        .await?;
        rows.push(timed_row("server-sqlite", op, n, 64, Some(1.0), t, None));
    }
    let _ = tx.send(());
    server.await??;
    store.close().await?;
    guard.release().await;
    Ok(labelled(rows, d))
}

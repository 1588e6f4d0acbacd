//! `/mcp` over Streamable HTTP, driven by the official Python MCP client (`mcp==2.3.0`, from
//! `cargo xtask services up mcp`) against a real server with API keys: every tool, a key that
//! may not see a namespace, a read key, and malformed calls (`tests/mcp/http_client.py`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;

use memlayer_server::{Auth, KeyScope, Keys, NewKey, ServerConfig, serve};

async fn key(keys: &Keys, name: &str, scope: KeyScope, namespaces: &[&str]) -> String {
    let new = NewKey {
        name: name.into(),
        scope,
        namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
        expires_in: None,
    };
    keys.create(new).await.unwrap().1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_mcp_client_over_http_with_keys() {
    let Some(python) = memlayer_conformance::env_or_skip("MEMLAYER_MCP_PYTHON", "mcp") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("mcp.db").display());
    // The hash embedder: deterministic, lexical similarity, no model files needed.
    let config =
        memlayer::Config::new(url).embedder(Arc::new(memlayer::embed::HashEmbedder::new()));
    let store = memlayer::open_with(config).await.unwrap();
    let keys = Keys::new(store.clone());
    let writer = key(&keys, "writer", KeyScope::Write, &["agent", "elsewhere"]).await;
    let reader = key(&keys, "reader", KeyScope::Read, &["agent"]).await;
    let outsider = key(&keys, "outsider", KeyScope::Write, &["other"]).await;

    let mut config = ServerConfig::default();
    config.auth = Auth::Disabled.with_keys(store.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, store, config, async {
        let _ = stopped.await;
    }));

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("mcp")
        .join("http_client.py");
    let out = tokio::process::Command::new(python)
        .arg(script)
        .args([&base, &writer, &reader, &outsider])
        .output()
        .await
        .unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "http_client.py failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

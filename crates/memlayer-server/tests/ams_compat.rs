//! Agent Memory Server compatibility, proven with its real Python client
//! (`agent-memory-client==0.14.0`, from `cargo xtask services up amc`) driving a memlayer
//! server on an ephemeral port, over SQLite, Postgres and Redis.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use memlayer_server::{ServerConfig, serve};

fn python() -> Option<String> {
    memlayer_conformance::env_or_skip("MEMLAYER_AMC_PYTHON", "amc")
}

/// A fresh store of `backend`: a SQLite file, or a fresh schema or key prefix on the server of
/// `MEMLAYER_<BACKEND>_URL` (`None`, loudly, when that is unset and the backend not required).
async fn store_of(backend: &str, dir: &std::path::Path) -> Option<memlayer::DynStore> {
    let fresh = format!(
        "ams_{}_{}",
        std::process::id(),
        memlayer::Timestamp::now().as_millis()
    );
    let url = match backend {
        "sqlite" => format!("sqlite:{}", dir.join("ams.db").display()),
        other => {
            let var = format!("MEMLAYER_{}_URL", other.to_uppercase());
            memlayer_conformance::env_or_skip(&var, other)?
        }
    };
    let place = if backend == "redis" {
        format!("{fresh}:")
    } else {
        fresh
    };
    // The hash embedder: deterministic, lexical similarity, no model files needed.
    let config = memlayer::Config::new(url)
        .place(place)
        .embedder(std::sync::Arc::new(memlayer::embed::HashEmbedder::new()));
    Some(memlayer::open_with(config).await.unwrap())
}

async fn run_script(script: &str, backend: &str) {
    let Some(python) = python() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(store) = store_of(backend, dir.path()).await else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, store, ServerConfig::default(), async {
        let _ = rx.await;
    }));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("ams")
        .join(script);
    let run = format!("{}", std::process::id());
    let out = tokio::process::Command::new(&python)
        .arg(&path)
        .arg(format!("http://{addr}"))
        .arg(run)
        .output()
        .await
        .unwrap();
    let _ = tx.send(());
    server.await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_memory_client_working_memory_on_sqlite() {
    run_script("working_memory.py", "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_memory_client_working_memory_on_postgres() {
    run_script("working_memory.py", "postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_memory_client_working_memory_on_redis() {
    run_script("working_memory.py", "redis").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_memory_client_long_term_on_sqlite() {
    run_script("long_term.py", "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_memory_client_long_term_on_postgres() {
    run_script("long_term.py", "postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_memory_client_long_term_on_redis() {
    run_script("long_term.py", "redis").await;
}

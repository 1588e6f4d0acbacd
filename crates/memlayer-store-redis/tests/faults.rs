//! Fault behaviour against a real Redis: the test runs its own server with the append-only file
//! on (`--appendfsync always`), kills it mid-traffic and starts it again on the same port.
//! Calls either succeed with the right answer or fail with a temporary error, never a wrong
//! answer; the client reconnects by itself and every acknowledged write is still there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use memlayer_store::MemoryStore;
use memlayer_store_redis::{RedisConfig, RedisStore};

fn env(var: &str) -> Option<String> {
    memlayer_conformance::env_or_skip(var, "redis")
}

fn start(server: &str, modules: &str, port: u16, dir: &std::path::Path) -> Child {
    let mut cmd = Command::new(server);
    cmd.args([
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
    ])
    .args(["--appendonly", "yes", "--appendfsync", "always"])
    .arg("--dir")
    .arg(dir)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    for m in modules.split_whitespace() {
        cmd.arg("--loadmodule").arg(m);
    }
    let child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_is_temporary_and_the_client_recovers() {
    let (Some(server), Some(modules)) =
        (env("MEMLAYER_REDIS_SERVER"), env("MEMLAYER_REDIS_MODULES"))
    else {
        return;
    };
    let dir = tempfile_dir();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = start(&server, &modules, port, &dir);
    let mut config = RedisConfig::new(format!("redis://127.0.0.1:{port}")).prefix("faults:");
    config.command_timeout = Duration::from_millis(500);
    let s = RedisStore::connect_with(config).await.unwrap();
    let ns = "faults";
    memlayer_conformance::faults::seed(&s, ns).await;
    // Kill the server without warning, then bring it back on the same port and files.
    child.kill().unwrap();
    child.wait().unwrap();
    let restarted = {
        let server = server.clone();
        let modules = modules.clone();
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(700));
            start(&server, &modules, port, &dir)
        })
    };
    let (ok, failed) =
        memlayer_conformance::faults::traffic_until_recovered(&s, ns, Duration::from_secs(60))
            .await;
    let mut child = restarted.await.unwrap();
    eprintln!("during restart: {ok} ok, {failed} temporary failures");
    assert!(failed > 0, "the outage was observed");
    // Every acknowledged write survived (append-only file, fsync always).
    for i in 0..20 {
        s.get(ns, &format!("f{i}")).await.unwrap();
    }
    let _ = s.close().await;
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "memlayer-redis-faults-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

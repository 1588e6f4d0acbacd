//! Fault behaviour against a real Chroma: the test runs its own server on a private directory,
//! kills it mid-traffic (SIGKILL) and starts it again on the same port and files. Calls either
//! succeed with the right answer or fail with a temporary error, never a wrong answer; the
//! client recovers by itself and every acknowledged write is still there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use memlayer_store::MemoryStore;
use memlayer_store_chroma::{ChromaConfig, ChromaStore};

fn chroma_bin() -> Option<String> {
    memlayer_conformance::env_or_skip("MEMLAYER_CHROMA_BIN", "chroma")
}

fn answers(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    let mut head = [0u8; 12];
    s.write_all(b"GET /api/v2/heartbeat HTTP/1.0\r\n\r\n")
        .is_ok()
        && s.read_exact(&mut head).is_ok()
        && &head[9..12] == b"200"
}

fn start(bin: &str, port: u16, dir: &std::path::Path) -> Child {
    let child = Command::new(bin)
        .arg("run")
        .arg("--path")
        .arg(dir)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .env("ANONYMIZED_TELEMETRY", "False")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !answers(port) {
        assert!(Instant::now() < deadline, "chroma did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_is_temporary_and_the_client_recovers() {
    let Some(bin) = chroma_bin() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!(
        "memlayer-chroma-faults-{}",
        uuid::Uuid::now_v7().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = start(&bin, port, &dir);
    let config = ChromaConfig::new(format!("http://127.0.0.1:{port}"))
        .prefix("faults-")
        .timeout(Duration::from_secs(2));
    let s = ChromaStore::connect_with(config).await.unwrap();
    let ns = "faults";
    memlayer_conformance::faults::seed(&s, ns).await;
    // Kill the server without warning, then bring it back on the same port and files.
    child.kill().unwrap();
    child.wait().unwrap();
    let restarted = {
        let bin = bin.clone();
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(700));
            start(&bin, port, &dir)
        })
    };
    let (ok, failed) =
        memlayer_conformance::faults::traffic_until_recovered(&s, ns, Duration::from_secs(90))
            .await;
    let mut child = restarted.await.unwrap();
    eprintln!("during restart: {ok} ok, {failed} temporary failures");
    assert!(failed > 0, "the outage was observed");
    // Every acknowledged write survived the kill.
    for i in 0..20 {
        let item = s.get(ns, &format!("f{i}")).await.unwrap();
        assert_eq!(item.version, 1);
    }
    assert_eq!(s.count(ns, Default::default()).await.unwrap(), 20);
    let _ = s.close().await;
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

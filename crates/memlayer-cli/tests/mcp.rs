//! `memlayer mcp` driven by the official Python MCP client (`mcp==2.3.0`, from
//! `cargo xtask services up mcp`) over stdio, on a temporary SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

#[test]
fn python_mcp_client_drives_the_tools() {
    let Some(python) = memlayer_conformance::env_or_skip("MEMLAYER_MCP_PYTHON", "mcp") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("mcp.db").display());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("mcp")
        .join("client.py");
    let out = std::process::Command::new(python)
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_memlayer"))
        .arg(&url)
        .env_remove("MEMLAYER_MINILM_DIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "client.py failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}

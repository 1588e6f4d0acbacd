//! The single task runner of the memlayer workspace: `cargo xtask <command>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

mod conformance;
mod matrix;

/// Every backend id, in documentation order.
pub const BACKENDS: &[&str] = &["memory", "sqlite"];

#[derive(Parser)]
#[command(name = "cargo xtask", about = "memlayer's task runner")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs the conformance suite against backends and reports scenario counts.
    Conformance {
        /// Backend ids (memory, sqlite, ...).
        ids: Vec<String>,
        /// Every backend.
        #[arg(long)]
        all: bool,
    },
    /// Writes docs/backends.md and the scenario table of docs/conformance.md from the code.
    Matrix {
        /// Fail instead of writing when the files are out of date.
        #[arg(long)]
        check: bool,
    },
    /// What CI runs: fmt check, clippy -D warnings, docs check, every test, conformance on every backend.
    Ci,
}

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// Runs a command in the workspace root, echoing it, failing on a non-zero exit.
pub fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {}", describe(cmd));
    let status = cmd
        .current_dir(root())
        .status()
        .with_context(|| format!("cannot start {}", describe(cmd)))?;
    if !status.success() {
        bail!("{} failed with {status}", describe(cmd));
    }
    Ok(())
}

fn describe(cmd: &Command) -> String {
    std::iter::once(cmd.get_program().to_string_lossy().into_owned())
        .chain(cmd.get_args().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `cargo` with the toolchain of this workspace.
pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn ci() -> Result<()> {
    let started = Instant::now();
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    matrix::matrix(true)?;
    // One test run covers unit tests, integration tests and the conformance suite; the suite
    // records every scenario's outcome so the summary below can count them per backend.
    let ids: Vec<String> = BACKENDS.iter().map(|s| s.to_string()).collect();
    conformance::run_tests(&ids, &["test", "--workspace", "--no-fail-fast"])?;
    eprintln!("ci passed in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Cmd::Conformance { ids, all } => {
            let ids = if all || ids.is_empty() {
                BACKENDS.iter().map(|s| s.to_string()).collect()
            } else {
                ids
            };
            for id in &ids {
                if !BACKENDS.contains(&id.as_str()) {
                    bail!("unknown backend {id:?}; known: {}", BACKENDS.join(", "));
                }
            }
            let mut args = vec!["test".to_owned(), "--no-fail-fast".to_owned()];
            for id in &ids {
                args.extend([
                    "-p".to_owned(),
                    format!("memlayer-store-{id}"),
                    "--test".to_owned(),
                    "conformance".to_owned(),
                ]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            conformance::run_tests(&ids, &args)
        }
        Cmd::Matrix { check } => matrix::matrix(check),
        Cmd::Ci => ci(),
    }
}

//! The single task runner of the memlayer workspace: `cargo xtask <command>`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

mod conformance;
mod services;

/// Every backend id, in documentation order.
pub const BACKENDS: &[&str] = &["memory", "sqlite", "postgres", "redis", "chroma"];

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
    /// What CI runs: services, fmt check, clippy -D warnings, docs check, every test,
    /// conformance on every backend, and the retrieval quality floor.
    Ci,
    /// Starts, stops or prints the environment of local services (postgres, redis, chroma, models).
    Services {
        #[command(subcommand)]
        action: ServicesCmd,
    },
    /// Performance: every backend on the same data, in a release build of memlayer-bench;
    /// `cargo xtask bench --help` lists its options.
    #[command(disable_help_flag = true)]
    Bench {
        /// Passed to `memlayer-bench bench`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Retrieval evaluation on a BEIR-format dataset (see ../shared/docs/EVAL.md);
    /// `cargo xtask eval --help` lists its options.
    #[command(disable_help_flag = true)]
    Eval {
        /// Passed to `memlayer-bench eval`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ServicesCmd {
    /// Starts (or fetches) services, idempotently, and prints their environment.
    Up { ids: Vec<String> },
    /// Stops services.
    Down { ids: Vec<String> },
    /// Prints the environment of services (starting nothing new beyond what `up` would reuse).
    Env { ids: Vec<String> },
    /// Drops the schemas and collections earlier tests and benchmarks left on the services'
    /// Postgres and Chroma (`ci` does this first).
    Prune,
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

/// Runs `memlayer-bench ARGS`: in the release profile for the bench, which measures what a
/// deployment runs, and in the dev profile (whose dependencies the tests share) otherwise.
fn bench_tool<S: AsRef<std::ffi::OsStr>>(args: &[S], release: bool) -> Result<()> {
    let mut cmd = cargo();
    cmd.args(["run", "--quiet", "--package", "memlayer-bench"]);
    if release {
        cmd.arg("--release");
    }
    cmd.arg("--");
    if release {
        cmd.arg("bench");
    }
    run(cmd.args(args))
}

fn ci() -> Result<()> {
    let started = Instant::now();
    // Formatting first: it needs no build and no service, so a badly formatted change fails
    // in seconds.
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    let env = services::up(&[])?;
    for (k, v) in &env {
        // SAFETY of set_var: xtask is single-threaded here, before any runtime starts.
        unsafe_set_env(k, v);
    }
    services::prune_postgres(&env)?;
    services::prune_chroma(&env)?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]))?;
    // Every publishable crate packages (metadata, README, licence files, path deps versioned).
    run(cargo().args(["package", "--workspace", "--no-verify"]))?;
    // One test run covers unit tests, integration tests and the conformance suite; the suite
    // records every scenario's outcome so the summary below can count them per backend.
    let ids: Vec<String> = BACKENDS.iter().map(|s| s.to_string()).collect();
    conformance::run_tests(
        &ids,
        &["models", "amc", "mcp"],
        &["test", "--workspace", "--no-fail-fast", "--all-features"],
    )?;
    // The test run built the bench binary (its integration test needs it) with the test
    // run's features; a separate `cargo build` resolves features without the dev-dependencies
    // and compiled much of the tree again (the README's Tasks section has the cold figures).
    let bench = target_dir().join("debug").join("memlayer-bench");
    run(Command::new(&bench)
        .arg("quality-floor")
        .env("MEMLAYER_REQUIRE_DATA", "1"))?;
    eprintln!("ci passed in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// The cargo target directory.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

#[allow(unsafe_code)]
fn unsafe_set_env(k: &str, v: &str) {
    // SAFETY: called before any other thread of this process exists.
    unsafe { std::env::set_var(k, v) }
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
            // Server backends are started here, so the command works on a fresh machine.
            let servers: Vec<String> = ids
                .iter()
                .filter(|id| services::SERVICES.contains(&id.as_str()))
                .cloned()
                .collect();
            if !servers.is_empty() {
                for (k, v) in services::up(&servers)? {
                    unsafe_set_env(&k, &v);
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
            conformance::run_tests(&ids, &[], &args)?;
            // Server backends also prove their fault behaviour against the same server.
            for id in &servers {
                run(cargo()
                    .args([
                        "test",
                        "-p",
                        &format!("memlayer-store-{id}"),
                        "--test",
                        "faults",
                    ])
                    .env("MEMLAYER_REQUIRE_BACKENDS", id))?;
            }
            Ok(())
        }
        Cmd::Matrix { check } => bench_tool(
            if check {
                &["matrix", "--check"]
            } else {
                &["matrix"]
            },
            false,
        ),
        Cmd::Ci => ci(),
        Cmd::Services { action } => match action {
            ServicesCmd::Up { ids } | ServicesCmd::Env { ids } => {
                let env = services::up(&ids)?;
                services::print_env(&env);
                Ok(())
            }
            ServicesCmd::Down { ids } => services::down(&ids),
            ServicesCmd::Prune => {
                services::prune_postgres(&services::up(&["postgres".to_owned()])?)?;
                services::prune_chroma(&services::up(&["chroma".to_owned()])?)
            }
        },
        Cmd::Bench { args } => bench_tool(&args, true),
        Cmd::Eval { args } => {
            let mut all = vec!["eval".to_owned()];
            all.extend(args);
            bench_tool(&all, false)
        }
    }
}

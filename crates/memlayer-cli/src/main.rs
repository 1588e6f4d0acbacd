//! `memlayer`: the command line.

use std::io::Write as _;

use clap::Parser;

#[tokio::main]
async fn main() {
    // Colour only on a terminal: logs written to a file or a pipe stay plain text.
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        // A log reader that goes away (a closed pipe) must not stop the server: the report of
        // a failed log write would go to the same broken stream, and `eprintln!` panics there.
        .log_internal_errors(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,memlayer_server=info")
            }),
        )
        .init();
    let cli = memlayer_cli::Cli::parse();
    if let Err(message) = memlayer_cli::run(cli).await {
        // Written without `eprintln!`, which would panic on a closed standard error.
        let _ = writeln!(std::io::stderr(), "memlayer: {message}");
        std::process::exit(1);
    }
}

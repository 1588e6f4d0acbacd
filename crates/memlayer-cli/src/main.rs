//! `memlayer`: the command line.

use clap::Parser;

#[tokio::main]
async fn main() {
    // Colour only on a terminal: logs written to a file or a pipe stay plain text.
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,memlayer_server=info")
            }),
        )
        .init();
    let cli = memlayer_cli::Cli::parse();
    if let Err(message) = memlayer_cli::run(cli).await {
        eprintln!("memlayer: {message}");
        std::process::exit(1);
    }
}

//! `memlayer-server`: the HTTP API over a store named by URL.

use std::io::Write as _;

use clap::Parser;
use memlayer_server::ServeArgs;

/// Serves memlayer over HTTP.
#[derive(Parser, Debug)]
#[command(name = "memlayer-server", version)]
struct Args {
    /// The store: memory, sqlite:PATH, postgres://..., redis://..., chroma:http://HOST:PORT.
    #[arg(long, env = "MEMLAYER_URL", default_value = "sqlite:./memlayer.db")]
    url: String,
    #[command(flatten)]
    serve: ServeArgs,
}

#[tokio::main]
async fn main() {
    // Colour only on a terminal (logs go to stdout here): in a file or a pipe they stay plain.
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        // A log reader that goes away (a closed pipe) must not stop the server: the report of
        // a failed log write would go to standard error, where `eprintln!` may panic too.
        .log_internal_errors(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    if let Err(message) = args.serve.run(&args.url).await {
        let _ = writeln!(std::io::stderr(), "memlayer-server: {message}");
        std::process::exit(1);
    }
}

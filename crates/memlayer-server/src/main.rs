//! `memlayer-server`: the HTTP API over a store named by URL.

use std::net::SocketAddr;

use clap::Parser;
use memlayer_server::{ServerConfig, auth_for, open_store, serve, shutdown_signal};

/// Serves memlayer over HTTP.
#[derive(Parser, Debug)]
#[command(name = "memlayer-server", version)]
struct Args {
    /// The store: memory, sqlite:PATH, postgres://..., redis://..., chroma:http://HOST:PORT.
    #[arg(long, env = "MEMLAYER_URL", default_value = "sqlite:./memlayer.db")]
    url: String,
    /// Address to listen on.
    #[arg(long, env = "MEMLAYER_BIND", default_value = "127.0.0.1:8000")]
    bind: SocketAddr,
    /// Bearer tokens and their namespaces: `token=ns1,ns2;admin=*`.
    #[arg(long, env = "MEMLAYER_TOKENS")]
    tokens: Option<String>,
    /// Serve without authentication on a non-loopback address (loopback without tokens is
    /// unauthenticated already).
    #[arg(long)]
    no_auth: bool,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 8 << 20)]
    max_body_bytes: usize,
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    if let Err(message) = run(args).await {
        eprintln!("memlayer-server: {message}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let auth = auth_for(args.tokens.as_deref(), args.no_auth, args.bind)?;
    let (store, embedder) = open_store(&args.url).await?;
    tracing::info!("{embedder}");
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|e| format!("binding {}: {e}", args.bind))?;
    let mut config = ServerConfig::default();
    config.auth = auth;
    config.max_body_bytes = args.max_body_bytes;
    tracing::info!(url = %args.url, backend = store.backend(), bind = %args.bind, "memlayer-server listening");
    serve(listener, store.clone(), config, shutdown_signal())
        .await
        .map_err(|e| format!("serving: {e}"))?;
    store.close().await.map_err(|e| format!("closing: {e}"))?;
    Ok(())
}

//! `memlayer-server`: the HTTP API over a store named by URL.

use std::net::SocketAddr;

use clap::Parser;
use memlayer_server::{Auth, ServerConfig, serve};

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

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutting down: draining requests in flight");
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
    let auth = match (&args.tokens, args.no_auth) {
        (Some(spec), _) => Auth::parse(spec).map_err(|e| format!("--tokens: {e}"))?,
        (None, true) => Auth::Disabled,
        (None, false) if args.bind.ip().is_loopback() => {
            tracing::warn!(
                "no tokens configured: authentication is off, listening on loopback only"
            );
            Auth::Disabled
        }
        (None, false) => {
            return Err(format!(
                "{} is not a loopback address: give --tokens (or MEMLAYER_TOKENS), or --no-auth to serve it unauthenticated",
                args.bind
            ));
        }
    };
    let (embedder, what) = memlayer::embed::default_embedder().map_err(|e| e.to_string())?;
    tracing::info!("{what}");
    let store = memlayer::open_with(memlayer::Config::new(args.url.clone()).embedder(embedder))
        .await
        .map_err(|e| format!("opening {}: {e}", args.url))?;
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

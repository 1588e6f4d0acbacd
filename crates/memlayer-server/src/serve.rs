//! Serving: the connection loop with its limits, the command-line arguments of `serve`, and
//! opening a store with its embedder.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use memlayer::DynStore;

use crate::{Auth, ConnectionLimits, ServerConfig, router};

/// Serves `router(store, config)` on `listener` until `shutdown` resolves, then drains the
/// requests in flight.
///
/// Each connection is HTTP/1.1 with the configured limits: at most `max_connections` at once
/// (the next waits in the listen backlog), and `header_timeout` both for a request's headers
/// and for an idle keep-alive connection, so slow or idle clients cannot hold the server.
///
/// # Errors
/// The listener's IO errors.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: DynStore,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = config.connections;
    let app = router(store, config);
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.map_err(std::io::Error::other)?,
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A connection's end (a client gone, a timeout) is no server error.
            let _ = connection.await;
            drop(permit);
        });
    }
    graceful.shutdown().await;
    Ok(())
}

/// How to serve, as command-line arguments: shared by `memlayer-server` and `memlayer serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MEMLAYER_BIND", default_value = "127.0.0.1:8000")]
    pub bind: std::net::SocketAddr,
    /// Bearer tokens and their namespaces: `token=ns1,ns2;admin=*`. Prefer the environment
    /// variable or `--tokens-file`: a command line is visible to every user of the machine.
    #[arg(long, env = "MEMLAYER_TOKENS", hide_env_values = true)]
    pub tokens: Option<String>,
    /// A file of tokens, one `token=ns1,ns2` per line (`#` starts a comment).
    #[arg(long, env = "MEMLAYER_TOKENS_FILE", conflicts_with = "tokens")]
    pub tokens_file: Option<std::path::PathBuf>,
    /// Accept the API keys kept in the store (`memlayer keys create`), besides any tokens.
    #[arg(long, env = "MEMLAYER_KEYS", conflicts_with = "no_auth")]
    pub keys: bool,
    /// Serve a non-loopback address without authentication (loopback without tokens is
    /// unauthenticated already).
    #[arg(long)]
    pub no_auth: bool,
    /// A host name an unauthenticated server answers besides the loopback ones (repeatable).
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_hosts: Vec<String>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 8 << 20)]
    pub max_body_bytes: usize,
    /// Most connections open at once.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Item counts per namespace in `/metrics` (they name every tenant to whoever scrapes).
    #[arg(long)]
    pub metrics_namespaces: bool,
}

impl ServeArgs {
    /// Opens the store of `url` (with its embedder), serves it until Ctrl-C or SIGTERM, drains
    /// the requests in flight and closes the store.
    ///
    /// # Errors
    /// A one-line message: bad tokens, the store, the address.
    pub async fn run(&self, url: &str) -> Result<(), String> {
        let spec = match &self.tokens_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| format!("--tokens-file {}: {e}", path.display()))?,
            ),
            None => self.tokens.clone(),
        };
        let mut auth = auth_for(spec.as_deref(), self.keys, self.no_auth, self.bind)?;
        let shown = memlayer::redact_url(url);
        let (store, embedder) = open_store(url).await?;
        if self.keys {
            auth = auth.with_keys(store.clone());
        }
        tracing::info!("{embedder}");
        let listener = tokio::net::TcpListener::bind(self.bind)
            .await
            .map_err(|e| format!("binding {}: {e}", self.bind))?;
        let connections = ConnectionLimits {
            max_connections: self.max_connections,
            ..ConnectionLimits::default()
        };
        let config = ServerConfig {
            auth,
            max_body_bytes: self.max_body_bytes,
            allowed_hosts: self.allow_hosts.clone(),
            namespace_gauges: self.metrics_namespaces,
            connections,
            ..ServerConfig::default()
        };
        tracing::info!(url = %shown, backend = store.backend(), bind = %self.bind, "memlayer-server listening");
        serve(listener, store.clone(), config, shutdown_signal())
            .await
            .map_err(|e| format!("serving: {e}"))?;
        store.close().await.map_err(|e| format!("closing: {e}"))
    }
}

/// The authentication a server binding `bind` runs with: the `tokens` spec when given; none
/// when `no_auth` says so, or on a loopback address without tokens (with a warning); an error
/// for a non-loopback address with neither. With `keys`, the caller adds the store's keys
/// ([`Auth::with_keys`]), so no tokens are needed.
///
/// # Errors
/// A one-line message naming the bad token entry or the missing choice.
pub fn auth_for(
    tokens: Option<&str>,
    keys: bool,
    no_auth: bool,
    bind: std::net::SocketAddr,
) -> Result<Auth, String> {
    match (tokens, no_auth) {
        (Some(spec), _) => Auth::parse(spec).map_err(|e| format!("tokens: {e}")),
        (None, _) if keys => Ok(Auth::Disabled),
        (None, true) => Ok(Auth::Disabled),
        (None, false) if bind.ip().is_loopback() => {
            tracing::warn!(
                "no tokens configured: authentication is off, listening on loopback only"
            );
            Ok(Auth::Disabled)
        }
        (None, false) => Err(format!(
            "{bind} is not a loopback address: give --keys, --tokens-file (or MEMLAYER_TOKENS), or --no-auth to serve it unauthenticated"
        )),
    }
}

/// Opens the store of `url` with the embedder its pin names, or the default embedder for a
/// new store (see `memlayer::embed::embedder_for`); returns it
/// with a line saying which embedder, for start-up messages.
///
/// # Errors
/// A one-line message naming the URL.
pub async fn open_store(url: &str) -> Result<(DynStore, String), String> {
    let shown = memlayer::redact_url(url);
    memlayer::open_embedded(url)
        .await
        .map_err(|e| format!("opening {shown}: {e}"))
}

/// Resolves on Ctrl-C or SIGTERM, for [`serve`]'s graceful shutdown.
pub async fn shutdown_signal() {
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

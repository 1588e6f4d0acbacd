//! The Model Context Protocol server (the official Rust SDK, `rmcp`): ten tools to remember,
//! recall, correct, trace and forget memories, keep a conversation window, and brief an agent
//! at the start of a session. Served over stdio (`memlayer mcp`) and over Streamable HTTP at
//! `/mcp` of `memlayer serve`, where each call acts with the grant of the request's key.

mod args;
mod tools;

use std::sync::Arc;

use axum::http::request::Parts;
use memlayer::DynStore;
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{RoleServer, ServerHandler, ServiceExt, tool_handler};

use crate::keys::{Grant, KeyScope};

/// The namespaces a stdio server's tool calls may name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowed {
    /// Every namespace of the store.
    All,
    /// Only these.
    Only(Vec<String>),
}

impl Allowed {
    /// `allow` as given on the command line (`*` for every namespace); empty allows only the
    /// default namespace.
    pub fn new(default: &str, allow: Vec<String>) -> Self {
        let allow: Vec<String> = allow
            .into_iter()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        if allow.iter().any(|n| n == "*") {
            Allowed::All
        } else if allow.is_empty() {
            Allowed::Only(vec![default.to_owned()])
        } else {
            Allowed::Only(allow)
        }
    }

    /// The grant of a stdio server: these namespaces, to read and write.
    fn grant(self) -> Grant {
        Grant {
            namespaces: match self {
                Allowed::All => None,
                Allowed::Only(names) => Some(names),
            },
            scope: KeyScope::Write,
            key: None,
        }
    }
}

/// The MCP server: its tools act on `store`, in the default namespace unless a call names
/// another its grant admits.
#[derive(Clone)]
pub struct MemoryTools {
    store: DynStore,
    namespace: String,
    /// The grant of a stdio server; over HTTP, each request carries its own.
    fixed: Option<Grant>,
    tool_router: ToolRouter<Self>,
}

impl std::fmt::Debug for MemoryTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTools")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// A tool failure the model should see (bad arguments, a missing id, a refused namespace),
/// not a protocol error.
fn refusal(message: impl std::fmt::Display) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.to_string())])
}

impl MemoryTools {
    /// Tools over `store` for a stdio server, in `namespace` by default, reaching only the
    /// `allowed` namespaces.
    pub fn new(store: DynStore, namespace: impl Into<String>, allowed: Allowed) -> Self {
        MemoryTools {
            store,
            namespace: namespace.into(),
            fixed: Some(allowed.grant()),
            tool_router: Self::tool_router(),
        }
    }

    /// Tools over `store` for HTTP, where each request's grant decides.
    fn over_http(store: DynStore) -> Self {
        MemoryTools {
            store,
            namespace: "default".into(),
            fixed: None,
            tool_router: Self::tool_router(),
        }
    }

    /// The grant of the call: the stdio server's own, or the one the authentication layer put
    /// on the HTTP request.
    fn grant(&self, ctx: &RequestContext<RoleServer>) -> Result<Grant, CallToolResult> {
        if let Some(grant) = &self.fixed {
            return Ok(grant.clone());
        }
        ctx.extensions
            .get::<Parts>()
            .and_then(|parts| parts.extensions.get::<Grant>())
            .cloned()
            .ok_or_else(|| refusal("this call carries no credential"))
    }

    /// The namespace a call acts on, if its grant reaches it with `needed`; else the tool
    /// error the model sees. A key limited to some namespaces defaults to its first one.
    fn open(
        &self,
        ctx: &RequestContext<RoleServer>,
        given: Option<String>,
        needed: KeyScope,
    ) -> Result<String, CallToolResult> {
        let grant = self.grant(ctx)?;
        let ns = given.filter(|n| !n.is_empty()).unwrap_or_else(|| {
            match (&self.fixed, &grant.namespaces) {
                (None, Some(names)) if !names.is_empty() => names[0].clone(),
                _ => self.namespace.clone(),
            }
        });
        if !grant.admits(&ns) {
            let open = match &grant.namespaces {
                None => vec!["*".to_owned()],
                Some(names) => names.clone(),
            };
            return Err(refusal(format!(
                "namespace {ns:?} is not open to this server; it serves {open:?}"
            )));
        }
        if grant.scope < needed {
            return Err(refusal(format!(
                "this needs a key with the {} scope; this one has {}",
                needed.as_str(),
                grant.scope.as_str()
            )));
        }
        Ok(ns)
    }
}

/// Sent on connect: when the model should remember and when it should recall.
const INSTRUCTIONS: &str = "memlayer is your long-term memory. At the start of a session, \
call briefing for what you should know about the user. Recall before answering whenever the \
user's history, preferences or earlier decisions may matter, and search with the user's own \
words. Remember what will still matter in a later session: stable facts about the user, their \
preferences, decisions and their reasons, and corrections (use update to correct a memory, so \
its history is kept). Do not store secrets, small talk or what the current conversation \
already holds. Forget when the user asks you to.";

#[tool_handler(router = self.tool_router)]
impl ServerHandler for MemoryTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("memlayer", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

/// Serves the tools over stdin/stdout until the client closes the stream.
///
/// # Errors
/// A one-line message when the protocol fails.
pub async fn serve_stdio(
    store: DynStore,
    namespace: String,
    allowed: Allowed,
) -> Result<(), String> {
    let running = MemoryTools::new(store, namespace, allowed)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| format!("mcp: {e}"))?;
    running.waiting().await.map_err(|e| format!("mcp: {e}"))?;
    Ok(())
}

/// The `/mcp` endpoint: Streamable HTTP without sessions, so any server over the same store
/// answers any request (several servers behind one load balancer need no affinity).
///
/// The host and origin checks are the server's own (`guard::browser`), which run before this,
/// as does authentication.
pub(crate) fn http_service(
    store: DynStore,
    max_body_bytes: usize,
) -> StreamableHttpService<MemoryTools, NeverSessionManager> {
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .disable_allowed_hosts()
        .with_max_request_body_bytes(max_body_bytes);
    StreamableHttpService::new(
        move || Ok(MemoryTools::over_http(store.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    )
}

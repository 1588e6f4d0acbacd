//! `memlayer mcp`: a Model Context Protocol server over stdio (the official Rust SDK, `rmcp`)
//! with tools to remember, recall, forget, and keep a conversation window, over one store.

use memlayer::orchestrator::{
    AddOutcome, ExtractionType, LongTermMemory, NewMemory, Scope, ShortTermMemory, WindowConfig,
};
use memlayer::{DynStore, Filter, Kind, MemoryItem, SearchMode, SearchRequest};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, ServiceExt, schemars, tool, tool_handler, tool_router};
use serde::Deserialize;
use serde_json::{Value, json};

/// The namespaces a tool call may name.
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

    fn admits(&self, namespace: &str) -> bool {
        match self {
            Allowed::All => true,
            Allowed::Only(names) => names.iter().any(|n| n == namespace),
        }
    }
}

/// The MCP server: its tools act on `store`, in `namespace` unless a call names another of
/// the allowed ones.
#[derive(Clone)]
pub struct MemoryTools {
    store: DynStore,
    namespace: String,
    allowed: Allowed,
    tool_router: ToolRouter<Self>,
}

impl std::fmt::Debug for MemoryTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTools")
            .field("namespace", &self.namespace)
            .finish()
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
struct RememberArgs {
    /// What to remember, as one self-contained statement.
    content: String,
    /// The user it is about.
    user: Option<String>,
    /// The session it came from.
    session: Option<String>,
    /// facts (default), user_profile or agent_experience.
    #[serde(rename = "type")]
    extraction: Option<String>,
    /// Tags for filtering.
    #[serde(default)]
    tags: Vec<String>,
    /// 0..1, how much it matters.
    importance: Option<f32>,
    /// The namespace (the server's default when absent).
    namespace: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct RecallArgs {
    /// What to look for.
    query: String,
    /// hybrid (default), keyword, vector or recent.
    mode: Option<String>,
    /// How many results (default 5).
    limit: Option<usize>,
    /// Only this user's memories.
    user: Option<String>,
    /// Only this session's.
    session: Option<String>,
    /// Only these kinds (fact, human, ai, summary, user_profile, ...).
    #[serde(default)]
    kinds: Vec<String>,
    /// Only items with all these tags.
    #[serde(default)]
    tags: Vec<String>,
    /// The namespace (the server's default when absent).
    namespace: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct ForgetArgs {
    /// Delete this memory.
    id: Option<String>,
    /// Delete everything of this user in the namespace.
    user: Option<String>,
    /// The namespace (the server's default when absent).
    namespace: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct AppendArgs {
    /// The conversation.
    session: String,
    /// Its user.
    user: Option<String>,
    /// system, human, ai or tool.
    role: String,
    /// The message text.
    content: String,
    /// The namespace (the server's default when absent).
    namespace: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
struct WindowArgs {
    /// The conversation.
    session: String,
    /// Its user.
    user: Option<String>,
    /// Keep at most this many rounds (0 = all).
    max_rounds: Option<usize>,
    /// Keep within this many tokens.
    max_tokens: Option<usize>,
    /// The namespace (the server's default when absent).
    namespace: Option<String>,
}

fn ok(value: Value) -> Result<CallToolResult, ErrorData> {
    Ok(CallToolResult::success(vec![ContentBlock::json(value)?]))
}

/// A tool failure the model should see (bad arguments, a missing id), not a protocol error.
fn failed(message: impl std::fmt::Display) -> Result<CallToolResult, ErrorData> {
    Ok(CallToolResult::error(vec![ContentBlock::text(
        message.to_string(),
    )]))
}

fn brief(item: &MemoryItem) -> Value {
    json!({
        "id": item.id,
        "kind": item.kind.as_str(),
        "content": item.content,
        "user": item.metadata.user_id,
        "session": item.metadata.session_id,
        "tags": item.tags,
        "created_at": item.created_at,
    })
}

#[tool_router]
impl MemoryTools {
    /// Tools over `store`, in `namespace` by default, reaching only the `allowed` namespaces.
    pub fn new(store: DynStore, namespace: impl Into<String>, allowed: Allowed) -> Self {
        MemoryTools {
            store,
            namespace: namespace.into(),
            allowed,
            tool_router: Self::tool_router(),
        }
    }

    /// The namespace a call acts on, if this server may reach it; else the tool error the
    /// model sees.
    fn ns(&self, given: Option<String>) -> Result<String, CallToolResult> {
        let ns = given
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.namespace.clone());
        if self.allowed.admits(&ns) {
            Ok(ns)
        } else {
            Err(CallToolResult::error(vec![ContentBlock::text(format!(
                "namespace {ns:?} is not open to this server; it serves {:?}",
                match &self.allowed {
                    Allowed::All => vec!["*".to_owned()],
                    Allowed::Only(n) => n.clone(),
                }
            ))]))
        }
    }

    #[tool(
        description = "Store a long-term memory (a fact, a user profile detail or an agent experience). Exact duplicates are recognised, and a new value for the same subject supersedes the old one."
    )]
    async fn remember(
        &self,
        Parameters(a): Parameters<RememberArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let t = a.extraction.as_deref().unwrap_or("facts");
        let Some(extraction) = ExtractionType::parse(t) else {
            return failed(format!(
                "type is {t:?}; must be facts, user_profile or agent_experience"
            ));
        };
        let mut memory = NewMemory::new(extraction, a.content);
        for t in a.tags {
            memory = memory.with_tag(t);
        }
        if let Some(i) = a.importance {
            memory = memory.with_importance(i);
        }
        let scope = Scope {
            user: a.user,
            session: a.session,
            ..Scope::default()
        };
        let ns = match self.ns(a.namespace) {
            Ok(ns) => ns,
            Err(refused) => return Ok(refused),
        };
        let ltm = LongTermMemory::new(self.store.clone(), ns);
        match ltm.add(&scope, memory).await {
            Ok(outcome) => {
                let (what, item) = match &outcome {
                    AddOutcome::Added(i) => ("added", i),
                    AddOutcome::Duplicate(i) => ("duplicate", i),
                    AddOutcome::Confirmed(i) => ("confirmed", i),
                    AddOutcome::Superseded { new, .. } => ("superseded", new.as_ref()),
                };
                ok(json!({ "outcome": what, "memory": brief(item) }))
            }
            Err(e) => failed(e),
        }
    }

    #[tool(
        description = "Search memory by keyword, by meaning, or both (hybrid, the default), with optional user, session, kind and tag filters. Returns the best matches with their scores."
    )]
    async fn recall(
        &self,
        Parameters(a): Parameters<RecallArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let mode = match a.mode.as_deref().unwrap_or("hybrid") {
            "hybrid" => SearchMode::Hybrid,
            "keyword" => SearchMode::Keyword,
            "vector" | "semantic" => SearchMode::Vector,
            "recent" => SearchMode::Recent,
            other => {
                return failed(format!(
                    "mode is {other:?}; must be hybrid, keyword, vector or recent"
                ));
            }
        };
        let mut filter = Filter::new();
        if let Some(u) = a.user {
            filter = filter.user(u);
        }
        if let Some(s) = a.session {
            filter = filter.session(s);
        }
        for k in &a.kinds {
            filter = filter.kind(Kind::parse(k));
        }
        for t in a.tags {
            filter = filter.tag(t);
        }
        let request = SearchRequest::new(mode)
            .with_query(a.query)
            .with_filter(filter)
            .with_limit(a.limit.unwrap_or(5));
        let ns = match self.ns(a.namespace) {
            Ok(ns) => ns,
            Err(refused) => return Ok(refused),
        };
        match self.store.search(&ns, &request).await {
            Ok(results) => {
                let hits: Vec<Value> = results
                    .hits
                    .iter()
                    .map(|h| {
                        let mut b = brief(&h.item);
                        b["score"] = json!(h.score);
                        b["keyword_score"] = json!(h.keyword_score);
                        b["vector_score"] = json!(h.vector_score);
                        b
                    })
                    .collect();
                ok(json!({ "memories": hits }))
            }
            Err(e) => failed(e),
        }
    }

    #[tool(
        description = "Delete one memory by id, or everything of a user in the namespace. Deletion is permanent."
    )]
    async fn forget(
        &self,
        Parameters(a): Parameters<ForgetArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let ns = match self.ns(a.namespace) {
            Ok(ns) => ns,
            Err(refused) => return Ok(refused),
        };
        match (a.id, a.user) {
            (Some(id), None) => match self.store.delete(&ns, &id).await {
                Ok(()) => ok(json!({ "deleted": 1 })),
                Err(e) => failed(e),
            },
            (None, Some(user)) => {
                let done =
                    crate::forget::forget_user(&self.store, &user, std::slice::from_ref(&ns)).await;
                match &done.failure {
                    None => ok(json!({ "deleted": done.items() })),
                    Some(e) => failed(format!(
                        "forget stopped after deleting {} items: {e}; call it again to finish",
                        done.items()
                    )),
                }
            }
            _ => failed("give exactly one of id and user"),
        }
    }

    #[tool(description = "Append a message (role system, human, ai or tool) to a conversation.")]
    async fn conversation_append(
        &self,
        Parameters(a): Parameters<AppendArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let kind = match a.role.as_str() {
            "system" => Kind::System,
            "human" | "user" => Kind::Human,
            "ai" | "assistant" => Kind::Ai,
            "tool" => Kind::Tool,
            other => {
                return failed(format!(
                    "role is {other:?}; must be system, human, ai or tool"
                ));
            }
        };
        let ns = match self.ns(a.namespace) {
            Ok(ns) => ns,
            Err(refused) => return Ok(refused),
        };
        let scope = Scope {
            user: a.user,
            session: Some(a.session),
            ..Scope::default()
        };
        let stm = ShortTermMemory::new(self.store.clone(), &ns);
        match stm
            .append(&scope, MemoryItem::new(&ns, kind, a.content))
            .await
        {
            Ok(item) => ok(json!({ "message": brief(&item) })),
            Err(e) => failed(e),
        }
    }

    #[tool(
        description = "The recent part of a conversation that fits a prompt: whole rounds, newest last, never splitting a tool call from its result."
    )]
    async fn conversation_window(
        &self,
        Parameters(a): Parameters<WindowArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let ns = match self.ns(a.namespace) {
            Ok(ns) => ns,
            Err(refused) => return Ok(refused),
        };
        let scope = Scope {
            user: a.user,
            session: Some(a.session),
            ..Scope::default()
        };
        let mut config = WindowConfig::new().max_rounds(a.max_rounds.unwrap_or(0));
        if let Some(t) = a.max_tokens {
            config = config.max_tokens(t);
        }
        let stm = ShortTermMemory::new(self.store.clone(), &ns);
        match stm.window(&scope, &config).await {
            Ok(w) => ok(json!({
                "messages": w.messages.iter().map(|m| json!({"role": m.kind.as_str(), "content": m.content})).collect::<Vec<_>>(),
                "rounds_total": w.rounds_total,
                "rounds_kept": w.rounds_kept,
                "tokens": w.tokens,
            })),
            Err(e) => failed(e),
        }
    }
}

/// Sent on connect: when the model should remember and when it should recall.
const INSTRUCTIONS: &str = "memlayer is your long-term memory. Recall before answering \
whenever the user's history, preferences or earlier decisions may matter, and search with the \
user's own words. Remember what will still matter in a later session: stable facts about the \
user, their preferences, decisions and their reasons, and corrections. Do not store secrets, \
small talk or what the current conversation already holds. Forget when the user asks you to.";

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

//! Compatibility with Redis's Agent Memory Server REST API (`/v1/...`), so its clients work
//! unchanged (see `docs/compat-agent-memory-server.md`).
//!
//! - Working memory (`working.rs`): a session is one item of kind `working_memory`.
//! - Long-term memory (`long_term.rs`): a memory record is one item in the memlayer namespace
//!   named by the record's AMS namespace; topics and entities are tags, the memory type is the
//!   kind, the other AMS fields are metadata.
//! - The memory prompt (`prompt.rs`) combines both.
//! - Summary views and tasks need an LLM: they answer 501.

// The handlers' errors are the HTTP answers themselves, built once on a failing request's way
// out; boxing them would buy nothing but noise.
#![allow(clippy::result_large_err)]

mod filter;
mod long_term;
mod prompt;
mod record;
mod search;
mod working;

pub use record::{FieldError, item_of_record};

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use memlayer::Timestamp;
use serde_json::{Value, json};

use crate::keys::Grant;
use crate::{ApiError, AppState};

/// The AMS namespace when the client names none.
const DEFAULT_NAMESPACE: &str = "default";

/// AMS answers errors as `{"detail": ...}`, which its client reads.
pub(crate) fn detail(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "detail": message.into() }))).into_response()
}

/// A validation error naming the field, as AMS (FastAPI) answers them: 422.
fn invalid(field: &str, message: impl std::fmt::Display) -> Response {
    detail(
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("{field}: {message}"),
    )
}

/// A native API error in AMS's error shape.
fn from_api(e: ApiError) -> Response {
    let status = e.status();
    detail(status, e.message().to_owned())
}

fn from_store(e: memlayer::Error) -> Response {
    from_api(e.into())
}

fn namespace_of(q: Option<&str>) -> String {
    q.filter(|n| !n.is_empty())
        .unwrap_or(DEFAULT_NAMESPACE)
        .to_owned()
}

fn hex_digest(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The namespaces the request may read: the store's, cut to the token's.
async fn visible_namespaces(st: &AppState, grant: &Grant) -> Result<Vec<String>, Response> {
    let all = st.store.list_namespaces().await.map_err(from_store)?;
    Ok(grant.visible(all))
}

/// Parses an AMS datetime: RFC 3339, a naive ISO datetime (taken as UTC), or unix seconds.
fn parse_time(v: &Value) -> Option<Timestamp> {
    match v {
        Value::Number(n) => n
            .as_f64()
            .map(|s| Timestamp::from_millis((s * 1000.0).round() as i64)),
        Value::String(s) => Timestamp::parse_rfc3339(s)
            .or_else(|| Timestamp::parse_rfc3339(&format!("{s}Z")))
            .or_else(|| Timestamp::parse_rfc3339(&format!("{s}T00:00:00Z"))),
        _ => None,
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/health", get(health))
        .merge(working::routes())
        .merge(long_term::routes())
        .route("/v1/memory/prompt", post(prompt::memory_prompt))
        .route("/v1/summary-views", any(needs_llm))
        .route("/v1/summary-views/{*rest}", any(needs_llm))
        .route("/v1/tasks/{*rest}", any(needs_llm))
}

async fn health() -> Json<Value> {
    let now = Timestamp::now().as_millis() as f64 / 1000.0;
    Json(json!({ "now": now }))
}

/// Summary views and their tasks summarise with an LLM, which memlayer's server does not run.
async fn needs_llm() -> Response {
    detail(
        StatusCode::NOT_IMPLEMENTED,
        "summary views need an LLM to summarise; memlayer-server does not summarise \
         (see docs/compat-agent-memory-server.md)",
    )
}

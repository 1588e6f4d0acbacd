//! `POST /v1/memory/prompt`: a prompt ready for an LLM, built deterministically from the
//! session's working memory and a long-term search, then the query.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::search::{SearchBody, run_search};
use super::{detail, from_api, invalid, namespace_of, working};
use crate::AppState;
use crate::keys::Grant;

#[derive(Deserialize)]
struct SessionParams {
    session_id: String,
    namespace: Option<String>,
    user_id: Option<String>,
    #[allow(dead_code)] // accepted: the window is given in tokens, not derived from a model
    model_name: Option<String>,
    /// The client sends it as a string.
    context_window_max: Option<Value>,
}

#[derive(Deserialize)]
struct PromptBody {
    query: String,
    session: Option<SessionParams>,
    long_term_search: Option<Value>,
}

/// A message in the MCP prompt shape AMS answers with.
fn message(role: &str, text: &str) -> Value {
    json!({ "role": role, "content": { "type": "text", "text": text } })
}

fn tokens(text: &str) -> usize {
    text.chars().count().div_ceil(4)
}

pub(super) async fn memory_prompt(
    State(st): State<AppState>,
    grant: Grant,
    body: Bytes,
) -> Response {
    let b: PromptBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return invalid("body", e),
    };
    if b.query.trim().is_empty() {
        return detail(StatusCode::UNPROCESSABLE_ENTITY, "query: must not be empty");
    }
    if b.session.is_none() && b.long_term_search.is_none() {
        return invalid("body", "give session, long_term_search or both");
    }
    let mut messages = Vec::new();
    if let Some(s) = &b.session {
        let window = match &s.context_window_max {
            None | Some(Value::Null) => None,
            Some(v) => match v
                .as_u64()
                .or_else(|| v.as_str().and_then(|t| t.trim().parse().ok()))
            {
                Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
                None => {
                    return invalid("session.context_window_max", "expected a number of tokens");
                }
            },
        };
        let namespace = namespace_of(s.namespace.as_deref());
        if let Err(e) = grant.check(&namespace) {
            return from_api(e);
        }
        match working::load(&st, &namespace, &s.session_id, s.user_id.as_deref()).await {
            Ok(Some((doc, _))) => {
                if let Some(context) = doc.get("context").and_then(Value::as_str)
                    && !context.is_empty()
                {
                    messages.push(message(
                        "system",
                        &format!("## A summary of the conversation so far:\n{context}"),
                    ));
                }
                let mut turns: Vec<Value> = doc
                    .get("messages")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|m| {
                        let text = m.get("content").and_then(Value::as_str)?;
                        let role = match m.get("role").and_then(Value::as_str) {
                            Some("user") => "user",
                            Some("system") => "system",
                            _ => "assistant",
                        };
                        Some(message(role, text))
                    })
                    .collect();
                // With a token window, the newest messages that fit are kept.
                if let Some(max) = window {
                    let mut used = tokens(&b.query);
                    let mut keep = turns.len();
                    for (i, m) in turns.iter().enumerate().rev() {
                        let t = tokens(m["content"]["text"].as_str().unwrap_or(""));
                        if used + t > max {
                            break;
                        }
                        used += t;
                        keep = i;
                    }
                    turns.drain(..keep);
                }
                messages.extend(turns);
            }
            Ok(None) => {}
            Err(e) => return from_api(e),
        }
    }
    if let Some(mut search) = b.long_term_search {
        let Some(obj) = search.as_object_mut() else {
            return invalid("long_term_search", "expected an object");
        };
        obj.entry("text").or_insert_with(|| json!(b.query));
        let request: SearchBody = match serde_json::from_value(search) {
            Ok(r) => r,
            Err(e) => return invalid("long_term_search", e),
        };
        match run_search(&st, &grant, &request).await {
            Ok(results) if !results.page.is_empty() => {
                let lines: Vec<String> = results
                    .page
                    .iter()
                    .map(|f| format!("- {} (ID: {})", f.item.content, f.item.id))
                    .collect();
                messages.push(message(
                    "system",
                    &format!(
                        "## Long term memories related to the user's query\n{}",
                        lines.join("\n")
                    ),
                ));
            }
            Ok(_) => {}
            Err(r) => return r,
        }
    }
    messages.push(message("user", &b.query));
    Json(json!({ "messages": messages })).into_response()
}

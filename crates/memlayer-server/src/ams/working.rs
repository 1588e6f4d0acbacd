//! AMS working memory. A session's working memory is one item (kind `working_memory`) whose content is the
//! session document as the client sent it; its id is derived from the AMS namespace, session
//! and user, and `ttl_seconds` becomes the item's expiry, so an expired session is gone (404)
//! exactly when the contract hides the item.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use memlayer::{ErrorKind, FieldMatch, Filter, Kind, MemoryItem, MemoryStoreExt, Tier, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{detail, from_api, hex_digest, long_term, namespace_of};
use crate::keys::Grant;
use crate::{ApiError, AppState};

const KIND: &str = "working_memory";

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/working-memory/", get(list_sessions))
        .route(
            "/v1/working-memory/{session_id}",
            get(get_session).put(put_session).delete(delete_session),
        )
}

#[derive(Deserialize, Default)]
struct SessionQuery {
    namespace: Option<String>,
    user_id: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    offset: Option<usize>,
}

/// The query's AMS namespace, if the token may touch it.
fn allowed(grant: &Grant, q: &SessionQuery) -> Result<String, Response> {
    let namespace = namespace_of(q.namespace.as_deref());
    grant.check(&namespace).map_err(from_api)?;
    Ok(namespace)
}

/// The item id of a session, one per (session, user) in its namespace. The namespace is in
/// the digest too, which keeps the ids of sessions stored before item identity included the
/// namespace (decisions/0007); another tenant computing the id writes into its own namespace.
fn session_item_id(namespace: &str, session: &str, user: Option<&str>) -> String {
    let key = json!([namespace, session, user]).to_string();
    format!("wm-{}", &hex_digest(&key)[..32])
}

/// The response body of a stored session document.
fn response_of(mut doc: Value, item: &MemoryItem) -> Value {
    if let Some(obj) = doc.as_object_mut() {
        let tokens: usize = obj
            .get("messages")
            .and_then(Value::as_array)
            .map_or(0, |ms| {
                ms.iter()
                    .filter_map(|m| m.get("content").and_then(Value::as_str))
                    .map(|c| c.chars().count().div_ceil(4))
                    .sum()
            });
        obj.insert("tokens".into(), json!(tokens));
        obj.insert("last_accessed".into(), json!(item.updated_at.to_rfc3339()));
        obj.insert("new_session".into(), json!(item.version == 1));
        for key in ["messages", "memories"] {
            obj.entry(key).or_insert_with(|| json!([]));
        }
    }
    doc
}

pub(super) async fn load(
    st: &AppState,
    namespace: &str,
    session: &str,
    user: Option<&str>,
) -> Result<Option<(Value, MemoryItem)>, ApiError> {
    let id = session_item_id(namespace, session, user);
    match st.store.get(namespace, &id).await {
        // `get` reads by id whatever the expiry; an expired session is gone for AMS.
        Ok(item) if item.is_expired_at(Timestamp::now()) => Ok(None),
        Ok(item) => {
            let doc: Value = serde_json::from_str(&item.content).map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "unexpected",
                    format!("stored session does not parse: {e}"),
                )
            })?;
            Ok(Some((doc, item)))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn get_session(
    State(st): State<AppState>,
    grant: Grant,
    Path(session_id): Path<String>,
    Query(q): Query<SessionQuery>,
) -> Response {
    let namespace = match allowed(&grant, &q) {
        Ok(ns) => ns,
        Err(r) => return r,
    };
    match load(&st, &namespace, &session_id, q.user_id.as_deref()).await {
        Ok(Some((doc, item))) => Json(response_of(doc, &item)).into_response(),
        Ok(None) => detail(
            StatusCode::NOT_FOUND,
            format!("session {session_id} not found"),
        ),
        Err(e) => from_api(e),
    }
}

async fn put_session(
    State(st): State<AppState>,
    grant: Grant,
    Path(session_id): Path<String>,
    Query(q): Query<SessionQuery>,
    body: Bytes,
) -> Response {
    let mut doc: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return detail(StatusCode::UNPROCESSABLE_ENTITY, format!("body: {e}")),
    };
    let Some(obj) = doc.as_object_mut() else {
        return detail(StatusCode::UNPROCESSABLE_ENTITY, "body: expected an object");
    };
    let namespace = namespace_of(
        q.namespace
            .as_deref()
            .or_else(|| obj.get("namespace").and_then(Value::as_str)),
    );
    if let Err(e) = grant.check(&namespace) {
        return from_api(e);
    }
    // The query's user overrides the document's, as in AMS.
    let user = q.user_id.clone().or_else(|| {
        obj.get("user_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    for field in ["messages", "memories"] {
        if obj.get(field).is_some_and(|v| !v.is_array()) {
            return detail(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("{field}: expected a list"),
            );
        }
    }
    if obj
        .get("data")
        .is_some_and(|v| !(v.is_object() || v.is_null()))
    {
        return detail(StatusCode::UNPROCESSABLE_ENTITY, "data: expected an object");
    }
    let ttl = match obj.get("ttl_seconds") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64() {
            Some(t) if t > 0 => Some(t),
            _ => {
                return detail(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "ttl_seconds: expected a positive integer",
                );
            }
        },
    };
    obj.insert("session_id".into(), json!(session_id));
    obj.insert("namespace".into(), json!(namespace));
    obj.insert("user_id".into(), json!(user));
    for computed in ["tokens", "last_accessed", "new_session", "unsaved"] {
        obj.remove(computed);
    }
    if let Err(r) = long_term::promote(&st, &grant, &mut doc).await {
        return r;
    }
    let content = doc.to_string();
    let mut item = MemoryItem::new(&namespace, Kind::Custom(KIND.into()), content)
        .with_id(session_item_id(&namespace, &session_id, user.as_deref()))
        .with_session(session_id.clone());
    if let Some(u) = &user {
        item = item.with_user(u.clone());
    }
    item = match ttl {
        Some(t) => item
            .with_tier(Tier::Working)
            .with_expires_at(Timestamp::from_millis(
                Timestamp::now()
                    .as_millis()
                    .saturating_add(t.saturating_mul(1000)),
            )),
        None => item.with_tier(Tier::Semantic),
    };
    match st.store.upsert(item).await {
        Ok(stored) => Json(response_of(doc, &stored)).into_response(),
        Err(e) => from_api(e.into()),
    }
}

async fn delete_session(
    State(st): State<AppState>,
    grant: Grant,
    Path(session_id): Path<String>,
    Query(q): Query<SessionQuery>,
) -> Response {
    let namespace = match allowed(&grant, &q) {
        Ok(ns) => ns,
        Err(r) => return r,
    };
    let id = session_item_id(&namespace, &session_id, q.user_id.as_deref());
    match st.store.delete(&namespace, &id).await {
        Ok(()) => Json(json!({ "status": "ok" })).into_response(),
        // Deleting what is not there is not an error in AMS either.
        Err(e) if e.kind() == ErrorKind::NotFound => {
            Json(json!({ "status": "ok" })).into_response()
        }
        Err(e) => from_api(e.into()),
    }
}

async fn list_sessions(
    State(st): State<AppState>,
    grant: Grant,
    Query(q): Query<SessionQuery>,
) -> Response {
    let namespace = match allowed(&grant, &q) {
        Ok(ns) => ns,
        Err(r) => return r,
    };
    let mut filter = Filter::new().kind(Kind::Custom(KIND.into()));
    if let Some(u) = &q.user_id {
        filter.user = FieldMatch::Is(u.clone());
    }
    let items = match st.store.list_all(&namespace, filter).await {
        Ok(items) => items,
        Err(e) => return from_api(e.into()),
    };
    let mut sessions: Vec<String> = items
        .iter()
        .filter_map(|i| i.metadata.session_id.clone())
        .collect();
    sessions.sort();
    sessions.dedup();
    let total = sessions.len();
    let offset = q.offset.unwrap_or(0);
    let limit = q.limit.unwrap_or(20);
    let page: Vec<String> = sessions.into_iter().skip(offset).take(limit).collect();
    Json(json!({ "sessions": page, "total": total })).into_response()
}

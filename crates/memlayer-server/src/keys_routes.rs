//! `/keys`: API key management over HTTP, for admin keys (the authentication layer admits no
//! other scope here). The same operations as `memlayer keys`, on the same store.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::keys::{KeyScope, Keys, NewKey, parse_span};
use crate::{ApiResult, AppState, parse};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    scope: String,
    #[serde(default)]
    namespaces: Vec<String>,
    /// A span such as `30d`.
    expires: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    /// How long the old secret keeps working, as a span (`0s` by default).
    grace: Option<String>,
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/keys", post(create).get(list))
        .route("/keys/{id}", delete(revoke))
        .route("/keys/{id}/rotate", post(rotate))
}

fn keys(st: &AppState) -> Keys {
    Keys::new(st.store.clone())
}

async fn create(State(st): State<AppState>, body: Bytes) -> ApiResult<(StatusCode, Json<Value>)> {
    let b: CreateBody = parse(&body)?;
    let new = NewKey {
        name: b.name,
        scope: KeyScope::parse(&b.scope)?,
        namespaces: b.namespaces,
        expires_in: b
            .expires
            .as_deref()
            .map(|e| parse_span("expires", e))
            .transpose()?,
    };
    let (info, token) = keys(&st).create(new).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "key": info, "token": token })),
    ))
}

async fn list(State(st): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "keys": keys(&st).list().await? })))
}

async fn rotate(
    State(st): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let b: RotateBody = if body.is_empty() {
        RotateBody::default()
    } else {
        parse(&body)?
    };
    let grace = match b.grace.as_deref() {
        Some(g) => parse_span("grace", g)?,
        None => std::time::Duration::ZERO,
    };
    let (info, token) = keys(&st).rotate(&id, grace).await?;
    Ok(Json(json!({ "key": info, "token": token })))
}

async fn revoke(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "key": keys(&st).revoke(&id).await? })))
}

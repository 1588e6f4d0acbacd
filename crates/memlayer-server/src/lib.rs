#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod ams;
mod auth;
pub mod erase;
mod error;
mod guard;
mod keys;
mod keys_routes;
pub mod mcp;
mod metered;
mod metrics;
mod openapi;
mod serve;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use memlayer::orchestrator::{
    AddOutcome, ExtractionType, LongTermMemory, NewMemory, Scope, ShortTermMemory, Triple,
    WindowConfig,
};
use memlayer::{
    ClearRequest, CountOptions, DynStore, ListRequest, MemoryItem, Page, SearchRequest,
    SearchResults, Timestamp,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// Agent Memory Server records as the items this server stores them as (`memlayer import`).
pub use ams::{FieldError as AmsFieldError, item_of_record as ams_item_of_record};
pub use auth::{Auth, KEY_CACHE, KeyRing, TokenEntry};
pub use error::ApiError;
pub use keys::{
    Grant, KEYS_NAMESPACE, KeyInfo, KeyScope, Keys, NewKey, RESERVED_PREFIX, parse_span,
};
pub use serve::{ServeArgs, auth_for, open_store, serve, shutdown_signal};

/// How the server runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerConfig {
    /// Who may touch what.
    pub auth: Auth,
    /// The largest request body, in bytes (413 above).
    pub max_body_bytes: usize,
    /// The longest a request may take (504 after; the write may still have landed, see
    /// `docs/security.md`).
    pub request_timeout: Duration,
    /// Host names an unauthenticated server answers besides the loopback ones (`localhost`,
    /// `127.0.0.0/8`, `[::1]`), which is what stops DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Whether `/metrics` carries item counts per namespace (off by default: they name every
    /// tenant and cost two counts per namespace per scrape).
    pub namespace_gauges: bool,
    /// Connection limits.
    pub connections: ConnectionLimits,
}

/// Limits on the connections themselves, so slow or idle clients cannot hold the server.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ConnectionLimits {
    /// Most connections open at once; the next waits in the listen backlog.
    pub max_connections: usize,
    /// The longest a client may take to send a request's headers, and the longest an idle
    /// keep-alive connection stays open.
    pub header_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            auth: Auth::Disabled,
            max_body_bytes: 8 << 20,
            request_timeout: Duration::from_secs(30),
            allowed_hosts: Vec::new(),
            namespace_gauges: false,
            connections: ConnectionLimits::default(),
        }
    }
}

#[derive(Clone)]
struct AppState {
    store: DynStore,
    config: Arc<ServerConfig>,
    metrics: Arc<metrics::Metrics>,
}

type ApiResult<T> = Result<T, ApiError>;

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        if e.is_data() {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_input",
                format!("request body: {e}"),
            )
        } else {
            ApiError::bad_json(format!("request body is not valid JSON: {e}"))
        }
    })
}

/// The `{ns}` of the path, which the request's token may touch: every namespaced handler takes
/// it, so none can forget the check (401/403 before the handler runs).
struct Ns(String);

impl FromRequestParts<AppState> for Ns {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, ApiError> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, st)
            .await
            .map_err(|e| ApiError::bad_json(format!("path: {e}")))?;
        let ns = params
            .get("ns")
            .cloned()
            .ok_or_else(|| ApiError::invalid("ns", "the path names no namespace"))?;
        Grant::from_request_parts(parts, st).await?.check(&ns)?;
        Ok(Ns(ns))
    }
}

/// An item from a request body, placed in the path's namespace (and id, when given).
fn item_from(body: &Bytes, namespace: &str, id: Option<&str>) -> ApiResult<MemoryItem> {
    item_from_value(parse(body)?, namespace, id)
}

fn item_from_value(mut value: Value, namespace: &str, id: Option<&str>) -> ApiResult<MemoryItem> {
    let Some(obj) = value.as_object_mut() else {
        return Err(ApiError::invalid("item", "must be a JSON object"));
    };
    obj.insert("namespace".into(), json!(namespace));
    if let Some(id) = id {
        obj.insert("id".into(), json!(id));
    }
    serde_json::from_value(value).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_input",
            format!("item: {e}"),
        )
    })
}

/// The router over a store.
pub fn router(store: DynStore, config: ServerConfig) -> Router {
    let max_body = config.max_body_bytes;
    let metrics = Arc::new(metrics::Metrics::default());
    let store: DynStore = Arc::new(metered::MeteredStore {
        inner: store,
        metrics: metrics.clone(),
    });
    let mcp = mcp::http_service(store.clone(), max_body);
    let state = AppState {
        store,
        config: Arc::new(config),
        metrics,
    };
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(openapi_json))
        .route("/ns/{ns}/export", get(export))
        .route("/ns/{ns}/import", post(import))
        .route("/ready", get(ready))
        .route("/namespaces", get(namespaces))
        .route(
            "/ns/{ns}",
            axum::routing::delete(delete_namespace).get(count),
        )
        .route("/ns/{ns}/items", post(create_item))
        .route("/ns/{ns}/items/batch", post(batch))
        .route(
            "/ns/{ns}/items/{id}",
            get(get_item).put(put_item).delete(delete_item),
        )
        .route("/ns/{ns}/items/{id}/supersede", post(supersede))
        .route("/ns/{ns}/items/{id}/restore", post(restore))
        .route("/ns/{ns}/items/{id}/predecessors", get(predecessors))
        .route("/ns/{ns}/search", post(search))
        .route("/ns/{ns}/list", post(list))
        .route("/ns/{ns}/clear", post(clear))
        .route("/ns/{ns}/reinforce", post(reinforce))
        .route("/ns/{ns}/conversations/append", post(append))
        .route("/ns/{ns}/conversations/window", post(window))
        .route("/ns/{ns}/memories", post(remember))
        .merge(ams::routes())
        .merge(keys_routes::routes())
        .route_service("/mcp", mcp)
        // Layers run outside in: the request timeout and log, then the browser guard, then
        // authentication, all before a handler reads the body.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guard::authenticate,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guard::browser,
        ))
        .layer(middleware::from_fn(guard::json_errors))
        .layer(middleware::from_fn_with_state(state.clone(), limits))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

/// Applies the request timeout and logs every request.
async fn limits(State(st): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    // The route template (`/ns/{ns}/items/{id}`), never the raw path, labels the metrics.
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let timeout = st.config.request_timeout;
    let response = match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            format!("the request took longer than {timeout:?}"),
        )
        .into_response(),
    };
    st.metrics.observe(
        &route,
        method.as_str(),
        response.status().as_u16(),
        started.elapsed(),
    );
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}

async fn metrics_text(State(st): State<AppState>, grant: Grant) -> ApiResult<Response> {
    // The authentication layer admits only the admin scope here; this says so again.
    grant.check_scope(KeyScope::Admin)?;
    let mut extra = String::new();
    let backend = st.store.backend();
    // Item counts per namespace, live and all, computed at scrape time when asked for.
    if st.config.namespace_gauges
        && let Ok(namespaces) = st.store.list_namespaces().await
    {
        extra.push_str(
            "# HELP memlayer_items Items per namespace (live, or every one not hard-deleted).\n",
        );
        extra.push_str("# TYPE memlayer_items gauge\n");
        for ns in namespaces {
            let mut all = CountOptions::default();
            all.include_deleted = true;
            let live = st
                .store
                .count(&ns, CountOptions::default())
                .await
                .unwrap_or(0);
            let total = st.store.count(&ns, all).await.unwrap_or(0);
            let ns = ns.replace('\\', "\\\\").replace('"', "\\\"");
            extra.push_str(&format!(
                "memlayer_items{{backend=\"{backend}\",namespace=\"{ns}\",state=\"live\"}} {live}\n"
            ));
            extra.push_str(&format!(
                "memlayer_items{{backend=\"{backend}\",namespace=\"{ns}\",state=\"all\"}} {total}\n"
            ));
        }
    }
    Ok((
        [("content-type", "text/plain; version=0.0.4")],
        st.metrics.render(&extra),
    )
        .into_response())
}

async fn openapi_json() -> Json<Value> {
    Json(openapi::document())
}

/// Every item of a namespace (deleted, expired and superseded included), one JSON per line,
/// embeddings and model ids carried.
async fn export(State(st): State<AppState>, Ns(ns): Ns) -> ApiResult<Response> {
    let filter = memlayer::Filter::new()
        .include_deleted(true)
        .include_expired(true)
        .include_superseded(true);
    let items = memlayer::MemoryStoreExt::list_all(st.store.as_ref(), &ns, filter).await?;
    let mut body = String::new();
    for item in &items {
        let line = serde_json::to_string(item).map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "unexpected",
                e.to_string(),
            )
        })?;
        body.push_str(&line);
        body.push('\n');
    }
    Ok(([("content-type", "application/x-ndjson")], body).into_response())
}

/// JSON lines of items into a namespace, all or nothing: every line is checked, then the items
/// are written in one atomic batch, so a failure stores none of them. An import larger than
/// the store's batch is refused (413) before anything is written; the CLI's `import` splits
/// files of any size. Import is an upsert: an id new to the namespace starts at version 1 with
/// its `created_at` kept; soft-deleted items are not revived but skipped, and counted.
async fn import(State(st): State<AppState>, Ns(ns): Ns, body: Bytes) -> ApiResult<Json<Value>> {
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::bad_json(format!("the body is not UTF-8: {e}")))?;
    let mut items = Vec::new();
    let mut skipped_deleted = 0u64;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line)
            .map_err(|e| ApiError::bad_json(format!("line {}: {e}", i + 1)))?;
        let item = item_from_value(value, &ns, None)
            .map_err(|e| ApiError::invalid("line", format!("line {}: {}", i + 1, e.message())))?;
        memlayer::limits::check_item(&item).map_err(|e| {
            let mut api = ApiError::from(e);
            api.prefix(&format!("line {}: ", i + 1));
            api
        })?;
        if item.deleted {
            skipped_deleted += 1;
            continue;
        }
        items.push(item);
    }
    let max = st.store.capabilities().max_batch;
    if items.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "lines: {} items in one import, the limit is {max} (one atomic batch); split \
                 the file, or use `memlayer import`, which does",
                items.len()
            ),
        ));
    }
    let n = if items.is_empty() {
        0
    } else {
        st.store.upsert_many(items).await?.len()
    };
    Ok(Json(
        json!({ "imported": n, "skipped_deleted": skipped_deleted }),
    ))
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn ready(State(st): State<AppState>) -> ApiResult<Json<Value>> {
    st.store.ping().await?;
    Ok(Json(
        json!({ "status": "ready", "backend": st.store.backend() }),
    ))
}

async fn namespaces(State(st): State<AppState>, grant: Grant) -> ApiResult<Json<Value>> {
    let visible = grant.visible(st.store.list_namespaces().await?);
    Ok(Json(json!({ "namespaces": visible })))
}

#[derive(Deserialize)]
struct CountQuery {
    #[serde(default)]
    include_deleted: bool,
}

async fn count(
    State(st): State<AppState>,
    Ns(ns): Ns,
    Query(q): Query<CountQuery>,
) -> ApiResult<Json<Value>> {
    let mut options = CountOptions::default();
    options.include_deleted = q.include_deleted;
    let n = st.store.count(&ns, options).await?;
    Ok(Json(json!({ "namespace": ns, "count": n })))
}

async fn delete_namespace(State(st): State<AppState>, Ns(ns): Ns) -> ApiResult<Json<Value>> {
    let n = st.store.delete_namespace(&ns).await?;
    Ok(Json(json!({ "deleted": n })))
}

/// The id an `Idempotency-Key` stands for: a retry of the same add names the same item.
fn idempotent_id(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(key) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = key
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 256)
        .ok_or_else(|| {
            ApiError::invalid(
                "Idempotency-Key",
                "must be 1..=256 visible ASCII characters",
            )
        })?;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    Ok(Some(format!("idem-{hex}")))
}

/// Adds an item (201), or replaces the one of the body's id (200). With an `Idempotency-Key`
/// header and no id in the body, the item's id comes from the key, and a retry of an add that
/// landed (after a timeout, say) answers the stored item without writing it again.
async fn create_item(
    State(st): State<AppState>,
    Ns(ns): Ns,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let mut value: Value = parse(&body)?;
    let keyed = match idempotent_id(&headers)? {
        Some(id) if value.get("id").is_none_or(Value::is_null) => {
            if let Some(obj) = value.as_object_mut() {
                obj.insert("id".into(), json!(id));
            }
            Some(id)
        }
        _ => None,
    };
    let item = item_from_value(value, &ns, None)?;
    if let Some(id) = &keyed {
        match st.store.get(&ns, id).await {
            Ok(stored) => {
                return Ok((
                    StatusCode::OK,
                    [("idempotent-replayed", "true")],
                    Json(without_vector(stored)),
                )
                    .into_response());
            }
            Err(e) if e.kind() == memlayer::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    let stored = st.store.upsert(item).await?;
    let status = if stored.version == 1 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(without_vector(stored))).into_response())
}

/// An item as a write answers it: without its vector, as searches leave them out (at 384
/// dimensions a vector is most of an item's bytes, and the caller sent or does not need it).
fn without_vector(mut item: MemoryItem) -> MemoryItem {
    item.embedding = None;
    item
}

async fn put_item(
    State(st): State<AppState>,
    Ns(ns): Ns,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<MemoryItem>> {
    let item = item_from(&body, &ns, Some(&id))?;
    Ok(Json(without_vector(st.store.upsert(item).await?)))
}

async fn batch(State(st): State<AppState>, Ns(ns): Ns, body: Bytes) -> ApiResult<Json<Value>> {
    let values: Vec<Value> = parse(&body)?;
    let max = st.store.capabilities().max_batch;
    if values.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("items: {} in one batch, the limit is {max}", values.len()),
        ));
    }
    let mut items = Vec::with_capacity(values.len());
    for v in values {
        items.push(item_from_value(v, &ns, None)?);
    }
    let stored: Vec<MemoryItem> = st
        .store
        .upsert_many(items)
        .await?
        .into_iter()
        .map(without_vector)
        .collect();
    Ok(Json(json!({ "items": stored })))
}

async fn get_item(
    State(st): State<AppState>,
    Ns(ns): Ns,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<MemoryItem>> {
    Ok(Json(st.store.get(&ns, &id).await?))
}

async fn delete_item(
    State(st): State<AppState>,
    Ns(ns): Ns,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    st.store.delete(&ns, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct SupersedeBody {
    by: String,
}

async fn supersede(
    State(st): State<AppState>,
    Ns(ns): Ns,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Json<MemoryItem>> {
    let b: SupersedeBody = parse(&body)?;
    Ok(Json(without_vector(
        st.store.supersede(&ns, &id, &b.by).await?,
    )))
}

async fn restore(
    State(st): State<AppState>,
    Ns(ns): Ns,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<MemoryItem>> {
    Ok(Json(without_vector(st.store.restore(&ns, &id).await?)))
}

async fn predecessors(
    State(st): State<AppState>,
    Ns(ns): Ns,
    Path((_, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let items = st.store.predecessors(&ns, &id).await?;
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
struct SearchQuery {
    /// `?vectors=true` keeps the hits' embeddings in the response; by default they are left
    /// out, as Chroma's query, Qdrant's search and Pinecone's query leave them out.
    #[serde(default)]
    vectors: bool,
}

/// Results are serialised straight from their types, not through a `Value` tree: vectors stay
/// f32, written in f32's shortest form (about half the text of their f64 widening). The hits'
/// vectors are sent only on `?vectors=true`: at 384 dimensions they are nine tenths of a
/// response's bytes, and an agent reads the contents.
async fn search(
    State(st): State<AppState>,
    Ns(ns): Ns,
    Query(q): Query<SearchQuery>,
    body: Bytes,
) -> ApiResult<Json<SearchResults>> {
    let request: SearchRequest = parse(&body)?;
    let mut results = st.store.search(&ns, &request).await?;
    if !q.vectors {
        for hit in &mut results.hits {
            hit.item.embedding = None;
        }
    }
    Ok(Json(results))
}

async fn list(State(st): State<AppState>, Ns(ns): Ns, body: Bytes) -> ApiResult<Json<Page>> {
    let request: ListRequest = if body.is_empty() {
        ListRequest::default()
    } else {
        parse(&body)?
    };
    Ok(Json(st.store.list(&ns, &request).await?))
}

async fn clear(State(st): State<AppState>, Ns(ns): Ns, body: Bytes) -> ApiResult<Json<Value>> {
    let request: ClearRequest = parse(&body)?;
    let n = st.store.clear(&ns, &request).await?;
    Ok(Json(json!({ "cleared": n })))
}

#[derive(Deserialize)]
struct ReinforceBody {
    ids: Vec<String>,
    #[serde(default)]
    at: Option<Timestamp>,
}

async fn reinforce(State(st): State<AppState>, Ns(ns): Ns, body: Bytes) -> ApiResult<Json<Value>> {
    let b: ReinforceBody = parse(&body)?;
    let at = b.at.unwrap_or_else(Timestamp::now);
    let n = st.store.reinforce(&ns, &b.ids, at).await?;
    Ok(Json(json!({ "reinforced": n })))
}

/// A conversation scope as JSON.
#[derive(Deserialize, Default)]
struct ScopeBody {
    user: Option<String>,
    session: Option<String>,
    task: Option<String>,
    agent: Option<String>,
}

impl ScopeBody {
    fn scope(self) -> Scope {
        Scope {
            user: self.user,
            session: self.session,
            task: self.task,
            agent: self.agent,
        }
    }
}

#[derive(Deserialize)]
struct AppendBody {
    scope: ScopeBody,
    messages: Vec<Value>,
}

async fn append(State(st): State<AppState>, Ns(ns): Ns, body: Bytes) -> ApiResult<Json<Value>> {
    let b: AppendBody = parse(&body)?;
    let mut messages = Vec::with_capacity(b.messages.len());
    for m in b.messages {
        messages.push(item_from_value(m, &ns, None)?);
    }
    let stm = ShortTermMemory::new(st.store.clone(), &ns);
    let stored = stm.append_many(&b.scope.scope(), messages).await?;
    Ok(Json(json!({ "messages": stored })))
}

#[derive(Deserialize)]
struct WindowBody {
    scope: ScopeBody,
    #[serde(default)]
    max_rounds: usize,
    #[serde(default)]
    max_tokens: Option<usize>,
}

async fn window(State(st): State<AppState>, Ns(ns): Ns, body: Bytes) -> ApiResult<Json<Value>> {
    let b: WindowBody = parse(&body)?;
    let mut config = WindowConfig::new().max_rounds(b.max_rounds);
    if let Some(t) = b.max_tokens {
        config = config.max_tokens(t);
    }
    let stm = ShortTermMemory::new(st.store.clone(), &ns);
    let w = stm.window(&b.scope.scope(), &config).await?;
    Ok(Json(json!({
        "messages": w.messages,
        "rounds_total": w.rounds_total,
        "rounds_kept": w.rounds_kept,
        "tokens": w.tokens,
        "over_budget": w.over_budget,
    })))
}

#[derive(Deserialize)]
struct RememberBody {
    scope: ScopeBody,
    #[serde(rename = "type")]
    extraction: String,
    content: String,
    subject: Option<String>,
    predicate: Option<String>,
    object: Option<String>,
    importance: Option<f32>,
    confidence: Option<f32>,
    #[serde(default)]
    tags: Vec<String>,
}

async fn remember(State(st): State<AppState>, Ns(ns): Ns, body: Bytes) -> ApiResult<Json<Value>> {
    let b: RememberBody = parse(&body)?;
    let extraction = ExtractionType::parse(&b.extraction).ok_or_else(|| {
        ApiError::invalid(
            "type",
            format!(
                "is {:?}; must be user_profile, agent_experience or facts",
                b.extraction
            ),
        )
    })?;
    let mut memory = NewMemory::new(extraction, b.content);
    if let (Some(s), Some(p), Some(o)) = (b.subject, b.predicate, b.object) {
        memory = memory.with_triple(Triple::new(s, p, o));
    }
    if let Some(i) = b.importance {
        memory = memory.with_importance(i);
    }
    if let Some(c) = b.confidence {
        memory = memory.with_confidence(c);
    }
    for t in b.tags {
        memory = memory.with_tag(t);
    }
    let ltm = LongTermMemory::new(st.store.clone(), &ns);
    let outcome = ltm.add(&b.scope.scope(), memory).await?;
    let (what, item, replaced) = match &outcome {
        AddOutcome::Added(i) => ("added", i, None),
        AddOutcome::Duplicate(i) => ("duplicate", i, None),
        AddOutcome::Confirmed(i) => ("confirmed", i, None),
        AddOutcome::Superseded { new, old } => ("superseded", new.as_ref(), Some(old.as_ref())),
    };
    Ok(Json(
        json!({ "outcome": what, "item": item, "replaced": replaced }),
    ))
}

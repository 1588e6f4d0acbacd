//! AMS long-term memory: create (overwrite by id, dedup by hash), get, edit, delete, search
//! with AMS filters, and forget.
//!
//! A memory record is one item in the memlayer namespace named by its AMS namespace
//! (`default` when none). Its text is the content, its memory type the kind (`semantic` is a
//! fact, `episodic` and `message` are custom kinds), topics and entities are tags
//! (`topic:...`, `entity:...`), `last_accessed` is the item's access time, and the remaining
//! AMS fields (`memory_hash`, `event_date`, `extracted_from`, `discrete_memory_extracted`,
//! `persisted_at`) are metadata. Ids are unique across the store (the contract's rule), so a
//! record is found by id alone by looking through the namespaces the caller may see.

use std::collections::{BTreeSet, HashMap};

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use memlayer::{
    ErrorKind, FieldMatch, Filter, Kind, MAX_LIMIT, MAX_OFFSET, MemoryItem, MemoryStoreExt,
    SearchMode, SearchRequest, Tier, Timestamp,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{
    detail, from_api, from_store, hex_digest, invalid, namespace_of, parse_time, visible_namespaces,
};
use crate::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/long-term-memory/", post(create).delete(delete_many))
        .route("/v1/long-term-memory", axum::routing::delete(delete_many))
        .route("/v1/long-term-memory/search", post(search))
        .route("/v1/long-term-memory/forget", post(forget))
        .route("/v1/long-term-memory/{id}", get(get_one).patch(edit))
}

const TOPIC: &str = "topic:";
const ENTITY: &str = "entity:";
/// Candidates read per namespace for one search: `total` counts matches among them.
const CANDIDATES: usize = 1000;

/// The kinds an AMS memory type is stored as.
fn kinds_of(memory_type: &str) -> Option<Vec<Kind>> {
    match memory_type {
        "semantic" => Some(vec![
            Kind::Fact,
            Kind::Custom("user_profile".into()),
            Kind::Custom("agent_experience".into()),
        ]),
        "episodic" => Some(vec![Kind::Custom("episodic".into())]),
        "message" => Some(vec![Kind::Custom("message".into())]),
        _ => None,
    }
}

/// Every kind AMS long-term memory sees (memlayer's own long-term facts included).
fn long_term_kinds() -> Vec<Kind> {
    ["semantic", "episodic", "message"]
        .iter()
        .filter_map(|t| kinds_of(t))
        .flatten()
        .collect()
}

/// The AMS memory type of an item, `None` for items that are not long-term memory.
fn memory_type_of(kind: &Kind) -> Option<&'static str> {
    ["semantic", "episodic", "message"]
        .into_iter()
        .find(|t| kinds_of(t).is_some_and(|ks| ks.contains(kind)))
}

/// The set of one optional value.
fn one(v: Option<&str>) -> std::option::IntoIter<&str> {
    v.into_iter()
}

/// AMS's content hash: text, user and session, so the same text of two users is two memories.
fn memory_hash(text: &str, user: Option<&str>, session: Option<&str>) -> String {
    hex_digest(
        &json!({"text": text, "user_id": user.unwrap_or(""), "session_id": session.unwrap_or("")})
            .to_string(),
    )
}

fn tags_with<'a>(item: &'a MemoryItem, prefix: &'a str) -> impl Iterator<Item = &'a str> + Clone {
    item.tags.iter().filter_map(move |t| t.strip_prefix(prefix))
}

/// The AMS record of an item.
pub(super) fn record_of(item: &MemoryItem) -> Value {
    let extra = &item.metadata.extra;
    let hash = extra
        .get("memory_hash")
        .and_then(Value::as_str)
        .map_or_else(
            || {
                memory_hash(
                    &item.content,
                    item.metadata.user_id.as_deref(),
                    item.metadata.session_id.as_deref(),
                )
            },
            str::to_owned,
        );
    json!({
        "id": item.id,
        "text": item.content,
        "session_id": item.metadata.session_id,
        "user_id": item.metadata.user_id,
        "namespace": item.namespace,
        "last_accessed": item.last_accessed_at.unwrap_or(item.created_at),
        "created_at": item.created_at,
        "updated_at": item.updated_at,
        "topics": tags_with(item, TOPIC).collect::<Vec<_>>(),
        "entities": tags_with(item, ENTITY).collect::<Vec<_>>(),
        "memory_hash": hash,
        "discrete_memory_extracted": extra.get("discrete_memory_extracted").cloned().unwrap_or(json!("f")),
        "memory_type": memory_type_of(&item.kind).unwrap_or("semantic"),
        "persisted_at": extra.get("persisted_at").cloned().unwrap_or(json!(item.updated_at)),
        "extracted_from": extra.get("extracted_from").cloned().unwrap_or(Value::Null),
        "event_date": extra.get("event_date").cloned().unwrap_or(Value::Null),
    })
}

/// Reads the optional string `key` of a record.
fn opt_str(obj: &Map<String, Value>, key: &str, at: &str) -> Result<Option<String>, Response> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(&format!("{at}{key}"), "expected a string")),
    }
}

fn opt_list(obj: &Map<String, Value>, key: &str, at: &str) -> Result<Vec<String>, Response> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(xs)) => xs
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| invalid(&format!("{at}{key}"), "expected a list of strings"))
            })
            .collect(),
        Some(_) => Err(invalid(&format!("{at}{key}"), "expected a list of strings")),
    }
}

fn opt_time(obj: &Map<String, Value>, key: &str, at: &str) -> Result<Option<Timestamp>, Response> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parse_time(v)
            .map(Some)
            .ok_or_else(|| invalid(&format!("{at}{key}"), "expected an ISO 8601 datetime")),
    }
}

/// An AMS memory record parsed and checked; `at` prefixes field names in errors.
struct Record {
    id: Option<String>,
    text: String,
    namespace: String,
    user_id: Option<String>,
    session_id: Option<String>,
    topics: Vec<String>,
    entities: Vec<String>,
    memory_type: String,
    created_at: Option<Timestamp>,
    last_accessed: Option<Timestamp>,
    event_date: Option<Timestamp>,
    extracted_from: Vec<String>,
    discrete_memory_extracted: Option<String>,
}

impl Record {
    fn parse(value: &Value, at: &str) -> Result<Record, Response> {
        let obj = value
            .as_object()
            .ok_or_else(|| invalid(at.trim_end_matches('.'), "expected an object"))?;
        let text = opt_str(obj, "text", at)?
            .ok_or_else(|| invalid(&format!("{at}text"), "is required"))?;
        let memory_type = opt_str(obj, "memory_type", at)?.unwrap_or_else(|| "message".into());
        if kinds_of(&memory_type).is_none() {
            return Err(invalid(
                &format!("{at}memory_type"),
                format!("is {memory_type:?}; must be semantic, episodic or message"),
            ));
        }
        let discrete = opt_str(obj, "discrete_memory_extracted", at)?;
        if discrete.as_deref().is_some_and(|d| d != "t" && d != "f") {
            return Err(invalid(
                &format!("{at}discrete_memory_extracted"),
                "must be \"t\" or \"f\"",
            ));
        }
        Ok(Record {
            id: opt_str(obj, "id", at)?.filter(|s| !s.is_empty()),
            text,
            namespace: namespace_of(opt_str(obj, "namespace", at)?.as_deref()),
            user_id: opt_str(obj, "user_id", at)?,
            session_id: opt_str(obj, "session_id", at)?,
            topics: opt_list(obj, "topics", at)?,
            entities: opt_list(obj, "entities", at)?,
            memory_type,
            created_at: opt_time(obj, "created_at", at)?,
            last_accessed: opt_time(obj, "last_accessed", at)?,
            event_date: opt_time(obj, "event_date", at)?,
            extracted_from: opt_list(obj, "extracted_from", at)?,
            discrete_memory_extracted: discrete,
        })
    }

    fn hash(&self) -> String {
        memory_hash(
            &self.text,
            self.user_id.as_deref(),
            self.session_id.as_deref(),
        )
    }

    /// The item this record is stored as.
    fn item(&self, now: Timestamp) -> MemoryItem {
        let kind = kinds_of(&self.memory_type)
            .and_then(|ks| ks.into_iter().next())
            .unwrap_or(Kind::Fact);
        let mut item = MemoryItem::new(&self.namespace, kind, &self.text)
            .with_tier(Tier::Semantic)
            .with_extra("memory_hash", self.hash())
            .with_extra(
                "discrete_memory_extracted",
                self.discrete_memory_extracted.as_deref().unwrap_or("f"),
            )
            .with_extra("persisted_at", now.to_rfc3339());
        if let Some(id) = &self.id {
            item = item.with_id(id);
        }
        if let Some(u) = &self.user_id {
            item = item.with_user(u);
        }
        if let Some(s) = &self.session_id {
            item = item.with_session(s);
        }
        for t in &self.topics {
            item = item.with_tag(format!("{TOPIC}{t}"));
        }
        for e in &self.entities {
            item = item.with_tag(format!("{ENTITY}{e}"));
        }
        if let Some(c) = self.created_at {
            item = item.with_created_at(c);
        }
        item.last_accessed_at = Some(self.last_accessed.unwrap_or(now));
        if let Some(d) = self.event_date {
            item = item.with_extra("event_date", d.to_rfc3339());
        }
        if !self.extracted_from.is_empty() {
            item = item.with_extra("extracted_from", json!(self.extracted_from));
        }
        item
    }
}

/// Finds a long-term memory by id among the namespaces the caller may see.
async fn find(
    st: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> Result<Option<MemoryItem>, Response> {
    for ns in visible_namespaces(st, headers).await? {
        match st.store.get(&ns, id).await {
            Ok(item) if memory_type_of(&item.kind).is_some() && !item.deleted => {
                return Ok(Some(item));
            }
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(from_store(e)),
        }
    }
    Ok(None)
}

/// Stores records: validates and checks every namespace first (so a refusal touches nothing),
/// moves an id that lives in another namespace, and with `deduplicate` skips a record whose
/// hash a live memory of its namespace already has. Returns the ids stored.
async fn store_records(
    st: &AppState,
    headers: &HeaderMap,
    records: Vec<Record>,
    deduplicate: bool,
) -> Result<Vec<String>, Response> {
    for r in &records {
        st.config
            .auth
            .check(headers, &r.namespace)
            .map_err(from_api)?;
    }
    let now = Timestamp::now();
    let mut items = Vec::with_capacity(records.len());
    let mut moved_from = Vec::new();
    let mut seen_hashes: HashMap<(String, String), ()> = HashMap::new();
    for r in records {
        let existing = match &r.id {
            Some(id) => find(st, headers, id).await?,
            None => None,
        };
        if let Some(old) = &existing
            && old.namespace != r.namespace
        {
            // Overwrite by id into another namespace: the record moves, its old copy removed
            // only once the new one is stored.
            moved_from.push((old.namespace.clone(), old.id.clone()));
        }
        if deduplicate && existing.is_none() {
            let mut twin = Filter::new().meta_eq("memory_hash", r.hash());
            twin.kinds = long_term_kinds();
            let key = (r.namespace.clone(), r.hash());
            if seen_hashes.insert(key, ()).is_some() {
                continue;
            }
            let twins = st
                .store
                .search(
                    &r.namespace,
                    &SearchRequest::recent().with_filter(twin).with_limit(1),
                )
                .await
                .map_err(from_store)?;
            if !twins.hits.is_empty() {
                continue;
            }
        }
        items.push(r.item(now));
    }
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let stored = st.store.upsert_many(items).await.map_err(from_store)?;
    remove_moved(st, moved_from).await?;
    Ok(stored.into_iter().map(|i| i.id).collect())
}

/// Removes the old copies of records that moved namespace, after their new copies were
/// stored: a failure between the two leaves a record twice, never nowhere, and a retry of the
/// same call finishes the move.
async fn remove_moved(st: &AppState, moved_from: Vec<(String, String)>) -> Result<(), Response> {
    for (namespace, id) in moved_from {
        match st.store.delete(&namespace, &id).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(from_store(e)),
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct CreateBody {
    memories: Vec<Value>,
    #[serde(default = "yes")]
    deduplicate: bool,
}

fn yes() -> bool {
    true
}

fn body_of<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| invalid("body", e))
}

async fn create(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let result = async {
        let b: CreateBody = body_of(&body)?;
        let records = b
            .memories
            .iter()
            .enumerate()
            .map(|(i, m)| Record::parse(m, &format!("memories[{i}].")))
            .collect::<Result<Vec<_>, _>>()?;
        store_records(&st, &headers, records, b.deduplicate).await
    }
    .await;
    match result {
        Ok(_) => Json(json!({ "status": "ok" })).into_response(),
        Err(r) => r,
    }
}

async fn get_one(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match find(&st, &headers, &id).await {
        Ok(Some(item)) => Json(record_of(&item)).into_response(),
        Ok(None) => detail(StatusCode::NOT_FOUND, format!("memory {id} not found")),
        Err(r) => r,
    }
}

/// PATCH: the fields given replace the record's; the hash follows the text, user and session.
async fn edit(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let result = async {
        let updates: Map<String, Value> = body_of(&body)?;
        const EDITABLE: [&str; 9] = [
            "text",
            "topics",
            "entities",
            "memory_type",
            "namespace",
            "user_id",
            "session_id",
            "event_date",
            "discrete_memory_extracted",
        ];
        if let Some(k) = updates.keys().find(|k| !EDITABLE.contains(&k.as_str())) {
            return Err(invalid(
                k,
                format!("cannot be edited; editable fields: {}", EDITABLE.join(", ")),
            ));
        }
        let Some(old) = find(&st, &headers, &id).await? else {
            return Err(detail(
                StatusCode::NOT_FOUND,
                format!("memory {id} not found"),
            ));
        };
        let mut merged = record_of(&old);
        if let Some(obj) = merged.as_object_mut() {
            for (k, v) in updates {
                obj.insert(k, v);
            }
        }
        let record = Record::parse(&merged, "")?;
        st.config
            .auth
            .check(&headers, &record.namespace)
            .map_err(from_api)?;
        let mut item = record.item(Timestamp::now());
        // An edit keeps when the memory was made and last used.
        item.created_at = old.created_at;
        item.last_accessed_at = old.last_accessed_at;
        // The edit is stored first; a move's old copy goes only after it (see `remove_moved`).
        let stored = st.store.upsert(item).await.map_err(from_store)?;
        if record.namespace != old.namespace {
            remove_moved(&st, vec![(old.namespace.clone(), old.id.clone())]).await?;
        }
        Ok(stored)
    }
    .await;
    match result {
        Ok(item) => Json(record_of(&item)).into_response(),
        Err(r) => r,
    }
}

/// `DELETE /v1/long-term-memory?memory_ids=a&memory_ids=b`.
async fn delete_many(
    State(st): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let ids: Vec<String> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "memory_ids")
        .map(|(_, v)| v.into_owned())
        .collect();
    if ids.is_empty() {
        return invalid("memory_ids", "give at least one id");
    }
    let mut deleted = 0u64;
    for id in &ids {
        let found = match find(&st, &headers, id).await {
            Ok(f) => f,
            Err(r) => return r,
        };
        if let Some(item) = found {
            if let Err(e) = st.config.auth.check(&headers, &item.namespace) {
                return from_api(e);
            }
            match st.store.delete(&item.namespace, &item.id).await {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return from_store(e),
            }
        }
    }
    Json(json!({ "status": format!("ok, deleted {deleted} memories") })).into_response()
}

/// One AMS field filter. Every spelling is a condition on the field's set of values (one value
/// for session, user, namespace and memory type; a list for topics and entities):
/// `eq` contains, `ne`/`not_eq` does not contain, `any`/`in_` meets, `all` includes,
/// `none`/`not_in` misses.
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct Match {
    eq: Option<String>,
    #[serde(alias = "not_eq")]
    ne: Option<String>,
    #[serde(alias = "in_")]
    any: Option<Vec<String>>,
    all: Option<Vec<String>>,
    #[serde(alias = "not_in")]
    none: Option<Vec<String>>,
}

impl Match {
    fn accepts<'a>(&self, values: impl Iterator<Item = &'a str> + Clone) -> bool {
        let has = |x: &str| values.clone().any(|v| v == x);
        self.eq.as_deref().is_none_or(has)
            && self.ne.as_deref().is_none_or(|x| !has(x))
            && self.any.as_ref().is_none_or(|xs| xs.iter().any(|x| has(x)))
            && self.all.as_ref().is_none_or(|xs| xs.iter().all(|x| has(x)))
            && self
                .none
                .as_ref()
                .is_none_or(|xs| !xs.iter().any(|x| has(x)))
    }

    /// The single value this filter pins, if it pins one.
    fn pinned(&self) -> Option<&str> {
        match (&self.eq, &self.any) {
            (Some(x), _) => Some(x),
            (None, Some(xs)) if xs.len() == 1 => xs.first().map(String::as_str),
            _ => None,
        }
    }
}

/// A datetime filter: `gt`, `gte`, `lt`, `lte`, `eq`, `ne`, `between: [from, to]`.
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct TimeMatch {
    gt: Option<Value>,
    gte: Option<Value>,
    lt: Option<Value>,
    lte: Option<Value>,
    eq: Option<Value>,
    ne: Option<Value>,
    between: Option<Vec<Value>>,
}

/// A datetime filter with its instants parsed.
#[derive(Default, Clone, Debug)]
struct Times {
    gt: Option<Timestamp>,
    gte: Option<Timestamp>,
    lt: Option<Timestamp>,
    lte: Option<Timestamp>,
    eq: Option<Timestamp>,
    ne: Option<Timestamp>,
}

impl TimeMatch {
    fn parse(&self, field: &str) -> Result<Times, Response> {
        let one = |v: &Option<Value>, op: &str| -> Result<Option<Timestamp>, Response> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(v) => parse_time(v).map(Some).ok_or_else(|| {
                    invalid(&format!("{field}.{op}"), "expected an ISO 8601 datetime")
                }),
            }
        };
        let mut t = Times {
            gt: one(&self.gt, "gt")?,
            gte: one(&self.gte, "gte")?,
            lt: one(&self.lt, "lt")?,
            lte: one(&self.lte, "lte")?,
            eq: one(&self.eq, "eq")?,
            ne: one(&self.ne, "ne")?,
        };
        if let Some(b) = &self.between {
            let [from, to] = b.as_slice() else {
                return Err(invalid(&format!("{field}.between"), "expected [from, to]"));
            };
            t.gte = one(&Some(from.clone()), "between")?;
            t.lte = one(&Some(to.clone()), "between")?;
        }
        Ok(t)
    }
}

impl Times {
    fn accepts(&self, t: Option<Timestamp>) -> bool {
        let Some(t) = t else {
            return self.gt.is_none()
                && self.gte.is_none()
                && self.lt.is_none()
                && self.lte.is_none()
                && self.eq.is_none();
        };
        self.gt.is_none_or(|x| t > x)
            && self.gte.is_none_or(|x| t >= x)
            && self.lt.is_none_or(|x| t < x)
            && self.lte.is_none_or(|x| t <= x)
            && self.eq.is_none_or(|x| t == x)
            && self.ne.is_none_or(|x| t != x)
    }

    /// The inclusive range that holds every accepted instant (for the store filter).
    fn range(&self) -> (Option<Timestamp>, Option<Timestamp>) {
        let from = self.eq.or(self.gte).or(self.gt);
        let to = self.eq.or(self.lte).or(self.lt);
        (from, to)
    }
}

#[derive(Deserialize, Default)]
pub(super) struct SearchBody {
    #[serde(default)]
    pub(super) text: String,
    pub(super) session_id: Option<Match>,
    pub(super) namespace: Option<Match>,
    user_id: Option<Match>,
    topics: Option<Match>,
    entities: Option<Match>,
    memory_type: Option<Match>,
    id: Option<Match>,
    created_at: Option<TimeMatch>,
    last_accessed: Option<TimeMatch>,
    event_date: Option<TimeMatch>,
    distance_threshold: Option<f64>,
    #[serde(default = "ten")]
    pub(super) limit: usize,
    #[serde(default)]
    offset: usize,
    search_mode: Option<String>,
    recency_boost: Option<bool>,
    recency_semantic_weight: Option<f64>,
    recency_recency_weight: Option<f64>,
    recency_freshness_weight: Option<f64>,
    recency_novelty_weight: Option<f64>,
    recency_half_life_last_access_days: Option<f64>,
    recency_half_life_created_days: Option<f64>,
    #[allow(dead_code)] // accepted: memlayer re-ranks in the server on every backend
    server_side_recency: Option<bool>,
}

fn ten() -> usize {
    10
}

/// AMS's recency re-ranking: similarity blended with freshness (since last access) and
/// novelty (since creation), each an exponential decay with a half-life in days.
struct Recency {
    semantic: f64,
    recency: f64,
    freshness: f64,
    novelty: f64,
    half_life_access: f64,
    half_life_created: f64,
}

impl Recency {
    fn of(b: &SearchBody) -> Result<Option<Recency>, Response> {
        if b.recency_boost != Some(true) {
            return Ok(None);
        }
        let r = Recency {
            semantic: b.recency_semantic_weight.unwrap_or(0.8),
            recency: b.recency_recency_weight.unwrap_or(0.2),
            freshness: b.recency_freshness_weight.unwrap_or(0.6),
            novelty: b.recency_novelty_weight.unwrap_or(0.4),
            half_life_access: b.recency_half_life_last_access_days.unwrap_or(7.0),
            half_life_created: b.recency_half_life_created_days.unwrap_or(30.0),
        };
        for (field, v) in [
            ("recency_half_life_last_access_days", r.half_life_access),
            ("recency_half_life_created_days", r.half_life_created),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(invalid(field, "must be a positive number of days"));
            }
        }
        Ok(Some(r))
    }

    fn score(&self, dist: f64, item: &MemoryItem, now: Timestamp) -> f64 {
        let days = |t: Timestamp| now.duration_since(t).as_secs_f64() / 86_400.0;
        let accessed = item.last_accessed_at.unwrap_or(item.created_at);
        let freshness = 0.5f64.powf(days(accessed) / self.half_life_access);
        let novelty = 0.5f64.powf(days(item.created_at) / self.half_life_created);
        self.semantic * (1.0 - dist)
            + self.recency * (self.freshness * freshness + self.novelty * novelty)
    }
}

/// A search hit with AMS's distance (0 is best).
pub(super) struct Found {
    pub(super) item: MemoryItem,
    pub(super) dist: f64,
    rank: f64,
}

/// The page of a search, the number of matches and the next offset.
pub(super) struct Results {
    pub(super) page: Vec<Found>,
    pub(super) total: usize,
    pub(super) next_offset: Option<usize>,
}

/// Runs an AMS search over the namespaces its filter names (all the caller may see when none).
pub(super) async fn run_search(
    st: &AppState,
    headers: &HeaderMap,
    b: &SearchBody,
) -> Result<Results, Response> {
    if b.limit == 0 || b.limit > MAX_LIMIT {
        return Err(invalid("limit", format!("must be 1..={MAX_LIMIT}")));
    }
    if b.offset > MAX_OFFSET {
        return Err(invalid("offset", format!("must be at most {MAX_OFFSET}")));
    }
    if let Some(d) = b.distance_threshold
        && !(d.is_finite() && d >= 0.0)
    {
        return Err(invalid("distance_threshold", "must be a number >= 0"));
    }
    let mode = match b.search_mode.as_deref().unwrap_or("semantic") {
        _ if b.text.trim().is_empty() => SearchMode::Recent,
        "semantic" | "vector" => SearchMode::Vector,
        "keyword" | "fulltext" => SearchMode::Keyword,
        "hybrid" => SearchMode::Hybrid,
        other => {
            return Err(invalid(
                "search_mode",
                format!("is {other:?}; must be semantic, keyword or hybrid"),
            ));
        }
    };
    let recency = Recency::of(b)?;
    let created = b
        .created_at
        .as_ref()
        .map(|t| t.parse("created_at"))
        .transpose()?;
    let accessed = b
        .last_accessed
        .as_ref()
        .map(|t| t.parse("last_accessed"))
        .transpose()?;
    let event = b
        .event_date
        .as_ref()
        .map(|t| t.parse("event_date"))
        .transpose()?;

    // The namespaces: those the filter pins (each must be allowed), else all visible ones.
    let pinned: Option<Vec<String>> = b
        .namespace
        .as_ref()
        .and_then(|m| m.eq.clone().map(|x| vec![x]).or_else(|| m.any.clone()));
    let namespaces = match pinned {
        Some(list) => {
            for ns in &list {
                st.config.auth.check(headers, ns).map_err(from_api)?;
            }
            list
        }
        None => visible_namespaces(st, headers).await?,
    };

    // The store filter holds a superset of the matches; the AMS filter then decides exactly.
    let mut filter = Filter::new();
    filter.kinds = match b.memory_type.as_ref().and_then(Match::pinned) {
        Some(t) => kinds_of(t).unwrap_or_default(),
        None => long_term_kinds(),
    };
    if let Some(u) = b.user_id.as_ref().and_then(Match::pinned) {
        filter.user = FieldMatch::Is(u.to_owned());
    }
    if let Some(s) = b.session_id.as_ref().and_then(Match::pinned) {
        filter.session = FieldMatch::Is(s.to_owned());
    }
    for t in b
        .topics
        .iter()
        .flat_map(|m| m.all.iter().flatten().chain(&m.eq))
    {
        filter = filter.tag(format!("{TOPIC}{t}"));
    }
    for e in b
        .entities
        .iter()
        .flat_map(|m| m.all.iter().flatten().chain(&m.eq))
    {
        filter = filter.tag(format!("{ENTITY}{e}"));
    }
    if let Some(t) = &created {
        let (from, to) = t.range();
        filter = filter.created_between(from, to);
    }
    if let Some(t) = &accessed {
        let (from, to) = t.range();
        filter = filter.accessed_between(from, to);
    }
    let accepts = |item: &MemoryItem| {
        let type_of = memory_type_of(&item.kind);
        b.session_id
            .as_ref()
            .is_none_or(|m| m.accepts(one(item.metadata.session_id.as_deref())))
            && b.namespace
                .as_ref()
                .is_none_or(|m| m.accepts(one(Some(item.namespace.as_str()))))
            && b.user_id
                .as_ref()
                .is_none_or(|m| m.accepts(one(item.metadata.user_id.as_deref())))
            && b.memory_type
                .as_ref()
                .is_none_or(|m| m.accepts(one(type_of)))
            && b.id
                .as_ref()
                .is_none_or(|m| m.accepts(one(Some(item.id.as_str()))))
            && b.topics
                .as_ref()
                .is_none_or(|m| m.accepts(tags_with(item, TOPIC)))
            && b.entities
                .as_ref()
                .is_none_or(|m| m.accepts(tags_with(item, ENTITY)))
            && created
                .as_ref()
                .is_none_or(|t| t.accepts(Some(item.created_at)))
            && accessed
                .as_ref()
                .is_none_or(|t| t.accepts(Some(item.last_accessed_at.unwrap_or(item.created_at))))
            && event.as_ref().is_none_or(|t| {
                t.accepts(item.metadata.extra.get("event_date").and_then(parse_time))
            })
    };

    let candidates = CANDIDATES.max(b.offset + b.limit).min(MAX_LIMIT);
    let now = Timestamp::now();
    let mut found = Vec::new();
    for ns in &namespaces {
        let mut request = SearchRequest::new(mode)
            .with_filter(filter.clone())
            .with_limit(candidates);
        if mode != SearchMode::Recent {
            request = request.with_query(b.text.clone());
        }
        let results = st.store.search(ns, &request).await.map_err(from_store)?;
        for hit in results.hits {
            if !accepts(&hit.item) {
                continue;
            }
            let dist = match mode {
                SearchMode::Recent => 0.0,
                SearchMode::Vector => 1.0 - f64::from(hit.vector_score.unwrap_or(hit.score)),
                // BM25 is unbounded: 1 / (1 + score) keeps the order and stays in (0, 1].
                SearchMode::Keyword => 1.0 / (1.0 + f64::from(hit.score.max(0.0))),
                _ => 1.0 - f64::from(hit.score),
            };
            if b.distance_threshold.is_some_and(|d| dist > d) {
                continue;
            }
            let rank = match &recency {
                Some(r) => r.score(dist, &hit.item, now),
                None => -dist,
            };
            found.push(Found {
                item: hit.item,
                dist,
                rank,
            });
        }
    }
    found.sort_by(|a, b| {
        b.rank
            .total_cmp(&a.rank)
            .then_with(|| b.item.created_at.cmp(&a.item.created_at))
            .then_with(|| a.item.id.cmp(&b.item.id))
    });
    let total = found.len();
    let page: Vec<Found> = found.into_iter().skip(b.offset).take(b.limit).collect();
    let end = b.offset + page.len();
    // Recall counts as access, as in AMS: the hits' last_accessed moves to now.
    let mut by_ns: HashMap<&str, Vec<String>> = HashMap::new();
    for f in &page {
        by_ns
            .entry(f.item.namespace.as_str())
            .or_default()
            .push(f.item.id.clone());
    }
    for (ns, ids) in by_ns {
        st.store
            .reinforce(ns, &ids, now)
            .await
            .map_err(from_store)?;
    }
    Ok(Results {
        total,
        next_offset: (end < total).then_some(end),
        page,
    })
}

async fn search(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let b: SearchBody = match body_of(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    match run_search(&st, &headers, &b).await {
        Ok(results) => {
            let memories: Vec<Value> = results
                .page
                .iter()
                .map(|f| {
                    let mut r = record_of(&f.item);
                    r["dist"] = json!(f.dist);
                    r
                })
                .collect();
            Json(json!({
                "memories": memories,
                "total": results.total,
                "next_offset": results.next_offset,
            }))
            .into_response()
        }
        Err(r) => r,
    }
}

#[derive(Deserialize, Default)]
struct ForgetQuery {
    namespace: Option<String>,
    user_id: Option<String>,
    session_id: Option<String>,
    limit: Option<usize>,
    #[serde(default)]
    dry_run: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ForgetPolicy {
    max_age_days: Option<f64>,
    max_inactive_days: Option<f64>,
    budget: Option<usize>,
    memory_type_allowlist: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct ForgetBody {
    #[serde(default)]
    policy: ForgetPolicy,
    #[serde(default)]
    pinned_ids: Vec<String>,
}

/// A deterministic forgetting pass. Over the memories in scope (newest `limit` when given),
/// minus pinned ones and those outside the type allowlist: a memory goes when it is older than
/// `max_age_days` and idle longer than `max_inactive_days` (either alone when only one is
/// given); then, if more than `budget` remain, the least recently accessed go until `budget`
/// remain.
async fn forget(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ForgetQuery>,
    body: Bytes,
) -> Response {
    let result = async {
        let b: ForgetBody = body_of(&body)?;
        let p = &b.policy;
        for (field, v) in [
            ("policy.max_age_days", p.max_age_days),
            ("policy.max_inactive_days", p.max_inactive_days),
        ] {
            if v.is_some_and(|d| !(d.is_finite() && d >= 0.0)) {
                return Err(invalid(field, "must be a number of days >= 0"));
            }
        }
        if let Some(types) = &p.memory_type_allowlist
            && let Some(bad) = types.iter().find(|t| kinds_of(t).is_none())
        {
            return Err(invalid(
                "policy.memory_type_allowlist",
                format!("{bad:?} is not semantic, episodic or message"),
            ));
        }
        let namespace = namespace_of(q.namespace.as_deref());
        st.config
            .auth
            .check(&headers, &namespace)
            .map_err(from_api)?;
        let mut filter = Filter::new();
        filter.kinds = long_term_kinds();
        if let Some(u) = &q.user_id {
            filter.user = FieldMatch::Is(u.clone());
        }
        if let Some(s) = &q.session_id {
            filter.session = FieldMatch::Is(s.clone());
        }
        let mut items = st
            .store
            .list_all(&namespace, filter)
            .await
            .map_err(from_store)?;
        items.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        if let Some(n) = q.limit {
            items.truncate(n);
        }
        let scanned = items.len();
        let pinned: BTreeSet<&str> = b.pinned_ids.iter().map(String::as_str).collect();
        let now = Timestamp::now();
        let days = |t: Timestamp| now.duration_since(t).as_secs_f64() / 86_400.0;
        let accessed = |i: &MemoryItem| i.last_accessed_at.unwrap_or(i.created_at);
        let mut candidates: Vec<&MemoryItem> = items
            .iter()
            .filter(|i| !pinned.contains(i.id.as_str()))
            .filter(|i| {
                p.memory_type_allowlist.as_ref().is_none_or(|types| {
                    memory_type_of(&i.kind).is_some_and(|t| types.iter().any(|x| x == t))
                })
            })
            .collect();
        let mut doomed: Vec<&MemoryItem> = Vec::new();
        candidates.retain(|i| {
            let old = p.max_age_days.map(|d| days(i.created_at) > d);
            let idle = p.max_inactive_days.map(|d| days(accessed(i)) > d);
            let go = match (old, idle) {
                (Some(o), Some(d)) => o && d,
                (Some(o), None) => o,
                (None, Some(d)) => d,
                (None, None) => false,
            };
            if go {
                doomed.push(i);
            }
            !go
        });
        if let Some(budget) = p.budget
            && candidates.len() > budget
        {
            candidates.sort_by(|a, b| accessed(a).cmp(&accessed(b)).then(a.id.cmp(&b.id)));
            let over = candidates.len() - budget;
            doomed.extend(candidates.drain(..over));
        }
        let mut deleted_ids = Vec::with_capacity(doomed.len());
        for i in doomed {
            if !q.dry_run {
                match st.store.delete(&i.namespace, &i.id).await {
                    Ok(()) => {}
                    // Gone meanwhile: not ours to count.
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(from_store(e)),
                }
            }
            deleted_ids.push(i.id.clone());
        }
        Ok(json!({
            "scanned": scanned,
            "deleted": deleted_ids.len(),
            "deleted_ids": deleted_ids,
            "dry_run": q.dry_run,
        }))
    }
    .await;
    match result {
        Ok(v) => Json(v).into_response(),
        Err(r) => r,
    }
}

/// Working-memory memories not yet persisted become long-term memories (AMS promotes them in
/// the background; memlayer does it as the session is written). Each promoted memory gets
/// `persisted_at` in the session document.
pub(super) async fn promote(
    st: &AppState,
    headers: &HeaderMap,
    doc: &mut Value,
) -> Result<(), Response> {
    let namespace = doc.get("namespace").cloned();
    let user = doc.get("user_id").cloned();
    let session = doc.get("session_id").cloned();
    let Some(memories) = doc.get_mut("memories").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    let now = Timestamp::now();
    let mut records = Vec::new();
    let mut promoted = Vec::new();
    for (i, m) in memories.iter_mut().enumerate() {
        let Some(obj) = m.as_object_mut() else {
            return Err(invalid(&format!("memories[{i}]"), "expected an object"));
        };
        if obj.get("persisted_at").is_some_and(|v| !v.is_null()) {
            continue;
        }
        for (key, v) in [
            ("namespace", &namespace),
            ("user_id", &user),
            ("session_id", &session),
        ] {
            if obj.get(key).is_none_or(Value::is_null)
                && let Some(v) = v
            {
                obj.insert(key.into(), v.clone());
            }
        }
        if obj
            .get("id")
            .is_none_or(|v| v.as_str().is_none_or(str::is_empty))
        {
            let seed = format!("{}/{i}/{}", now.as_millis(), Value::Object(obj.clone()));
            obj.insert("id".into(), json!(hex_digest(&seed)[..26].to_owned()));
        }
        records.push(Record::parse(m, &format!("memories[{i}].")));
        promoted.push(i);
    }
    let records = records.into_iter().collect::<Result<Vec<_>, _>>()?;
    store_records(st, headers, records, true).await?;
    for i in promoted {
        if let Some(obj) = memories.get_mut(i).and_then(Value::as_object_mut) {
            obj.insert("persisted_at".into(), json!(now));
        }
    }
    Ok(())
}

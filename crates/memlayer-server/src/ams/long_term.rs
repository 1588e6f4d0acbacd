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

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use memlayer::{ErrorKind, FieldMatch, Filter, MemoryItem, MemoryStoreExt, Timestamp};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::record::{
    Record, find, kinds_of, long_term_kinds, memory_type_of, record_of, remove_moved, store_records,
};
use super::search::search;
use super::{detail, from_api, from_store, hex_digest, invalid, namespace_of};
use crate::AppState;
use crate::keys::Grant;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/long-term-memory/", post(create).delete(delete_many))
        .route("/v1/long-term-memory", axum::routing::delete(delete_many))
        .route("/v1/long-term-memory/search", post(search))
        .route("/v1/long-term-memory/forget", post(forget))
        .route("/v1/long-term-memory/{id}", get(get_one).patch(edit))
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

pub(super) fn body_of<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| invalid("body", e))
}

async fn create(State(st): State<AppState>, grant: Grant, body: Bytes) -> Response {
    let result = async {
        let b: CreateBody = body_of(&body)?;
        let records = b
            .memories
            .iter()
            .enumerate()
            .map(|(i, m)| Record::parse(m, &format!("memories[{i}].")))
            .collect::<Result<Vec<_>, _>>()?;
        store_records(&st, &grant, records, b.deduplicate).await
    }
    .await;
    match result {
        Ok(_) => Json(json!({ "status": "ok" })).into_response(),
        Err(r) => r,
    }
}

async fn get_one(State(st): State<AppState>, grant: Grant, Path(id): Path<String>) -> Response {
    match find(&st, &grant, &id).await {
        Ok(Some(item)) => Json(record_of(&item)).into_response(),
        Ok(None) => detail(StatusCode::NOT_FOUND, format!("memory {id} not found")),
        Err(r) => r,
    }
}

/// PATCH: the fields given replace the record's; the hash follows the text, user and session.
async fn edit(
    State(st): State<AppState>,
    grant: Grant,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let result = async {
        let updates: Map<String, Value> = body_of(&body)?;
        const EDITABLE: [&str; 11] = [
            "text",
            "topics",
            "entities",
            "memory_type",
            "namespace",
            "user_id",
            "session_id",
            "event_date",
            "discrete_memory_extracted",
            "extraction_strategy",
            "metadata",
        ];
        if let Some(k) = updates.keys().find(|k| !EDITABLE.contains(&k.as_str())) {
            return Err(invalid(
                k,
                format!("cannot be edited; editable fields: {}", EDITABLE.join(", ")),
            ));
        }
        let Some(old) = find(&st, &grant, &id).await? else {
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
        grant.check(&record.namespace).map_err(from_api)?;
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
    grant: Grant,
    RawQuery(query): RawQuery,
) -> Response {
    let ids: Vec<String> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "memory_ids")
        .map(|(_, v)| v.into_owned())
        .collect();
    // No ids deletes nothing and says so, as the reference server answers
    // `delete_long_term_memories([])`.
    let mut deleted = 0u64;
    for id in &ids {
        let found = match find(&st, &grant, id).await {
            Ok(f) => f,
            Err(r) => return r,
        };
        if let Some(item) = found {
            if let Err(e) = grant.check(&item.namespace) {
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
    grant: Grant,
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
        grant.check(&namespace).map_err(from_api)?;
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
            "dry_run": q.dry_run}))
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
pub(super) async fn promote(st: &AppState, grant: &Grant, doc: &mut Value) -> Result<(), Response> {
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
    store_records(st, grant, records, true).await?;
    for i in promoted {
        if let Some(obj) = memories.get_mut(i).and_then(Value::as_object_mut) {
            obj.insert("persisted_at".into(), json!(now));
        }
    }
    Ok(())
}

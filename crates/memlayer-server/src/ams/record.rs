//! An AMS memory record as a memlayer item: the mapping of its fields, parsing a record
//! from a request, and storing a batch of records (overwrite by id, dedup by hash).

use std::collections::HashMap;

use axum::response::Response;
use memlayer::{ErrorKind, Filter, Kind, MemoryItem, SearchRequest, Tier, Timestamp};
use serde_json::{Map, Value, json};

use super::{
    from_api, from_store, hex_digest, invalid, namespace_of, parse_time, visible_namespaces,
};
use crate::AppState;
use crate::keys::Grant;

pub(crate) const TOPIC: &str = "topic:";
pub(crate) const ENTITY: &str = "entity:";
/// Candidates read per namespace for one search: `total` counts matches among them.
pub(crate) const CANDIDATES: usize = 1000;

/// The kinds an AMS memory type is stored as.
pub(crate) fn kinds_of(memory_type: &str) -> Option<Vec<Kind>> {
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
pub(crate) fn long_term_kinds() -> Vec<Kind> {
    ["semantic", "episodic", "message"]
        .iter()
        .filter_map(|t| kinds_of(t))
        .flatten()
        .collect()
}

/// The AMS memory type of an item, `None` for items that are not long-term memory.
pub(crate) fn memory_type_of(kind: &Kind) -> Option<&'static str> {
    ["semantic", "episodic", "message"]
        .into_iter()
        .find(|t| kinds_of(t).is_some_and(|ks| ks.contains(kind)))
}

/// The set of one optional value.
pub(crate) fn one(v: Option<&str>) -> std::option::IntoIter<&str> {
    v.into_iter()
}

/// AMS's content hash: text, user and session, so the same text of two users is two memories.
pub(crate) fn memory_hash(text: &str, user: Option<&str>, session: Option<&str>) -> String {
    hex_digest(
        &json!({"text": text, "user_id": user.unwrap_or(""), "session_id": session.unwrap_or("")})
            .to_string(),
    )
}

pub(crate) fn tags_with<'a>(
    item: &'a MemoryItem,
    prefix: &'a str,
) -> impl Iterator<Item = &'a str> + Clone {
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
        "extraction_strategy": extraction_strategy_of(item),
        "metadata": extra.get(METADATA).cloned().unwrap_or(Value::Null)})
}

/// Where a record's free-form `metadata` is kept among the item's own metadata.
const METADATA: &str = "ams_metadata";

/// The strategies AMS extracts long-term memories with.
const STRATEGIES: [&str; 4] = ["discrete", "summary", "preferences", "custom"];

/// The strategy that extracted an item: stored with it, `discrete` (AMS's default) when not.
pub(crate) fn extraction_strategy_of(item: &MemoryItem) -> &str {
    item.metadata
        .extra
        .get("extraction_strategy")
        .and_then(Value::as_str)
        .unwrap_or("discrete")
}

/// A field of a record that does not parse: its path and why. A request answers it as 422;
/// an importer reports it with the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's path, e.g. `memories[2].text`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    fn new(field: &str, message: impl std::fmt::Display) -> Self {
        FieldError {
            field: field.to_owned(),
            message: message.to_string(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl From<FieldError> for Response {
    fn from(e: FieldError) -> Response {
        invalid(&e.field, e.message)
    }
}

/// An Agent Memory Server long-term memory record, as its API returns it, as the item this
/// server stores it as (in the record's namespace, `default` when it names none), for
/// importers: a re-import of the same record is the same item.
///
/// # Errors
/// The first field that does not parse.
pub fn item_of_record(value: &Value, now: Timestamp) -> Result<MemoryItem, FieldError> {
    let record = Record::parse(value, "")?;
    let mut item = record.item(now);
    if record.id.is_none() {
        // No id in the record: derive one from its namespace and content hash, so a
        // re-import replaces rather than duplicates.
        let seed = format!("{}\n{}", record.namespace, record.hash());
        item.id = format!("ams-{}", &hex_digest(&seed)[..32]);
    }
    Ok(item)
}

/// Reads the optional string `key` of a record.
pub(crate) fn opt_str(
    obj: &Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<String>, FieldError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FieldError::new(&format!("{at}{key}"), "expected a string")),
    }
}

pub(crate) fn opt_list(
    obj: &Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Vec<String>, FieldError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(xs)) => xs
            .iter()
            .map(|x| {
                x.as_str().map(str::to_owned).ok_or_else(|| {
                    FieldError::new(&format!("{at}{key}"), "expected a list of strings")
                })
            })
            .collect(),
        Some(_) => Err(FieldError::new(
            &format!("{at}{key}"),
            "expected a list of strings",
        )),
    }
}

pub(crate) fn opt_time(
    obj: &Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<Timestamp>, FieldError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => parse_time(v)
            .map(Some)
            .ok_or_else(|| FieldError::new(&format!("{at}{key}"), "expected an ISO 8601 datetime")),
    }
}

/// An AMS memory record parsed and checked; `at` prefixes field names in errors.
pub(crate) struct Record {
    pub(crate) id: Option<String>,
    pub(crate) text: String,
    pub(crate) namespace: String,
    pub(crate) user_id: Option<String>,
    pub(crate) session_id: Option<String>,
    pub(crate) topics: Vec<String>,
    pub(crate) entities: Vec<String>,
    pub(crate) memory_type: String,
    pub(crate) created_at: Option<Timestamp>,
    pub(crate) last_accessed: Option<Timestamp>,
    pub(crate) event_date: Option<Timestamp>,
    pub(crate) extracted_from: Vec<String>,
    pub(crate) discrete_memory_extracted: Option<String>,
    pub(crate) extraction_strategy: Option<String>,
    pub(crate) metadata: Option<Map<String, Value>>,
}

impl Record {
    pub(crate) fn parse(value: &Value, at: &str) -> Result<Record, FieldError> {
        let obj = value
            .as_object()
            .ok_or_else(|| FieldError::new(at.trim_end_matches('.'), "expected an object"))?;
        let text = opt_str(obj, "text", at)?
            .ok_or_else(|| FieldError::new(&format!("{at}text"), "is required"))?;
        let memory_type = opt_str(obj, "memory_type", at)?.unwrap_or_else(|| "message".into());
        if kinds_of(&memory_type).is_none() {
            return Err(FieldError::new(
                &format!("{at}memory_type"),
                format!("is {memory_type:?}; must be semantic, episodic or message"),
            ));
        }
        let discrete = opt_str(obj, "discrete_memory_extracted", at)?;
        if discrete.as_deref().is_some_and(|d| d != "t" && d != "f") {
            return Err(FieldError::new(
                &format!("{at}discrete_memory_extracted"),
                "must be \"t\" or \"f\"",
            ));
        }
        let extraction_strategy = opt_str(obj, "extraction_strategy", at)?;
        if let Some(s) = extraction_strategy.as_deref()
            && !STRATEGIES.contains(&s)
        {
            return Err(FieldError::new(
                &format!("{at}extraction_strategy"),
                format!("is {s:?}; must be one of {}", STRATEGIES.join(", ")),
            ));
        }
        let metadata = match obj.get("metadata") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m.clone()),
            Some(_) => {
                return Err(FieldError::new(
                    &format!("{at}metadata"),
                    "expected an object",
                ));
            }
        };
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
            extraction_strategy,
            metadata,
        })
    }

    pub(crate) fn hash(&self) -> String {
        memory_hash(
            &self.text,
            self.user_id.as_deref(),
            self.session_id.as_deref(),
        )
    }

    /// The item this record is stored as.
    pub(crate) fn item(&self, now: Timestamp) -> MemoryItem {
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
        if let Some(s) = &self.extraction_strategy {
            item = item.with_extra("extraction_strategy", s.as_str());
        }
        if let Some(m) = &self.metadata {
            item = item.with_extra(METADATA, Value::Object(m.clone()));
        }
        item
    }
}

/// Finds a long-term memory by id among the namespaces the caller may see.
pub(crate) async fn find(
    st: &AppState,
    grant: &Grant,
    id: &str,
) -> Result<Option<MemoryItem>, Response> {
    for ns in visible_namespaces(st, grant).await? {
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
pub(crate) async fn store_records(
    st: &AppState,
    grant: &Grant,
    records: Vec<Record>,
    deduplicate: bool,
) -> Result<Vec<String>, Response> {
    for r in &records {
        grant.check(&r.namespace).map_err(from_api)?;
    }
    let now = Timestamp::now();
    let mut items = Vec::with_capacity(records.len());
    let mut moved_from = Vec::new();
    let mut seen_hashes: HashMap<(String, String), ()> = HashMap::new();
    for r in records {
        let existing = match &r.id {
            Some(id) => find(st, grant, id).await?,
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
pub(crate) async fn remove_moved(
    st: &AppState,
    moved_from: Vec<(String, String)>,
) -> Result<(), Response> {
    for (namespace, id) in moved_from {
        match st.store.delete(&namespace, &id).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(from_store(e)),
        }
    }
    Ok(())
}

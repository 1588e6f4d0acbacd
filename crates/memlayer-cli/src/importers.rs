//! `memlayer import --from <format>`: other memory systems' exports as memlayer items.
//!
//! Every record is mapped before anything is written: records that cannot be mapped are all
//! reported, each with its line (or its place in a JSON document) and the reason, and then
//! nothing is written. Ids are kept, or derived from what identifies a record, so importing
//! the same file again replaces items rather than duplicating them. Owners, timestamps and
//! metadata are kept; what has no field of its own goes to the item's metadata.

use std::collections::BTreeMap;

use memlayer::{DynStore, Kind, MemoryItem, Tier, Timestamp};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// The formats `--from` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// memlayer's own export (JSONL with shared blobs).
    Memlayer,
    /// mem0: the memories `get_all` returns (`{"results": [...]}` or a list), or JSONL of them.
    Mem0,
    /// Agent Memory Server: long-term memory records as its API returns them
    /// (`{"memories": [...]}`, a list, or JSONL), and working-memory sessions.
    Ams,
    /// LangGraph store items: namespace tuple, key, value, created_at, updated_at.
    Langgraph,
    /// Any JSONL, with `--map` naming the fields.
    Jsonl,
    /// CSV with a header row, with `--map` naming the columns.
    Csv,
}

impl Format {
    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Memlayer => "memlayer",
            Format::Mem0 => "mem0",
            Format::Ams => "ams",
            Format::Langgraph => "langgraph",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
}

/// Where the generic formats find an item's fields: `content=text,user=uid,...`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mapping {
    fields: BTreeMap<String, String>,
}

/// The item fields `--map` may name.
const MAPPABLE: [&str; 10] = [
    "content",
    "id",
    "user",
    "session",
    "agent",
    "kind",
    "tags",
    "created_at",
    "importance",
    "namespace",
];

impl Mapping {
    /// Parses `--map` values, each `field=source` or a comma-separated list of them.
    ///
    /// # Errors
    /// A message naming the entry that is malformed or names no item field.
    pub fn parse(specs: &[String]) -> Result<Mapping, String> {
        let mut fields = BTreeMap::new();
        for entry in specs.iter().flat_map(|s| s.split(',')) {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let (field, source) = entry
                .split_once('=')
                .ok_or_else(|| format!("--map: {entry:?} is not field=source"))?;
            let (field, source) = (field.trim(), source.trim());
            if !MAPPABLE.contains(&field) {
                return Err(format!(
                    "--map: {field:?} is not an item field; use one of {}",
                    MAPPABLE.join(", ")
                ));
            }
            if source.is_empty() {
                return Err(format!("--map: {field} maps to an empty source"));
            }
            fields.insert(field.to_owned(), source.to_owned());
        }
        if !fields.contains_key("content") {
            return Err("--map: content=<field> is required".into());
        }
        Ok(Mapping { fields })
    }

    fn source(&self, field: &str) -> Option<&str> {
        self.fields.get(field).map(String::as_str)
    }
}

/// One record of the input and where it was: "line 3", or "record 3" in a JSON document.
struct Located {
    at: String,
    value: Value,
}

/// What an import did, or could not do.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Records read.
    pub records: usize,
    /// Items written.
    pub items: u64,
    /// Records that could not be mapped, each with its place and reason; when any, nothing
    /// was written.
    pub refused: Vec<String>,
}

/// Reads `text` in `format` and writes the items to `store`, in namespace `namespace` unless
/// a record names its own (AMS) or the mapping does.
///
/// # Errors
/// The store's errors; records that cannot be mapped are reported in [`Outcome::refused`].
pub async fn import(
    store: &DynStore,
    format: Format,
    text: &str,
    namespace: &str,
    mapping: Option<&Mapping>,
) -> memlayer::Result<Outcome> {
    let now = Timestamp::now();
    let records = match format {
        Format::Csv => csv_records(text),
        _ => json_records(text),
    };
    let records = match records {
        Ok(r) => r,
        Err(refused) => {
            return Ok(Outcome {
                records: 0,
                items: 0,
                refused: vec![refused],
            });
        }
    };
    let mut items = Vec::new();
    let mut refused = Vec::new();
    for r in &records {
        let result = match format {
            Format::Mem0 => mem0(&r.value, namespace).map(|i| vec![i]),
            Format::Ams => ams(&r.value, namespace, now),
            Format::Langgraph => langgraph(&r.value, namespace).map(|i| vec![i]),
            Format::Jsonl | Format::Csv => match mapping {
                Some(m) => mapped(&r.value, namespace, m).map(|i| vec![i]),
                None => Err("--map is required for this format".into()),
            },
            Format::Memlayer => Err("memlayer's own format is read by `import` itself".into()),
        };
        match result.and_then(|items| {
            for item in &items {
                memlayer::limits::check_item(item).map_err(|e| e.to_string())?;
            }
            Ok(items)
        }) {
            Ok(mut more) => items.append(&mut more),
            Err(why) => refused.push(format!("{}: {why}", r.at)),
        }
    }
    if !refused.is_empty() {
        return Ok(Outcome {
            records: records.len(),
            items: 0,
            refused,
        });
    }
    let step = store.capabilities().max_batch.clamp(1, 1000);
    let mut written = 0u64;
    let mut rest = items;
    while !rest.is_empty() {
        let tail = rest.split_off(rest.len().min(step));
        written += store.upsert_many(rest).await?.len() as u64;
        rest = tail;
    }
    Ok(Outcome {
        records: records.len(),
        items: written,
        refused,
    })
}

/// The records of a JSON document (a list, or an object holding one under `results`,
/// `memories` or `items`) or of JSONL.
fn json_records(text: &str) -> Result<Vec<Located>, String> {
    let trimmed = text.trim_start();
    if (trimmed.starts_with('[') || trimmed.starts_with('{'))
        && let Ok(doc) = serde_json::from_str::<Value>(text)
    {
        let list = match doc {
            Value::Array(list) => Some(list),
            // A working-memory session is one record, though it holds a `memories` list.
            Value::Object(obj) if obj.contains_key("messages") => Some(vec![Value::Object(obj)]),
            Value::Object(mut obj) => ["results", "memories", "items"]
                .iter()
                .find_map(|k| match obj.remove(*k) {
                    Some(Value::Array(list)) => Some(list),
                    _ => None,
                })
                .or_else(|| Some(vec![Value::Object(obj)])),
            _ => None,
        };
        if let Some(list) = list {
            return Ok(list
                .into_iter()
                .enumerate()
                .map(|(i, value)| Located {
                    at: format!("record {}", i + 1),
                    value,
                })
                .collect());
        }
    }
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        out.push(Located {
            at: format!("line {}", i + 1),
            value,
        });
    }
    Ok(out)
}

/// The rows of a CSV file with a header row, each as an object of its columns.
fn csv_records(text: &str) -> Result<Vec<Located>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("line 1: {e}"))?
        .clone();
    let mut out = Vec::new();
    for row in reader.records() {
        let row = row.map_err(|e| match e.position() {
            Some(p) => format!("line {}: {e}", p.line()),
            None => e.to_string(),
        })?;
        let line = row.position().map_or(0, csv::Position::line);
        let obj: Map<String, Value> = headers
            .iter()
            .zip(row.iter())
            .map(|(h, v)| (h.to_owned(), Value::String(v.to_owned())))
            .collect();
        out.push(Located {
            at: format!("line {line}"),
            value: Value::Object(obj),
        });
    }
    Ok(out)
}

fn object(v: &Value) -> Result<&Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| "expected a JSON object".to_owned())
}

fn opt_string(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(format!("{key}: expected a string")),
    }
}

/// The instant at `key` of `obj` ([`time_of`]).
fn time(obj: &Map<String, Value>, key: &str) -> Result<Option<Timestamp>, String> {
    time_of(obj.get(key), key)
}

/// An ISO 8601 / RFC 3339 instant (a missing offset is UTC) or unix seconds; `key` names it
/// in errors.
fn time_of(value: Option<&Value>, key: &str) -> Result<Option<Timestamp>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Timestamp::parse_rfc3339(s)
            .or_else(|| Timestamp::parse_rfc3339(&format!("{s}Z")))
            .or_else(|| Timestamp::parse_rfc3339(&s.replacen(' ', "T", 1)))
            .or_else(|| s.parse::<f64>().ok().map(seconds))
            .map(Some)
            .ok_or_else(|| format!("{key}: {s:?} is not an ISO 8601 datetime")),
        Some(Value::Number(n)) => n
            .as_f64()
            .map(|s| Some(seconds(s)))
            .ok_or_else(|| format!("{key}: not a number of seconds")),
        Some(_) => Err(format!("{key}: expected a datetime")),
    }
}

fn seconds(s: f64) -> Timestamp {
    Timestamp::from_millis((s * 1000.0).round() as i64)
}

/// A stable id from what identifies a record.
fn derived_id(prefix: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    let hex: String = h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{prefix}-{hex}")
}

/// A mem0 memory: `{id, memory, hash, metadata, created_at, updated_at, user_id, agent_id,
/// run_id, actor_id, role}`, as `Memory.get` / `get_all` return it.
fn mem0(v: &Value, namespace: &str) -> Result<MemoryItem, String> {
    let obj = object(v)?;
    let memory = opt_string(obj, "memory")?.ok_or("memory: is required")?;
    let user = opt_string(obj, "user_id")?;
    let agent = opt_string(obj, "agent_id")?;
    let run = opt_string(obj, "run_id")?;
    let id = match opt_string(obj, "id")? {
        Some(id) => id,
        None => derived_id(
            "mem0",
            &[
                &memory,
                user.as_deref().unwrap_or(""),
                agent.as_deref().unwrap_or(""),
                run.as_deref().unwrap_or(""),
            ],
        ),
    };
    let mut item = MemoryItem::new(namespace, Kind::Fact, memory)
        .with_id(id)
        .with_tier(Tier::Semantic)
        .with_extra("source", "mem0");
    if let Some(u) = user {
        item = item.with_user(u);
    }
    if let Some(a) = agent {
        item = item.with_agent(a);
    }
    if let Some(r) = run {
        item = item.with_session(r);
    }
    if let Some(t) = time(obj, "created_at")? {
        item = item.with_created_at(t);
    }
    if let Some(t) = time(obj, "updated_at")? {
        item = item.with_extra("source_updated_at", t.to_rfc3339());
    }
    for (key, field) in [
        ("hash", "mem0_hash"),
        ("actor_id", "actor_id"),
        ("role", "role"),
    ] {
        if let Some(v) = opt_string(obj, key)? {
            item = item.with_extra(field, v);
        }
    }
    match obj.get("metadata") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => {
            for (k, v) in m {
                item = item.with_extra(k.clone(), v.clone());
            }
        }
        Some(_) => return Err("metadata: expected an object".into()),
    }
    Ok(item)
}

/// An AMS long-term memory record, or a working-memory session (its messages, and the
/// long-term records it carries). `--namespace` overrides the records' own namespaces.
fn ams(v: &Value, namespace: &str, now: Timestamp) -> Result<Vec<MemoryItem>, String> {
    let obj = object(v)?;
    let overridden = |mut item: MemoryItem| {
        if namespace != DEFAULT_NAMESPACE {
            item.namespace = namespace.to_owned();
        }
        item
    };
    if !obj.contains_key("messages") {
        let item = memlayer_server::ams_item_of_record(v, now).map_err(|e| e.to_string())?;
        return Ok(vec![overridden(item)]);
    }
    let session = opt_string(obj, "session_id")?.ok_or("session_id: is required")?;
    let user = opt_string(obj, "user_id")?;
    let ns = opt_string(obj, "namespace")?.unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
    let messages = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("messages: expected a list")?;
    let mut out = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let at = |e: String| format!("messages[{i}].{e}");
        let m = object(m).map_err(at)?;
        let content = opt_string(m, "content").map_err(at)?.unwrap_or_default();
        let role = opt_string(m, "role").map_err(at)?.unwrap_or_default();
        let kind = match role.as_str() {
            "user" | "human" => Kind::Human,
            "assistant" | "ai" => Kind::Ai,
            "system" => Kind::System,
            "tool" | "function" => Kind::Tool,
            other => {
                return Err(at(format!(
                    "role: {other:?} is not user, assistant, system or tool"
                )));
            }
        };
        let id = match opt_string(m, "id").map_err(at)? {
            Some(id) => id,
            None => derived_id("ams-msg", &[&ns, &session, &i.to_string()]),
        };
        let mut item = MemoryItem::new(&ns, kind, content)
            .with_id(id)
            .with_session(&session)
            .with_extra("source", "ams");
        if let Some(u) = &user {
            item = item.with_user(u);
        }
        if let Some(t) = time(m, "created_at").map_err(at)? {
            item = item.with_created_at(t);
        }
        out.push(overridden(item));
    }
    if let Some(list) = obj.get("memories").and_then(Value::as_array) {
        for (i, r) in list.iter().enumerate() {
            let item = memlayer_server::ams_item_of_record(r, now)
                .map_err(|e| format!("memories[{i}].{e}"))?;
            out.push(overridden(item));
        }
    }
    Ok(out)
}

/// The namespace used when neither `--namespace` nor a record names one.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A LangGraph store item: `{namespace: [...], key, value: {...}, created_at, updated_at}`.
/// The content is the value's text (`content`, langmem's `content.content`, `text`, `memory`
/// or `data`), else the value as JSON; the value itself is kept in the metadata.
fn langgraph(v: &Value, namespace: &str) -> Result<MemoryItem, String> {
    let obj = object(v)?;
    let path: Vec<String> = match obj.get("namespace") {
        Some(Value::Array(parts)) => parts
            .iter()
            .map(|p| {
                p.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| "namespace: expected a list of strings".to_owned())
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("namespace: expected a list of strings".into()),
    };
    let key = opt_string(obj, "key")?.ok_or("key: is required")?;
    let value = obj.get("value").ok_or("value: is required")?;
    let text = ["content", "text", "memory", "data"]
        .iter()
        .find_map(|k| match value.get(*k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Object(inner)) => inner
                .get("content")
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        })
        .unwrap_or_else(|| value.to_string());
    let ns = if namespace == DEFAULT_NAMESPACE && !path.is_empty() {
        path.join(".")
    } else {
        namespace.to_owned()
    };
    let joined = path.join("\u{1f}");
    let mut item = MemoryItem::new(ns, Kind::Fact, text)
        .with_id(derived_id("lg", &[&joined, &key]))
        .with_tier(Tier::Semantic)
        .with_extra("source", "langgraph")
        .with_extra("langgraph_namespace", json!(path))
        .with_extra("langgraph_key", key)
        .with_extra("value", value.clone());
    if let Some(t) = time(obj, "created_at")? {
        item = item.with_created_at(t);
    }
    if let Some(t) = time(obj, "updated_at")? {
        item = item.with_extra("source_updated_at", t.to_rfc3339());
    }
    Ok(item)
}

/// The value at a dotted path of `v` (`meta.user`).
fn at_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, part| v.get(part))
}

fn mapped_string(v: &Value, m: &Mapping, field: &str) -> Result<Option<String>, String> {
    let Some(source) = m.source(field) else {
        return Ok(None);
    };
    match at_path(v, source) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(format!("{source} (mapped to {field}): expected a string")),
    }
}

/// A record of a generic JSONL or CSV file, through `--map`. Fields the mapping does not use
/// are kept in the item's metadata.
fn mapped(v: &Value, namespace: &str, m: &Mapping) -> Result<MemoryItem, String> {
    let obj = object(v)?;
    let content = mapped_string(v, m, "content")?.ok_or_else(|| {
        format!(
            "{}: is required (mapped to content)",
            m.source("content").unwrap_or("content")
        )
    })?;
    let user = mapped_string(v, m, "user")?;
    let session = mapped_string(v, m, "session")?;
    let ns = mapped_string(v, m, "namespace")?.unwrap_or_else(|| namespace.to_owned());
    let id = match mapped_string(v, m, "id")? {
        Some(id) => id,
        None => derived_id(
            "imp",
            &[
                &ns,
                &content,
                user.as_deref().unwrap_or(""),
                session.as_deref().unwrap_or(""),
            ],
        ),
    };
    let kind = mapped_string(v, m, "kind")?.map_or(Kind::Fact, |k| Kind::parse(&k));
    let mut item = MemoryItem::new(ns, kind, content).with_id(id);
    if let Some(u) = user {
        item = item.with_user(u);
    }
    if let Some(s) = session {
        item = item.with_session(s);
    }
    if let Some(a) = mapped_string(v, m, "agent")? {
        item = item.with_agent(a);
    }
    if let Some(source) = m.source("created_at")
        && let Some(t) = time_of(at_path(v, source), source)?
    {
        item = item.with_created_at(t);
    }
    if let Some(source) = m.source("importance") {
        match at_path(v, source) {
            None | Some(Value::Null) => {}
            Some(x) => {
                let n = match x {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                }
                .ok_or_else(|| format!("{source} (mapped to importance): expected a number"))?;
                item = item.with_importance(n as f32);
            }
        }
    }
    if let Some(source) = m.source("tags") {
        let tags: Vec<String> = match at_path(v, source) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(xs)) => xs
                .iter()
                .map(|x| {
                    x.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| format!("{source} (mapped to tags): expected strings"))
                })
                .collect::<Result<_, _>>()?,
            Some(Value::String(s)) => s
                .split([',', ';'])
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            Some(_) => return Err(format!("{source} (mapped to tags): expected a list")),
        };
        for t in tags {
            item = item.with_tag(t);
        }
    }
    let used: Vec<&str> = m
        .fields
        .values()
        .map(|s| s.split('.').next().unwrap_or(s))
        .collect();
    for (k, v) in obj {
        if !used.contains(&k.as_str()) && !v.is_null() {
            item = item.with_extra(k.clone(), v.clone());
        }
    }
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_name_item_fields_and_need_content() {
        let m = Mapping::parse(&["content=text,user=meta.uid".into(), "id=key".into()]);
        assert_eq!(m.map(|m| m.fields.len()), Ok(3));
        assert!(Mapping::parse(&["user=u".into()]).is_err());
        assert!(
            Mapping::parse(&["content=t,colour=c".into()])
                .is_err_and(|e| e.contains("colour") && e.contains("content"))
        );
        assert!(Mapping::parse(&["content".into()]).is_err());
    }

    #[test]
    fn derived_ids_are_stable_and_tell_records_apart() {
        assert_eq!(derived_id("x", &["a", "b"]), derived_id("x", &["a", "b"]));
        assert_ne!(derived_id("x", &["a", "b"]), derived_id("x", &["ab", ""]));
    }

    #[test]
    fn json_documents_and_jsonl_give_their_records_and_places() {
        let doc = json_records(r#"{"results": [{"a": 1}, {"a": 2}]}"#).unwrap_or_default();
        assert_eq!(doc.len(), 2);
        assert_eq!(doc[1].at, "record 2");
        let lines = json_records("{\"a\": 1}\n\n{\"a\": 2}\n").unwrap_or_default();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].at, "line 3");
        assert!(json_records("{\"a\": 1}\n{oops\n").is_err_and(|e| e.starts_with("line 2")));
    }
}

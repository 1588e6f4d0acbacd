//! How an item is laid out in Chroma metadata, and how a [`Filter`] becomes a `where` clause.
//!
//! Chroma metadata values are strings, numbers and booleans, and `where` compares numbers only
//! with `$gt`-style operators. So:
//! - owner fields are strings, with a `has.*` boolean beside them so "unset" is filterable;
//! - tags and caller metadata keys are hex digests (`t.*`, `ms.*`, `mn.*`, `mb.*`), typed by
//!   prefix, so no caller string becomes a key and a string never equals a number;
//! - times are integer milliseconds, with far-future and far-past sentinels for open ends;
//! - the record's *document* is the content's analysed terms, space-separated and padded
//!   (`" cat chase mice "`), so Chroma's `$contains` selects exactly the records holding a term
//!   and the candidates carry what BM25 needs (term frequencies and length) in a few bytes;
//! - the item itself (content included, vector excluded) is JSON in `_item`, and the vector is
//!   base64 little-endian f32 in `_vec`, so a read is exact.
//!
//! Per-record metadata stays small on purpose: Chroma reads every key of a record it returns,
//! and a first layout with a key per term made every returned record several times dearer.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
pub(crate) use memlayer_store::ranking::text::{term_counts, terms_document};
use memlayer_store::types::{Embedding, MemoryItem, Timestamp};
use memlayer_store::{FieldMatch, Filter, MetaCondition, MetaOp, Result};
use serde_json::{Map, Value as Json, json};
use sha2::{Digest, Sha256};

use crate::error::corrupt;

/// Stands for "never" in `exp` and `vt`.
pub(crate) const FAR_FUTURE: i64 = 1 << 62;
/// Stands for "always" in `vf`.
pub(crate) const FAR_PAST: i64 = -(1 << 62);

const ITEM: &str = "_item";
const VEC: &str = "_vec";

/// A key-safe digest of any caller string.
pub(crate) fn digest(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn owners(item: &MemoryItem) -> [(&'static str, Option<&String>); 4] {
    let m = &item.metadata;
    [
        ("user", m.user_id.as_ref()),
        ("session", m.session_id.as_ref()),
        ("task", m.task_id.as_ref()),
        ("agent", m.agent_id.as_ref()),
    ]
}

/// The filterable fields of an item: what both the records and the vector index carry.
pub(crate) fn filter_fields(item: &MemoryItem) -> Map<String, Json> {
    let mut m = Map::new();
    m.insert("ns".into(), json!(item.namespace));
    m.insert("id".into(), json!(item.id));
    m.insert("kind".into(), json!(item.kind.as_str()));
    m.insert("status".into(), json!(item.status.as_str()));
    for (name, value) in owners(item) {
        m.insert(format!("has.{name}"), json!(value.is_some()));
        if let Some(v) = value {
            m.insert(name.into(), json!(v));
        }
    }
    for t in &item.tags {
        m.insert(format!("t.{}", digest(t)), json!(true));
    }
    for (k, v) in &item.metadata.extra {
        let d = digest(k);
        match v {
            Json::String(s) => {
                m.insert(format!("ms.{d}"), json!(s));
            }
            Json::Number(n) => {
                if let Some(f) = n.as_f64() {
                    m.insert(format!("mn.{d}"), json!(f));
                }
            }
            Json::Bool(b) => {
                m.insert(format!("mb.{d}"), json!(b));
            }
            _ => {}
        }
    }
    m.insert("created".into(), json!(item.created_at.as_millis()));
    m.insert("updated".into(), json!(item.updated_at.as_millis()));
    if let Some(a) = item.last_accessed_at {
        m.insert("accessed".into(), json!(a.as_millis()));
    }
    m.insert(
        "exp".into(),
        json!(item.expires_at.map_or(FAR_FUTURE, |t| t.as_millis())),
    );
    m.insert(
        "vf".into(),
        json!(item.valid_from.map_or(FAR_PAST, |t| t.as_millis())),
    );
    m.insert(
        "vt".into(),
        json!(item.valid_to.map_or(FAR_FUTURE, |t| t.as_millis())),
    );
    m.insert("sup".into(), json!(item.superseded_by.is_some()));
    if let Some(by) = &item.superseded_by {
        m.insert("supby".into(), json!(by));
    }
    m.insert("del".into(), json!(item.deleted));
    m.insert("hasvec".into(), json!(item.embedding.is_some()));
    m
}

/// The `$contains` operand that matches a term in a terms document.
pub(crate) fn term_probe(term: &str) -> String {
    format!(" {term} ")
}

/// The whole metadata of an item's record: filter fields, the item and its vector.
pub(crate) fn record(item: &MemoryItem) -> Result<Map<String, Json>> {
    let mut m = filter_fields(item);
    let mut stored = item.clone();
    if let Some(e) = &mut stored.embedding {
        let bytes: Vec<u8> = e.vector.iter().flat_map(|x| x.to_le_bytes()).collect();
        m.insert(VEC.into(), json!(B64.encode(bytes)));
        e.vector = Vec::new();
    }
    let encoded = serde_json::to_string(&stored).map_err(|e| corrupt("item", e))?;
    m.insert(ITEM.into(), json!(encoded));
    Ok(m)
}

/// The item stored in a record's metadata.
pub(crate) fn decode(meta: &Map<String, Json>) -> Result<MemoryItem> {
    let encoded = meta
        .get(ITEM)
        .and_then(Json::as_str)
        .ok_or_else(|| corrupt("record", "no _item field"))?;
    let mut item: MemoryItem = serde_json::from_str(encoded).map_err(|e| corrupt("item", e))?;
    if let Some(e) = &mut item.embedding {
        let raw = meta
            .get(VEC)
            .and_then(Json::as_str)
            .ok_or_else(|| corrupt("record", "an embedding without _vec"))?;
        let bytes = B64.decode(raw).map_err(|e| corrupt("vector", e))?;
        e.vector = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
    }
    Ok(item)
}

/// The stored vector of a record, decoded.
pub(crate) fn embedding_of(item: &MemoryItem) -> Option<&Embedding> {
    item.embedding.as_ref()
}

/// A `where` map that sets every key of `old` missing from `new` to null: Chroma merges
/// metadata on upsert, and null removes a key.
pub(crate) fn with_removals(
    mut new: Map<String, Json>,
    old: &Map<String, Json>,
) -> Map<String, Json> {
    for k in old.keys() {
        if !new.contains_key(k) {
            new.insert(k.clone(), Json::Null);
        }
    }
    new
}

/// The conjunction of clauses, in the shape Chroma accepts (`$and` needs two or more).
pub(crate) fn all(mut clauses: Vec<Json>) -> Option<Json> {
    match clauses.len() {
        0 => None,
        1 => clauses.pop(),
        _ => Some(json!({ "$and": clauses })),
    }
}

/// The disjunction of clauses, in the shape Chroma accepts.
pub(crate) fn any(mut clauses: Vec<Json>) -> Option<Json> {
    match clauses.len() {
        0 => None,
        1 => clauses.pop(),
        _ => Some(json!({ "$or": clauses })),
    }
}

/// A filter as Chroma clauses. What Chroma cannot express (string range conditions) is left
/// out, so the clauses select a superset; every reader re-checks candidates with
/// [`Filter::matches`], the reference semantics.
#[derive(Debug, Default)]
pub(crate) struct Translated {
    pub clauses: Vec<Json>,
    /// The clauses are the whole filter (nothing left out).
    pub exact: bool,
    /// The filter can match nothing; no query is needed.
    pub empty: bool,
}

fn eq(key: &str, v: Json) -> Json {
    json!({ key: { "$eq": v } })
}

fn range(key: &str, op: &str, v: i64) -> Json {
    json!({ key: { op: v } })
}

/// Translates `filter` for `namespace` at `now`.
pub(crate) fn translate(namespace: &str, f: &Filter, now: Timestamp) -> Translated {
    let mut t = Translated {
        exact: true,
        ..Translated::default()
    };
    let c = &mut t.clauses;
    c.push(eq("ns", json!(namespace)));
    if !f.include_deleted {
        c.push(eq("del", json!(false)));
    }
    let now = now.as_millis();
    if !f.include_expired {
        c.push(range("exp", "$gt", now));
    }
    match f.as_of {
        Some(at) => {
            c.push(range("vf", "$lte", at.as_millis()));
            c.push(range("vt", "$gt", at.as_millis()));
        }
        None if !f.include_superseded => {
            c.push(eq("sup", json!(false)));
            c.push(range("vt", "$gt", now));
        }
        None => {}
    }
    for (name, m) in [
        ("user", &f.user),
        ("session", &f.session),
        ("task", &f.task),
        ("agent", &f.agent),
    ] {
        match m {
            FieldMatch::Any => {}
            FieldMatch::Is(v) => c.push(eq(name, json!(v))),
            FieldMatch::Unset => c.push(eq(&format!("has.{name}"), json!(false))),
        }
    }
    if !f.kinds.is_empty() {
        let kinds: Vec<&str> = f.kinds.iter().map(|k| k.as_str()).collect();
        c.push(json!({ "kind": { "$in": kinds } }));
    }
    if !f.statuses.is_empty() {
        let statuses: Vec<&str> = f.statuses.iter().map(|s| s.as_str()).collect();
        c.push(json!({ "status": { "$in": statuses } }));
    }
    for tag in &f.tags {
        c.push(eq(&format!("t.{}", digest(tag)), json!(true)));
    }
    if !f.exclude_ids.is_empty() {
        c.push(json!({ "id": { "$nin": f.exclude_ids } }));
    }
    for (key, r) in [
        ("created", &f.created),
        ("updated", &f.updated),
        ("accessed", &f.accessed),
    ] {
        if let Some(from) = r.from {
            c.push(range(key, "$gte", from.as_millis()));
        }
        if let Some(to) = r.to {
            c.push(range(key, "$lte", to.as_millis()));
        }
    }
    for cond in &f.metadata {
        match meta_clause(cond) {
            Meta::Clause(j) => t.clauses.push(j),
            Meta::Nothing => t.empty = true,
            Meta::Everything => {}
            Meta::Unexpressed => t.exact = false,
        }
    }
    t
}

enum Meta {
    Clause(Json),
    Nothing,
    Everything,
    Unexpressed,
}

fn op_name(op: MetaOp) -> &'static str {
    match op {
        MetaOp::Eq => "$eq",
        MetaOp::Ne => "$ne",
        MetaOp::Gt => "$gt",
        MetaOp::Gte => "$gte",
        MetaOp::Lt => "$lt",
        MetaOp::Lte => "$lte",
    }
}

/// One metadata condition. Chroma's `$ne` also matches records without the key, which is
/// exactly the reference semantics ("missing or different").
fn meta_clause(cond: &MetaCondition) -> Meta {
    let d = digest(&cond.key);
    let op = op_name(cond.op);
    match &cond.value {
        Json::Number(n) => match n.as_f64() {
            Some(v) => Meta::Clause(json!({ format!("mn.{d}"): { op: v } })),
            None => Meta::Nothing,
        },
        Json::String(s) => match cond.op {
            MetaOp::Eq | MetaOp::Ne => Meta::Clause(json!({ format!("ms.{d}"): { op: s } })),
            // Chroma orders numbers only: string ranges are checked on the candidates.
            _ => Meta::Unexpressed,
        },
        Json::Bool(b) => {
            let key = format!("mb.{d}");
            let is = |v: bool| Meta::Clause(json!({ key.clone(): { "$eq": v } }));
            let either = Meta::Clause(json!({ key.clone(): { "$in": [true, false] } }));
            // false < true, as in the reference comparison.
            match (cond.op, *b) {
                (MetaOp::Eq, v) => is(v),
                (MetaOp::Ne, v) => Meta::Clause(json!({ key.clone(): { "$ne": v } })),
                (MetaOp::Gt, true) | (MetaOp::Lt, false) => Meta::Nothing,
                (MetaOp::Gt, false) | (MetaOp::Gte, true) => is(true),
                (MetaOp::Lt, true) | (MetaOp::Lte, false) => is(false),
                (MetaOp::Gte, false) | (MetaOp::Lte, true) => either,
            }
        }
        // Non-scalars never compare: only `Ne` holds, for every item.
        _ => match cond.op {
            MetaOp::Ne => Meta::Everything,
            _ => Meta::Nothing,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memlayer_store::types::Kind;

    #[test]
    fn record_round_trips_exactly() {
        let item = MemoryItem::new("ns", Kind::Fact, "Cats chase mice")
            .with_user("alice")
            .with_tag("pets")
            .with_extra("n", 3)
            .with_embedding("m", vec![0.1, -2.5, f32::MIN_POSITIVE]);
        let meta = record(&item).unwrap();
        assert_eq!(decode(&meta).unwrap(), item);
        let doc = terms_document(&item.content);
        assert_eq!(doc, " cat chase mice ");
        assert!(doc.contains(&term_probe("cat")));
        assert!(!doc.contains(&term_probe("ca")));
        assert_eq!(term_counts(&doc, &["cat", "dog"]), (vec![1.0, 0.0], 3.0));
    }

    #[test]
    fn removed_keys_become_null() {
        let old = record(&MemoryItem::new("ns", Kind::Fact, "a b").with_user("u")).unwrap();
        assert_eq!(old.get("user"), Some(&json!("u")));
        let new = record(&MemoryItem::new("ns", Kind::Fact, "c")).unwrap();
        let merged = with_removals(new, &old);
        assert_eq!(merged.get("user"), Some(&Json::Null));
        assert_eq!(merged.get("has.user"), Some(&json!(false)));
    }

    #[test]
    fn conjunctions_have_chroma_shape() {
        assert_eq!(all(vec![]), None);
        assert_eq!(all(vec![json!({"a": 1})]), Some(json!({"a": 1})));
        assert!(all(vec![json!({"a": 1}), json!({"b": 2})]).unwrap()["$and"].is_array());
    }
}

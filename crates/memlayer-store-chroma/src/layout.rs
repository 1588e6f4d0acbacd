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
use memlayer_store::types::{Embedding, MemoryItem};
use memlayer_store::{FieldMatch, Filter, MetaCondition, MetaOp, Result};
use serde_json::{Map, Value as Json, json};
use sha2::{Digest, Sha256};

use crate::error::corrupt;

const ITEM: &str = "_item";
const VEC: &str = "_vec";

/// A key-safe digest of any caller string.
pub(crate) fn digest(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The prefix of an item's record id: a 128-bit digest of its namespace, long enough that two
/// namespaces never share one.
pub(crate) fn namespace_key(namespace: &str) -> String {
    let d = Sha256::digest(namespace.as_bytes());
    d[..16].iter().map(|b| format!("{b:02x}")).collect()
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
    // Liveness lives in the scope keys below; the expiry stays for `list_expired`, and the
    // successor for `predecessors`.
    if let Some(at) = item.expires_at {
        m.insert("exp".into(), json!(at.as_millis()));
    }
    if let Some(by) = &item.superseded_by {
        m.insert("supby".into(), json!(by));
    }
    let ns = &item.namespace;
    let narrowed = if item.deleted {
        m.insert(DELETED.into(), json!(scope(ns, None)));
        None
    } else if is_plain(item) {
        Some(PLAIN)
    } else if is_expiring(item) {
        Some(EXPIRING)
    } else {
        m.insert(OTHER.into(), json!(scope(ns, None)));
        None
    };
    if let Some(key) = narrowed {
        m.insert(key.into(), json!(scope(ns, None)));
        m.insert(
            format!("{key}.kind"),
            json!(scope(ns, Some(item.kind.as_str()))),
        );
        for (name, value) in owners(item) {
            if let Some(v) = value {
                m.insert(format!("{key}.{name}"), json!(scope(ns, Some(v))));
            }
        }
    }
    m
}

/// Scope key of a namespace's plainly live items (see [`is_plain`]); with `.kind`, `.user`,
/// `.session`, `.task` and `.agent` it is narrowed to one value of that field.
const PLAIN: &str = "p";
/// Scope key of a namespace's items that are plain but for an expiry ([`is_expiring`]),
/// narrowed like [`PLAIN`].
const EXPIRING: &str = "x";
/// Scope key of a namespace's other items that are not deleted.
const OTHER: &str = "o";
/// Scope key of a namespace's deleted items.
const DELETED: &str = "d";

/// Every item of `namespace`, the deleted ones too when `deleted` is true.
pub(crate) fn in_namespace(namespace: &str, deleted: bool) -> Json {
    let ns = json!(scope(namespace, None));
    let mut scopes = vec![
        eq(PLAIN, ns.clone()),
        eq(EXPIRING, ns.clone()),
        eq(OTHER, ns.clone()),
    ];
    if deleted {
        scopes.push(eq(DELETED, ns));
    }
    json!({ "$or": scopes })
}

/// Whether an item is live with no bound but (perhaps) an expiry: not deleted, no validity
/// bounds, not superseded.
fn unbounded(item: &MemoryItem) -> bool {
    !item.deleted
        && item.valid_from.is_none()
        && item.valid_to.is_none()
        && item.superseded_by.is_none()
}

/// Whether an item passes every liveness rule of every filter at any time: not deleted, no
/// expiry, no validity bounds, not superseded. Such items are selected by one equality on a
/// scope key, which Chroma answers from its index; the others are few in most namespaces and
/// are read whole and checked in Rust.
pub(crate) fn is_plain(item: &MemoryItem) -> bool {
    unbounded(item) && item.expires_at.is_none()
}

/// Whether an item would be plain ([`is_plain`]) but for its expiry: live until then, which
/// only a re-check at the filter's time can tell. Working-tier memories carry a default TTL,
/// so in many namespaces these are most items, and they are narrowed by scope keys as the
/// plain ones are instead of being read whole.
pub(crate) fn is_expiring(item: &MemoryItem) -> bool {
    unbounded(item) && item.expires_at.is_some()
}

/// The value of a scope key: the namespace, and the field's value when narrowed, as a JSON
/// array, so no two (namespace, value) pairs share a scope whatever characters they hold.
fn scope(namespace: &str, value: Option<&str>) -> String {
    match value {
        Some(v) => json!([namespace, v]).to_string(),
        None => json!([namespace]).to_string(),
    }
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

/// A filter as Chroma clauses, in three parts that never overlap: the namespace's plainly live
/// items ([`is_plain`]), selected by the narrowest scope key the filter allows plus the rest of
/// the filter; the items plain but for an expiry ([`is_expiring`]), selected the same way by
/// their own scope keys; and its other items, selected by scope alone (with the owners the
/// filter names). The last two are always re-checked with [`Filter::matches`], the reference
/// semantics.
///
/// Chroma evaluates each clause of a `where` over every record the clause matches: the
/// liveness clauses (not deleted, not expired, not superseded) match nearly every record, and
/// cost more than the query's own clauses. Plainly live items pass them at any time, so the
/// plain part leaves them out, and the other part is small in most namespaces.
///
/// What Chroma cannot express (string range conditions) is left out of the plain part, so it
/// selects a superset; `exact` says whether it did.
#[derive(Debug)]
pub(crate) struct Translated {
    /// The clauses selecting plainly live items that pass the filter (all of them hold).
    pub plain: Vec<Json>,
    /// The clause selecting the items plain but for an expiry that may pass the filter (the
    /// plain clauses on their own scope keys; the expiry is left to the re-check).
    pub expiring: Json,
    /// The clause selecting the other items of the namespace the filter may admit.
    pub other: Json,
    /// The plain clauses are the whole filter (nothing left out).
    pub exact: bool,
    /// The filter can match nothing; no query is needed.
    pub empty: bool,
}

impl Translated {
    /// The plain part as one `where`.
    pub fn plain_where(&self) -> Json {
        all(self.plain.clone()).unwrap_or_else(|| self.other.clone())
    }

    /// Every part as one `where`: every record the filter may admit.
    pub fn both(&self) -> Json {
        json!({ "$or": [self.plain_where(), self.expiring.clone(), self.other.clone()] })
    }
}

fn eq(key: &str, v: Json) -> Json {
    json!({ key: { "$eq": v } })
}

fn range(key: &str, op: &str, v: i64) -> Json {
    json!({ key: { op: v } })
}

/// Translates `filter` for `namespace`.
pub(crate) fn translate(namespace: &str, f: &Filter) -> Translated {
    let owners = [
        ("user", &f.user),
        ("session", &f.session),
        ("task", &f.task),
        ("agent", &f.agent),
    ];
    let named: Vec<Json> = owners
        .iter()
        .filter_map(|(name, m)| match m {
            FieldMatch::Is(v) => Some(eq(name, json!(v))),
            _ => None,
        })
        .collect();
    let mut other_scopes = vec![eq(OTHER, json!(scope(namespace, None)))];
    if f.include_deleted {
        other_scopes.push(eq(DELETED, json!(scope(namespace, None))));
    }
    let mut other = named;
    other.extend(any(other_scopes));
    let mut t = Translated {
        plain: Vec::new(),
        expiring: json!({}),
        other: all(other).unwrap_or_else(|| json!({})),
        exact: true,
        empty: false,
    };
    // The narrowest scope: an owner's value, else the kinds, else the whole namespace.
    let by_owner = owners.iter().find_map(|(name, m)| match m {
        FieldMatch::Is(v) => Some((*name, v)),
        _ => None,
    });
    let scoped = |key: &str| match by_owner {
        Some((name, v)) => eq(&format!("{key}.{name}"), json!(scope(namespace, Some(v)))),
        None if !f.kinds.is_empty() => {
            let scopes: Vec<String> = f
                .kinds
                .iter()
                .map(|k| scope(namespace, Some(k.as_str())))
                .collect();
            json!({ format!("{key}.kind"): { "$in": scopes } })
        }
        None => eq(key, json!(scope(namespace, None))),
    };
    let expiring_scope = scoped(EXPIRING);
    let c = &mut t.plain;
    c.push(scoped(PLAIN));
    let kinds_done = by_owner.is_none() && !f.kinds.is_empty();
    for (name, m) in owners {
        match m {
            FieldMatch::Any => {}
            FieldMatch::Is(_) if by_owner.is_some_and(|(n, _)| n == name) => {}
            FieldMatch::Is(v) => c.push(eq(name, json!(v))),
            FieldMatch::Unset => c.push(eq(&format!("has.{name}"), json!(false))),
        }
    }
    if !f.kinds.is_empty() && !kinds_done {
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
            Meta::Clause(j) => t.plain.push(j),
            Meta::Nothing => t.empty = true,
            Meta::Everything => {}
            Meta::Unexpressed => t.exact = false,
        }
    }
    // The expiring part: the plain clauses with its own scope key in place of the plain one.
    let mut x = vec![expiring_scope];
    x.extend(t.plain.iter().skip(1).cloned());
    t.expiring = all(x).unwrap_or_else(|| json!({}));
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
    fn scope_keys_follow_liveness() {
        let plain = MemoryItem::new("a\"b", Kind::Fact, "x").with_user("u");
        let m = filter_fields(&plain);
        assert_eq!(m.get("p"), Some(&json!(r#"["a\"b"]"#)));
        assert_eq!(m.get("p.user"), Some(&json!(r#"["a\"b","u"]"#)));
        assert_eq!(m.get("p.kind"), Some(&json!(r#"["a\"b","fact"]"#)));
        assert!(!m.contains_key("p.session") && !m.contains_key("o"));
        let expiring = plain
            .clone()
            .with_expires_at(memlayer_store::types::Timestamp::now());
        let m = filter_fields(&expiring);
        assert!(!is_plain(&expiring) && is_expiring(&expiring) && m.contains_key("exp"));
        assert_eq!(m.get("x.user"), Some(&json!(r#"["a\"b","u"]"#)));
        assert_eq!(m.get("x.kind"), Some(&json!(r#"["a\"b","fact"]"#)));
        assert!(!m.contains_key("p") && !m.contains_key("p.user") && !m.contains_key("o"));
        let superseded = MemoryItem {
            superseded_by: Some("later".into()),
            ..expiring
        };
        let m = filter_fields(&superseded);
        assert!(!is_expiring(&superseded) && m.contains_key("o") && !m.contains_key("x"));
        let deleted = MemoryItem {
            deleted: true,
            ..plain
        };
        let m = filter_fields(&deleted);
        assert!(m.contains_key("d") && !m.contains_key("o") && !m.contains_key("p"));
    }

    #[test]
    fn translation_picks_the_narrowest_plain_scope() {
        let t = translate("n", &Filter::new().session("s").user("u"));
        assert_eq!(t.plain[0], json!({ "p.user": { "$eq": r#"["n","u"]"# } }));
        assert_eq!(t.plain[1], json!({ "session": { "$eq": "s" } }));
        assert_eq!(t.plain.len(), 2);
        assert_eq!(
            t.expiring,
            json!({ "$and": [
                { "x.user": { "$eq": r#"["n","u"]"# } },
                { "session": { "$eq": "s" } },
            ] })
        );
        let t = translate("n", &Filter::new().kind(Kind::Fact));
        assert_eq!(
            t.plain,
            vec![json!({ "p.kind": { "$in": [r#"["n","fact"]"#] } })]
        );
        let t = translate("n", &Filter::new().include_deleted(true));
        assert_eq!(t.plain, vec![json!({ "p": { "$eq": r#"["n"]"# } })]);
        assert_eq!(t.expiring, json!({ "x": { "$eq": r#"["n"]"# } }));
        assert_eq!(
            t.other,
            json!({ "$or": [
                { "o": { "$eq": r#"["n"]"# } },
                { "d": { "$eq": r#"["n"]"# } },
            ] })
        );
        assert!(t.exact && !t.empty);
    }

    #[test]
    fn conjunctions_have_chroma_shape() {
        assert_eq!(all(vec![]), None);
        assert_eq!(all(vec![json!({"a": 1})]), Some(json!({"a": 1})));
        assert!(all(vec![json!({"a": 1}), json!({"b": 2})]).unwrap()["$and"].is_array());
    }
}

//! Items to and from Redis hashes: the indexed fields written for an item, the TAG tokens,
//! and the parsing of `FT.SEARCH` replies back into items.

use std::collections::{BTreeSet, HashMap};

use fred::bytes::Bytes;
use fred::types::{CustomCommand, Value};
use memlayer_store::Result;
use memlayer_store::ranking::text;
use memlayer_store::types::{Embedding, Kind, MemoryItem, Metadata, Status, Tier, Timestamp};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::client::{NONE, OPEN_END, RedisStore};
use crate::error::corrupt;

/// A TAG token for any string: a hex digest, so no query syntax can ever appear in a query.
pub(crate) fn token(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The canonical typed form of a metadata scalar (numbers as numbers: 10 and 10.0 agree).
pub(crate) fn typed(v: &Json) -> Option<String> {
    match v {
        Json::Number(n) => n.as_f64().map(|f| format!("n:{f}")),
        Json::String(s) => Some(format!("s:{s}")),
        Json::Bool(b) => Some(format!("b:{b}")),
        _ => None,
    }
}

pub(crate) fn kv_token(key: &str, v: &Json) -> Option<String> {
    typed(v).map(|t| token(&format!("{key}\u{1f}{t}")))
}

pub(crate) fn numeric_field(key: &str) -> String {
    format!("x{}", &token(key)[..16])
}

pub(crate) fn num(v: f64) -> String {
    format!("{v}")
}

pub(crate) fn cmd(name: &'static str) -> CustomCommand {
    CustomCommand::new_static(name, None, false)
}

pub(crate) fn bytes_of(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Bytes(b) => Some(b.to_vec()),
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(i) => Some(i.to_string().into_bytes()),
        Value::Double(d) => Some(d.to_string().into_bytes()),
        _ => None,
    }
}

pub(crate) fn string_of(v: &Value) -> Option<String> {
    bytes_of(v).and_then(|b| String::from_utf8(b).ok())
}

/// One document of a search answer: its fields, and its score when asked for.
pub(crate) struct Doc {
    pub(crate) fields: HashMap<String, Vec<u8>>,
    pub(crate) score: Option<f64>,
}

impl Doc {
    pub(crate) fn text(&self, k: &str) -> Option<String> {
        self.fields
            .get(k)
            .and_then(|b| String::from_utf8(b.clone()).ok())
    }

    pub(crate) fn int(&self, k: &str) -> Result<Option<i64>> {
        self.text(k)
            .map(|s| s.parse::<i64>().map_err(|e| corrupt(k, e)))
            .transpose()
    }

    pub(crate) fn item(&self) -> Result<MemoryItem> {
        let need = |k: &str| self.text(k).ok_or_else(|| corrupt(k, "missing"));
        let status = need("status")?;
        let tier = need("tier")?;
        let tool_calls: Vec<Json> =
            serde_json::from_str(&need("tool_calls")?).map_err(|e| corrupt("tool_calls", e))?;
        let extra: serde_json::Map<String, Json> =
            serde_json::from_str(&need("extra")?).map_err(|e| corrupt("extra", e))?;
        let tags: BTreeSet<String> =
            serde_json::from_str(&need("tags")?).map_err(|e| corrupt("tags", e))?;
        let embedding = match (self.text("embedding_model"), self.fields.get("vec")) {
            (Some(m), Some(b)) => Some(Embedding::new(
                m,
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
            )),
            _ => None,
        };
        let ts =
            |k: &str| -> Result<Option<Timestamp>> { Ok(self.int(k)?.map(Timestamp::from_millis)) };
        Ok(MemoryItem {
            id: need("id")?,
            namespace: need("namespace")?,
            kind: Kind::parse(&need("kind")?),
            content: need("content")?,
            status: Status::parse(&status).ok_or_else(|| corrupt("status", &status))?,
            tool_calls,
            tool_call_id: self.text("tool_call_id"),
            tool_name: self.text("tool_name"),
            is_error: self.text("is_error").map(|v| v == "1"),
            metadata: Metadata {
                user_id: self.text("user_id"),
                session_id: self.text("session_id"),
                task_id: self.text("task_id"),
                agent_id: self.text("agent_id"),
                extra,
            },
            tags,
            tier: Tier::parse(&tier).ok_or_else(|| corrupt("tier", &tier))?,
            expires_at: ts("expires_at")?,
            importance: need("importance")?
                .parse()
                .map_err(|e| corrupt("importance", e))?,
            confidence: need("confidence")?
                .parse()
                .map_err(|e| corrupt("confidence", e))?,
            access_count: self
                .int("access_count")?
                .map_or(0, |v| u64::try_from(v).unwrap_or(0)),
            last_accessed_at: ts("last_accessed_at")?,
            superseded_by: self.text("superseded_by"),
            valid_from: ts("valid_from")?,
            valid_to: ts("valid_to")?,
            created_at: ts("created_at")?.ok_or_else(|| corrupt("created_at", "missing"))?,
            updated_at: ts("updated_at")?.ok_or_else(|| corrupt("updated_at", "missing"))?,
            version: self
                .int("version")?
                .map_or(0, |v| u64::try_from(v).unwrap_or(0)),
            deleted: self.text("deleted").as_deref() == Some("1"),
            embedding,
        })
    }
}

/// Parses an FT.SEARCH answer: `[total, key, (score,) [field, value, ...], ...]`.
pub(crate) fn parse_search(v: Value, with_scores: bool) -> Result<(u64, Vec<Doc>)> {
    let arr = v.into_array();
    let total = arr.first().and_then(|t| t.as_i64()).unwrap_or(0).max(0) as u64;
    let mut docs = Vec::new();
    let mut i = 1;
    while i < arr.len() {
        i += 1; // the key
        let mut score = None;
        if with_scores {
            score = arr
                .get(i)
                .and_then(string_of)
                .and_then(|s| s.parse::<f64>().ok());
            i += 1;
        }
        let mut fields = HashMap::new();
        if let Some(Value::Array(pairs)) = arr.get(i) {
            for p in pairs.chunks(2) {
                if let (Some(k), Some(v)) =
                    (p.first().and_then(string_of), p.get(1).and_then(bytes_of))
                {
                    fields.insert(k, v);
                }
            }
        }
        i += 1;
        docs.push(Doc { fields, score });
    }
    Ok((total, docs))
}

impl RedisStore {
    /// The hash fields of an item (bookkeeping fields are the script's).
    pub(crate) fn fields(&self, item: &MemoryItem) -> Vec<(String, Value)> {
        let mut f: Vec<(String, Value)> = Vec::new();
        let mut put = |k: &str, v: Value| f.push((k.to_owned(), v));
        put("id", item.id.clone().into());
        put("t_id", token(&item.id).into());
        put("namespace", item.namespace.clone().into());
        put("t_ns", token(&item.namespace).into());
        put("kind", item.kind.as_str().into());
        put("t_kind", token(item.kind.as_str()).into());
        put("content", item.content.clone().into());
        // memlayer's analysis, for BM25: the length in terms and the distinct terms as tags.
        let terms: Vec<String> = text::terms(&item.content).collect();
        put("doc_len", terms.len().to_string().into());
        put("terms", format!(" {} ", terms.join(" ")).into());
        let distinct: BTreeSet<String> = terms.into_iter().map(|t| token(&t)).collect();
        put(
            "t_terms",
            distinct.into_iter().collect::<Vec<_>>().join(",").into(),
        );
        put("status", item.status.as_str().into());
        put("t_status", token(item.status.as_str()).into());
        put(
            "tool_calls",
            serde_json::to_string(&item.tool_calls)
                .unwrap_or_else(|_| "[]".into())
                .into(),
        );
        if let Some(v) = &item.tool_call_id {
            put("tool_call_id", v.clone().into());
        }
        if let Some(v) = &item.tool_name {
            put("tool_name", v.clone().into());
        }
        if let Some(v) = item.is_error {
            put("is_error", if v { "1" } else { "0" }.into());
        }
        let m = &item.metadata;
        for (raw, t, v) in [
            ("user_id", "t_user", &m.user_id),
            ("session_id", "t_session", &m.session_id),
            ("task_id", "t_task", &m.task_id),
            ("agent_id", "t_agent", &m.agent_id),
        ] {
            match v {
                Some(v) => {
                    put(raw, v.clone().into());
                    put(t, token(v).into());
                }
                None => put(t, NONE.into()),
            }
        }
        put(
            "extra",
            serde_json::to_string(&m.extra)
                .unwrap_or_else(|_| "{}".into())
                .into(),
        );
        let kv: Vec<String> = m.extra.iter().filter_map(|(k, v)| kv_token(k, v)).collect();
        put("t_kv", kv.join(",").into());
        for (k, v) in &m.extra {
            if let Some(x) = v.as_f64() {
                put(&numeric_field(k), num(x).into());
            }
        }
        put(
            "tags",
            serde_json::to_string(&item.tags)
                .unwrap_or_else(|_| "[]".into())
                .into(),
        );
        put(
            "t_tags",
            item.tags
                .iter()
                .map(|t| token(t))
                .collect::<Vec<_>>()
                .join(",")
                .into(),
        );
        put("tier", item.tier.as_str().into());
        match item.expires_at {
            Some(t) => {
                put("expires_at", t.as_millis().to_string().into());
                put("exp", t.as_millis().to_string().into());
            }
            None => put("exp", num(OPEN_END).into()),
        }
        put("importance", item.importance.to_string().into());
        put("imp", num(f64::from(item.importance)).into());
        put("confidence", item.confidence.to_string().into());
        match &item.superseded_by {
            Some(s) => {
                put("superseded_by", s.clone().into());
                put("t_sup", "y".into());
                put("t_supby", token(s).into());
            }
            None => {
                put("t_sup", "n".into());
                put("t_supby", NONE.into());
            }
        }
        match item.valid_from {
            Some(t) => {
                put("valid_from", t.as_millis().to_string().into());
                put("vfrom", t.as_millis().to_string().into());
            }
            None => put("vfrom", num(-OPEN_END).into()),
        }
        match item.valid_to {
            Some(t) => {
                put("valid_to", t.as_millis().to_string().into());
                put("vto", t.as_millis().to_string().into());
            }
            None => put("vto", num(OPEN_END).into()),
        }
        put("deleted", "0".into());
        put("t_del", "n".into());
        let zero = item
            .embedding
            .as_ref()
            .is_some_and(|e| e.vector.iter().all(|x| *x == 0.0));
        put(
            "t_vec",
            if item.embedding.is_some() { "y" } else { "n" }.into(),
        );
        put("t_zero", if zero { "y" } else { "n" }.into());
        if let Some(e) = &item.embedding {
            put("embedding_model", e.model.clone().into());
            let blob: Vec<u8> = e.vector.iter().flat_map(|x| x.to_le_bytes()).collect();
            put("vec", Value::Bytes(Bytes::from(blob)));
        }
        f
    }
}

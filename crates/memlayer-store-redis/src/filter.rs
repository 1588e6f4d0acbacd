//! A [`Filter`] translated into a RediSearch query, and the remainder checked in Rust.

use memlayer_store::types::{MemoryItem, Timestamp};
use memlayer_store::{FieldMatch, Filter, MetaCondition, MetaOp};
use serde_json::Value as Json;

use crate::client::{NO_ACCESS, NONE, RedisStore};
use crate::codec::{kv_token, num, numeric_field, token};

/// A filter translated to a RediSearch query, plus what RediSearch cannot express.
pub(crate) struct Translated {
    pub(crate) query: String,
    /// Conditions checked in Rust on every candidate (ranges over string values).
    pub(crate) residual: Vec<MetaCondition>,
    /// The filter can match nothing (a numeric range over a key never stored as a number).
    pub(crate) empty: bool,
}

impl RedisStore {
    pub(crate) fn translate(&self, namespace: &str, f: &Filter, now: Timestamp) -> Translated {
        let mut q: Vec<String> = vec![format!("@t_ns:{{{}}}", token(namespace))];
        let mut residual = Vec::new();
        let mut empty = false;
        let now = now.as_millis();
        if !f.include_deleted {
            q.push("@t_del:{n}".into());
        }
        if !f.include_expired {
            q.push(format!("@exp:[({now} +inf]"));
        }
        match f.as_of {
            Some(a) => {
                let a = a.as_millis();
                q.push(format!("@vfrom:[-inf {a}] @vto:[({a} +inf]"));
            }
            None if !f.include_superseded => q.push(format!("@t_sup:{{n}} @vto:[({now} +inf]")),
            None => {}
        }
        for (field, m) in [
            ("t_user", &f.user),
            ("t_session", &f.session),
            ("t_task", &f.task),
            ("t_agent", &f.agent),
        ] {
            match m {
                FieldMatch::Any => {}
                FieldMatch::Is(v) => q.push(format!("@{field}:{{{}}}", token(v))),
                FieldMatch::Unset => q.push(format!("@{field}:{{{NONE}}}")),
            }
        }
        if !f.kinds.is_empty() {
            let t: Vec<String> = f.kinds.iter().map(|k| token(k.as_str())).collect();
            q.push(format!("@t_kind:{{{}}}", t.join("|")));
        }
        if !f.statuses.is_empty() {
            let t: Vec<String> = f.statuses.iter().map(|s| token(s.as_str())).collect();
            q.push(format!("@t_status:{{{}}}", t.join("|")));
        }
        for t in &f.tags {
            q.push(format!("@t_tags:{{{}}}", token(t)));
        }
        for c in &f.metadata {
            match (c.op, &c.value) {
                (MetaOp::Eq, v) => match kv_token(&c.key, v) {
                    Some(t) => q.push(format!("@t_kv:{{{t}}}")),
                    None => empty = true,
                },
                (MetaOp::Ne, v) => {
                    if let Some(t) = kv_token(&c.key, v) {
                        q.push(format!("-@t_kv:{{{t}}}"));
                    }
                }
                (op, Json::Number(n)) => {
                    let field = numeric_field(&c.key);
                    if !self.knows_numeric(&field) {
                        // No index field for this key (past the cap, or added by another
                        // process since this one connected): checked on the items instead.
                        residual.push(c.clone());
                        continue;
                    }
                    let v = n.as_f64().unwrap_or(0.0);
                    let range = match op {
                        MetaOp::Gt => format!("[({v} +inf]"),
                        MetaOp::Gte => format!("[{v} +inf]"),
                        MetaOp::Lt => format!("[-inf ({v}]"),
                        _ => format!("[-inf {v}]"),
                    };
                    q.push(format!("@{field}:{range}"));
                }
                _ => residual.push(c.clone()),
            }
        }
        if !f.exclude_ids.is_empty() {
            let t: Vec<String> = f.exclude_ids.iter().map(|i| token(i)).collect();
            q.push(format!("-@t_id:{{{}}}", t.join("|")));
        }
        for (field, range, floor) in [
            ("cat", &f.created, f64::MIN),
            ("uat", &f.updated, f64::MIN),
            ("acc", &f.accessed, NO_ACCESS / 2.0),
        ] {
            if range.is_open() {
                continue;
            }
            let lo = range
                .from
                .map_or(floor, |t| (t.as_millis() as f64).max(floor));
            let lo = if lo == f64::MIN {
                "-inf".to_owned()
            } else {
                num(lo)
            };
            let hi = range
                .to
                .map_or("+inf".to_owned(), |t| t.as_millis().to_string());
            q.push(format!("@{field}:[{lo} {hi}]"));
        }
        Translated {
            query: q.join(" "),
            residual,
            empty,
        }
    }
}

impl RedisStore {
    pub(crate) fn passes(item: &MemoryItem, residual: &[MetaCondition]) -> bool {
        residual
            .iter()
            .all(|c| memlayer_store::backend::matching::meta_condition_holds(item, c))
    }
}

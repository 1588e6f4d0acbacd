//! SQL building with bound parameters (never interpolated values) and row mapping.

use std::collections::BTreeSet;

use memlayer_store::types::{Embedding, Kind, MemoryItem, Metadata, Status, Tier, Timestamp};
use memlayer_store::{FieldMatch, Filter, MetaOp, Result, SortKey};
use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error::corrupt;

/// A boxed query parameter.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// The item columns read by [`read_item`], for a table alias `i`.
pub(crate) const ITEM_COLUMNS: &str = "i.id, i.namespace, i.kind, i.content, i.status, \
    i.tool_calls, i.tool_call_id, i.tool_name, i.is_error, i.user_id, i.session_id, i.task_id, \
    i.agent_id, i.extra, i.tags, i.tier, i.expires_at, i.importance, i.confidence, \
    i.access_count, i.last_accessed_at, i.superseded_by, i.valid_from, i.valid_to, \
    i.created_at, i.updated_at, i.version, i.deleted, i.embedding_model, i.embedding::public.vector AS embedding";

/// Index of the first column after [`ITEM_COLUMNS`] (a score, when selected).
pub(crate) const SCORE_COLUMN: usize = 30;

/// A query under construction with numbered parameters.
#[derive(Default)]
pub(crate) struct Query {
    pub(crate) clauses: Vec<String>,
    pub(crate) params: Vec<Param>,
}

impl Query {
    /// Binds a value and returns its placeholder.
    pub(crate) fn bind<T: ToSql + Sync + Send + 'static>(&mut self, v: T) -> String {
        self.params.push(Box::new(v));
        format!("${}", self.params.len())
    }

    /// Adds a clause.
    pub(crate) fn and(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    /// `WHERE a AND b ...`, or nothing.
    pub(crate) fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }

    /// The parameters as the driver wants them.
    pub(crate) fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }

    fn field(&mut self, column: &str, m: &FieldMatch) {
        match m {
            FieldMatch::Any => {}
            FieldMatch::Is(v) => {
                let p = self.bind(v.clone());
                self.and(format!("{column} = {p}"));
            }
            FieldMatch::Unset => self.and(format!("{column} IS NULL")),
        }
    }

    /// Adds the namespace and every clause of the filter, evaluated at `now`.
    pub(crate) fn filter(&mut self, namespace: &str, f: &Filter, now: Timestamp) {
        let ns = self.bind(namespace.to_owned());
        self.and(format!("i.namespace = {ns}"));
        if !f.include_deleted {
            self.and("NOT i.deleted".into());
        }
        let now = now.as_millis();
        if !f.include_expired {
            let p = self.bind(now);
            self.and(format!("(i.expires_at IS NULL OR i.expires_at > {p})"));
        }
        match f.as_of {
            Some(as_of) => {
                let p = self.bind(as_of.as_millis());
                self.and(format!(
                    "(i.valid_from IS NULL OR i.valid_from <= {p}) AND (i.valid_to IS NULL OR {p} < i.valid_to)"
                ));
            }
            None if !f.include_superseded => {
                let p = self.bind(now);
                self.and(format!(
                    "i.superseded_by IS NULL AND (i.valid_to IS NULL OR i.valid_to > {p})"
                ));
            }
            None => {}
        }
        self.field("i.user_id", &f.user);
        self.field("i.session_id", &f.session);
        self.field("i.task_id", &f.task);
        self.field("i.agent_id", &f.agent);
        if !f.kinds.is_empty() {
            let kinds: Vec<String> = f.kinds.iter().map(|k| k.as_str().to_owned()).collect();
            let p = self.bind(kinds);
            self.and(format!("i.kind = ANY({p}::text[])"));
        }
        if !f.statuses.is_empty() {
            let s: Vec<String> = f.statuses.iter().map(|s| s.as_str().to_owned()).collect();
            let p = self.bind(s);
            self.and(format!("i.status = ANY({p}::text[])"));
        }
        if !f.tags.is_empty() {
            let p = self.bind(f.tags.clone());
            self.and(format!("i.tags @> {p}::text[]"));
        }
        for cond in &f.metadata {
            let key = self.bind(cond.key.clone());
            let get = format!("(i.extra -> {key})");
            let text = format!("(i.extra ->> {key})");
            let op = match cond.op {
                MetaOp::Eq | MetaOp::Ne => "=",
                MetaOp::Gt => ">",
                MetaOp::Gte => ">=",
                MetaOp::Lt => "<",
                MetaOp::Lte => "<=",
            };
            // CASE fixes the evaluation order, so a cast only ever sees a value of its type.
            let holds = match &cond.value {
                Value::Number(n) => {
                    let v = self.bind(n.as_f64().unwrap_or(0.0));
                    format!(
                        "CASE WHEN jsonb_typeof({get}) = 'number' THEN {text}::float8 {op} {v}::float8 ELSE false END"
                    )
                }
                Value::String(s) => {
                    let v = self.bind(s.clone());
                    format!(
                        "CASE WHEN jsonb_typeof({get}) = 'string' THEN {text} COLLATE \"C\" {op} {v}::text COLLATE \"C\" ELSE false END"
                    )
                }
                Value::Bool(b) => {
                    let v = self.bind(*b);
                    format!(
                        "CASE WHEN jsonb_typeof({get}) = 'boolean' THEN {text}::boolean = {v}::boolean ELSE false END"
                    )
                }
                // Rejected by validation before any SQL is built.
                _ => "false".to_owned(),
            };
            let clause = if cond.op == MetaOp::Ne {
                format!("NOT ({holds})")
            } else {
                format!("({holds})")
            };
            self.and(clause);
        }
        if !f.exclude_ids.is_empty() {
            let p = self.bind(f.exclude_ids.clone());
            self.and(format!("NOT (i.id = ANY({p}::text[]))"));
        }
        for (column, range) in [
            ("i.created_at", &f.created),
            ("i.updated_at", &f.updated),
            ("i.last_accessed_at", &f.accessed),
        ] {
            if let Some(from) = range.from {
                let p = self.bind(from.as_millis());
                self.and(format!("{column} >= {p}"));
            }
            if let Some(to) = range.to {
                let p = self.bind(to.as_millis());
                self.and(format!("{column} <= {p}"));
            }
        }
    }
}

/// The SQL expression of a sort key (same order as `SortKey::value_of`).
pub(crate) fn sort_expr(key: SortKey) -> &'static str {
    match key {
        SortKey::Created => "i.created_at",
        SortKey::Updated => "i.updated_at",
        SortKey::Accessed => "COALESCE(i.last_accessed_at, -9223372036854775808)",
        SortKey::AccessCount => "i.access_count",
        SortKey::Importance => "i.importance::float8",
    }
}

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_millis)
}

/// Maps a row selected with [`ITEM_COLUMNS`].
pub(crate) fn read_item(row: &Row) -> Result<MemoryItem> {
    let get_err = |e: tokio_postgres::Error| corrupt("row", e);
    let status: String = row.try_get(4).map_err(get_err)?;
    let tier: String = row.try_get(15).map_err(get_err)?;
    let tool_calls: Value = row.try_get(5).map_err(get_err)?;
    let tool_calls = match tool_calls {
        Value::Array(a) => a,
        other => return Err(corrupt("tool_calls", other)),
    };
    let extra: Value = row.try_get(13).map_err(get_err)?;
    let extra = match extra {
        Value::Object(m) => m,
        other => return Err(corrupt("extra", other)),
    };
    let tags: Vec<String> = row.try_get(14).map_err(get_err)?;
    let model: Option<String> = row.try_get(28).map_err(get_err)?;
    let vector: Option<pgvector::Vector> = row.try_get(29).map_err(get_err)?;
    let embedding = match (model, vector) {
        (Some(m), Some(v)) => Some(Embedding::new(m, v.to_vec())),
        _ => None,
    };
    let access_count: i64 = row.try_get(19).map_err(get_err)?;
    let version: i64 = row.try_get(26).map_err(get_err)?;
    Ok(MemoryItem {
        id: row.try_get(0).map_err(get_err)?,
        namespace: row.try_get(1).map_err(get_err)?,
        kind: Kind::parse(row.try_get::<_, &str>(2).map_err(get_err)?),
        content: row.try_get(3).map_err(get_err)?,
        status: Status::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        tool_calls,
        tool_call_id: row.try_get(6).map_err(get_err)?,
        tool_name: row.try_get(7).map_err(get_err)?,
        is_error: row.try_get(8).map_err(get_err)?,
        metadata: Metadata {
            user_id: row.try_get(9).map_err(get_err)?,
            session_id: row.try_get(10).map_err(get_err)?,
            task_id: row.try_get(11).map_err(get_err)?,
            agent_id: row.try_get(12).map_err(get_err)?,
            extra,
        },
        tags: tags.into_iter().collect::<BTreeSet<_>>(),
        tier: Tier::parse(&tier).ok_or_else(|| corrupt("tier", &tier))?,
        expires_at: ts(row.try_get(16).map_err(get_err)?),
        importance: row.try_get(17).map_err(get_err)?,
        confidence: row.try_get(18).map_err(get_err)?,
        access_count: u64::try_from(access_count).unwrap_or(0),
        last_accessed_at: ts(row.try_get(20).map_err(get_err)?),
        superseded_by: row.try_get(21).map_err(get_err)?,
        valid_from: ts(row.try_get(22).map_err(get_err)?),
        valid_to: ts(row.try_get(23).map_err(get_err)?),
        created_at: Timestamp::from_millis(row.try_get(24).map_err(get_err)?),
        updated_at: Timestamp::from_millis(row.try_get(25).map_err(get_err)?),
        version: u64::try_from(version).unwrap_or(0),
        deleted: row.try_get(27).map_err(get_err)?,
        embedding,
    })
}

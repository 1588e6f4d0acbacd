//! SQL building (every value bound, never interpolated) and row mapping.

use std::collections::BTreeSet;

use memlayer_store::types::{Embedding, Kind, MemoryItem, Metadata, Status, Tier, Timestamp};
use memlayer_store::{FieldMatch, Filter, MetaOp, Result, SortKey};
use rusqlite::Row;
use rusqlite::types::Value as SqlValue;
use serde_json::Value;

use crate::error::corrupt;
use crate::vectors::{from_blob, to_blob};

macro_rules! item_columns {
    () => {
        "i.id, i.namespace, i.kind, i.content, i.status, \
    i.tool_calls, i.tool_call_id, i.tool_name, i.is_error, i.user_id, i.session_id, i.task_id, \
    i.agent_id, i.extra, i.tags, i.tier, i.expires_at, i.importance, i.confidence, \
    i.access_count, i.last_accessed_at, i.superseded_by, i.valid_from, i.valid_to, \
    i.created_at, i.updated_at, i.version, i.deleted, i.embedding_model"
    };
}

/// The item columns, in the order [`read_item`] expects, as selected from alias `i`.
pub(crate) const ITEM_COLUMNS: &str = item_columns!();

/// Number of columns in [`ITEM_COLUMNS`]; the vector blob (or NULL) follows them.
pub(crate) const VECTOR_COLUMN: usize = 29;

/// Every column a write stores: [`ITEM_COLUMNS`] and the vector blob, in
/// [`item_values`]'s order.
pub(crate) const STORED_COLUMNS: &str = concat!(item_columns!(), ", i.embedding");

/// A query under construction: numbered parameters, so clauses can be added in any order.
#[derive(Default)]
pub(crate) struct Query {
    pub(crate) clauses: Vec<String>,
    pub(crate) params: Vec<SqlValue>,
}

impl Query {
    /// Binds a value and returns its placeholder.
    pub(crate) fn bind(&mut self, v: impl Into<SqlValue>) -> String {
        self.params.push(v.into());
        format!("?{}", self.params.len())
    }

    pub(crate) fn bind_list<T: Into<SqlValue> + Clone>(&mut self, values: &[T]) -> String {
        values
            .iter()
            .map(|v| self.bind(v.clone()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Adds a clause.
    pub(crate) fn and(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    /// `WHERE a AND b ...` (or nothing).
    pub(crate) fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
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
            self.and("i.deleted = 0".into());
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
            let list = self.bind_list(&kinds);
            self.and(format!("i.kind IN ({list})"));
        }
        if !f.statuses.is_empty() {
            let statuses: Vec<String> = f.statuses.iter().map(|s| s.as_str().to_owned()).collect();
            let list = self.bind_list(&statuses);
            self.and(format!("i.status IN ({list})"));
        }
        for tag in &f.tags {
            let p = self.bind(tag.clone());
            self.and(format!(
                "EXISTS (SELECT 1 FROM json_each(i.tags) WHERE value = {p})"
            ));
        }
        for cond in &f.metadata {
            let key = self.bind(cond.key.clone());
            let (typed, operand) = match &cond.value {
                Value::Number(n) => (
                    "je.type IN ('integer', 'real')".to_owned(),
                    Some(self.bind(n.as_f64().unwrap_or(0.0))),
                ),
                Value::String(s) => ("je.type = 'text'".to_owned(), Some(self.bind(s.clone()))),
                Value::Bool(true) => ("je.type = 'true'".to_owned(), None),
                Value::Bool(false) => ("je.type = 'false'".to_owned(), None),
                // Rejected by validation before any SQL is built.
                _ => ("0".to_owned(), None),
            };
            let compare = |op: &str| match &operand {
                Some(p) => format!("{typed} AND je.value {op} {p}"),
                None => typed.clone(),
            };
            let exists = |cmp: String| {
                format!(
                    "EXISTS (SELECT 1 FROM json_each(i.extra) je WHERE je.key = {key} AND {cmp})"
                )
            };
            let clause = match cond.op {
                MetaOp::Eq => exists(compare("=")),
                MetaOp::Ne => format!("NOT {}", exists(compare("="))),
                MetaOp::Gt => exists(compare(">")),
                MetaOp::Gte => exists(compare(">=")),
                MetaOp::Lt => exists(compare("<")),
                MetaOp::Lte => exists(compare("<=")),
            };
            self.and(clause);
        }
        if !f.exclude_ids.is_empty() {
            let list = self.bind_list(&f.exclude_ids);
            self.and(format!("i.id NOT IN ({list})"));
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

/// The SQL expression of a sort key, matching `SortKey::value_of`.
pub(crate) fn sort_expr(key: SortKey) -> &'static str {
    match key {
        SortKey::Created => "i.created_at",
        SortKey::Updated => "i.updated_at",
        SortKey::Accessed => "COALESCE(i.last_accessed_at, -9223372036854775808)",
        SortKey::AccessCount => "i.access_count",
        SortKey::Importance => "i.importance",
    }
}

fn opt_ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_millis)
}

/// Maps a row selected with [`ITEM_COLUMNS`] followed by the vector blob (or NULL).
pub(crate) fn read_item(row: &Row<'_>) -> Result<MemoryItem> {
    let sql = crate::error::map_sqlite;
    let text = |i: usize| -> Result<String> { row.get(i).map_err(sql) };
    let opt = |i: usize| -> Result<Option<String>> { row.get(i).map_err(sql) };
    let int = |i: usize| -> Result<Option<i64>> { row.get(i).map_err(sql) };
    let status = text(4)?;
    let tier = text(15)?;
    let tool_calls: Vec<Value> =
        serde_json::from_str(&text(5)?).map_err(|e| corrupt("tool_calls", e))?;
    let extra: serde_json::Map<String, Value> =
        serde_json::from_str(&text(13)?).map_err(|e| corrupt("extra", e))?;
    let tags: BTreeSet<String> =
        serde_json::from_str(&text(14)?).map_err(|e| corrupt("tags", e))?;
    let model = opt(28)?;
    let blob: Option<Vec<u8>> = row.get(VECTOR_COLUMN).map_err(sql)?;
    let embedding = match (model, blob) {
        (Some(model), Some(b)) => Some(Embedding::new(model, from_blob(&b))),
        _ => None,
    };
    let importance: f64 = row.get(17).map_err(sql)?;
    let confidence: f64 = row.get(18).map_err(sql)?;
    let access_count: i64 = row.get(19).map_err(sql)?;
    let version: i64 = row.get(26).map_err(sql)?;
    let is_error: Option<i64> = int(8)?;
    Ok(MemoryItem {
        id: text(0)?,
        namespace: text(1)?,
        kind: Kind::parse(&text(2)?),
        content: text(3)?,
        status: Status::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        tool_calls,
        tool_call_id: opt(6)?,
        tool_name: opt(7)?,
        is_error: is_error.map(|v| v != 0),
        metadata: Metadata {
            user_id: opt(9)?,
            session_id: opt(10)?,
            task_id: opt(11)?,
            agent_id: opt(12)?,
            extra,
        },
        tags,
        tier: Tier::parse(&tier).ok_or_else(|| corrupt("tier", &tier))?,
        expires_at: opt_ts(int(16)?),
        importance: importance as f32,
        confidence: confidence as f32,
        access_count: u64::try_from(access_count).unwrap_or(0),
        last_accessed_at: opt_ts(int(20)?),
        superseded_by: opt(21)?,
        valid_from: opt_ts(int(22)?),
        valid_to: opt_ts(int(23)?),
        created_at: Timestamp::from_millis(row.get(24).map_err(sql)?),
        updated_at: Timestamp::from_millis(row.get(25).map_err(sql)?),
        version: u64::try_from(version).unwrap_or(0),
        deleted: row.get::<_, i64>(27).map_err(sql)? != 0,
        embedding,
    })
}

/// The values of an item for `INSERT` / `UPDATE`, in [`ITEM_COLUMNS`] order.
pub(crate) fn item_values(item: &MemoryItem) -> Result<Vec<SqlValue>> {
    let ts = |t: Option<Timestamp>| t.map_or(SqlValue::Null, |t| SqlValue::Integer(t.as_millis()));
    let s = |v: &Option<String>| v.clone().map_or(SqlValue::Null, SqlValue::Text);
    Ok(vec![
        SqlValue::Text(item.id.clone()),
        SqlValue::Text(item.namespace.clone()),
        SqlValue::Text(item.kind.as_str().to_owned()),
        SqlValue::Text(item.content.clone()),
        SqlValue::Text(item.status.as_str().to_owned()),
        SqlValue::Text(
            serde_json::to_string(&item.tool_calls).map_err(|e| corrupt("tool_calls", e))?,
        ),
        s(&item.tool_call_id),
        s(&item.tool_name),
        item.is_error
            .map_or(SqlValue::Null, |b| SqlValue::Integer(i64::from(b))),
        s(&item.metadata.user_id),
        s(&item.metadata.session_id),
        s(&item.metadata.task_id),
        s(&item.metadata.agent_id),
        SqlValue::Text(
            serde_json::to_string(&item.metadata.extra).map_err(|e| corrupt("extra", e))?,
        ),
        SqlValue::Text(serde_json::to_string(&item.tags).map_err(|e| corrupt("tags", e))?),
        SqlValue::Text(item.tier.as_str().to_owned()),
        ts(item.expires_at),
        SqlValue::Real(f64::from(item.importance)),
        SqlValue::Real(f64::from(item.confidence)),
        SqlValue::Integer(i64::try_from(item.access_count).unwrap_or(i64::MAX)),
        ts(item.last_accessed_at),
        s(&item.superseded_by),
        ts(item.valid_from),
        ts(item.valid_to),
        SqlValue::Integer(item.created_at.as_millis()),
        SqlValue::Integer(item.updated_at.as_millis()),
        SqlValue::Integer(i64::try_from(item.version).unwrap_or(i64::MAX)),
        SqlValue::Integer(i64::from(item.deleted)),
        item.embedding
            .as_ref()
            .map_or(SqlValue::Null, |e| SqlValue::Text(e.model.clone())),
        item.embedding
            .as_ref()
            .map_or(SqlValue::Null, |e| SqlValue::Blob(to_blob(&e.vector))),
    ])
}

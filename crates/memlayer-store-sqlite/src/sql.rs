//! SQL building (every value bound, never interpolated) and row mapping.

use std::collections::BTreeSet;

use memlayer_store::backend::sql::{self, ItemRow, SqlDialect};
use memlayer_store::types::{MemoryItem, Timestamp};
use memlayer_store::{MetaCondition, MetaOp, Result, SortKey};
use rusqlite::Row;
use rusqlite::types::Value as SqlValue;
use serde_json::Value;

use crate::error::corrupt;
use crate::vectors::{from_blob, to_blob};

/// The item columns, in the order [`read_item`] expects, as selected from alias `i`.
pub(crate) const ITEM_COLUMNS: &str = sql::ITEM_COLUMNS;

/// Every column a write stores: [`ITEM_COLUMNS`] and the vector blob, in
/// [`item_values`]'s order.
pub(crate) const STORED_COLUMNS: &str =
    concat!(memlayer_store::sql_item_columns!(), ", i.embedding");

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
}

impl SqlDialect for Query {
    fn bind_text(&mut self, v: String) -> String {
        self.bind(v)
    }

    fn bind_int(&mut self, v: i64) -> String {
        self.bind(v)
    }

    fn clauses(&self) -> &[String] {
        &self.clauses
    }

    fn and(&mut self, clause: String) {
        self.clauses.push(clause);
    }

    fn live(&self) -> &'static str {
        "i.deleted = 0"
    }

    fn one_of(&mut self, column: &str, values: Vec<String>) -> String {
        let list = self.bind_list(&values);
        format!("{column} IN ({list})")
    }

    fn has_tags(&mut self, tags: &[String]) -> String {
        let each: Vec<String> = tags
            .iter()
            .map(|tag| {
                let p = self.bind(tag.clone());
                format!("EXISTS (SELECT 1 FROM json_each(i.tags) WHERE value = {p})")
            })
            .collect();
        each.join(" AND ")
    }

    fn metadata(&mut self, cond: &MetaCondition) -> String {
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
            format!("EXISTS (SELECT 1 FROM json_each(i.extra) je WHERE je.key = {key} AND {cmp})")
        };
        match cond.op {
            MetaOp::Eq => exists(compare("=")),
            MetaOp::Ne => format!("NOT {}", exists(compare("="))),
            MetaOp::Gt => exists(compare(">")),
            MetaOp::Gte => exists(compare(">=")),
            MetaOp::Lt => exists(compare("<")),
            MetaOp::Lte => exists(compare("<=")),
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

/// A row of [`ITEM_COLUMNS`] and the vector blob, in SQLite's types.
struct SqliteRow<'a, 'r>(&'a Row<'r>);

impl SqliteRow<'_, '_> {
    fn get<T: rusqlite::types::FromSql>(&self, i: usize) -> Result<T> {
        self.0.get(i).map_err(crate::error::map_sqlite)
    }

    fn json_text(&self, i: usize) -> Result<Value> {
        let text: String = self.get(i)?;
        serde_json::from_str(&text).map_err(|e| corrupt(sql::column_name(i), e))
    }
}

impl ItemRow for SqliteRow<'_, '_> {
    fn text(&self, i: usize) -> Result<String> {
        self.get(i)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        self.get(i)
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        self.get(i)
    }

    fn float(&self, i: usize) -> Result<f64> {
        self.get(i)
    }

    fn opt_bool(&self, i: usize) -> Result<Option<bool>> {
        Ok(self.get::<Option<i64>>(i)?.map(|v| v != 0))
    }

    fn json(&self, i: usize) -> Result<Value> {
        self.json_text(i)
    }

    fn tags(&self, i: usize) -> Result<BTreeSet<String>> {
        serde_json::from_value(self.json_text(i)?).map_err(|e| corrupt(sql::column_name(i), e))
    }

    fn vector(&self, i: usize) -> Result<Option<Vec<f32>>> {
        Ok(self.get::<Option<Vec<u8>>>(i)?.map(|b| from_blob(&b)))
    }
}

/// Maps a row selected with [`ITEM_COLUMNS`] followed by the vector blob (or NULL).
pub(crate) fn read_item(row: &Row<'_>) -> Result<MemoryItem> {
    sql::read_item(&SqliteRow(row)).map_err(|e| e.with_backend(crate::client::BACKEND))
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

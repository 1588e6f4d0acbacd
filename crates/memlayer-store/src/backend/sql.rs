//! What the SQL backends share: the filter's clauses and the reading of an item's row.
//!
//! Postgres and SQLite store the same columns and apply the same filter; they differ only in
//! dialect (placeholders, booleans, lists, JSON). Each backend's query builder implements
//! [`SqlDialect`] and its row type implements [`ItemRow`], and the clauses and the mapping live
//! here once, so a new filter field or item column is added in one place.

use std::collections::BTreeSet;

use memlayer_types::{Embedding, Kind, MemoryItem, Metadata, Status, Tier, Timestamp};
use serde_json::Value;

use crate::{Error, ErrorKind, FieldMatch, Filter, MetaCondition, Result};

/// A SQL dialect's query builder: it binds values (never interpolating them) and collects the
/// `AND`ed clauses of a `WHERE`.
pub trait SqlDialect {
    /// Binds a string and returns its placeholder.
    fn bind_text(&mut self, v: String) -> String;
    /// Binds an integer and returns its placeholder.
    fn bind_int(&mut self, v: i64) -> String;
    /// The clauses added so far.
    fn clauses(&self) -> &[String];
    /// Adds a clause.
    fn and(&mut self, clause: String);
    /// The clause that holds for an item that is not soft-deleted (alias `i`).
    fn live(&self) -> &'static str;
    /// The clause that holds when `column` is one of `values` (never empty).
    fn one_of(&mut self, column: &str, values: Vec<String>) -> String;
    /// The clause that holds when the item's tags include `tags` (never empty).
    fn has_tags(&mut self, tags: &[String]) -> String;
    /// The clause that holds when the item's metadata meets `cond` (already validated).
    fn metadata(&mut self, cond: &MetaCondition) -> String;

    /// `WHERE a AND b ...`, or nothing.
    fn where_sql(&self) -> String {
        let clauses = self.clauses();
        if clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", clauses.join(" AND "))
        }
    }

    /// Adds the namespace and every clause of the filter, evaluated at `now`
    /// ([`filter_clauses`]).
    fn filter(&mut self, namespace: &str, f: &Filter, now: Timestamp) {
        filter_clauses(self, namespace, f, now);
    }
}

fn field<D: SqlDialect + ?Sized>(q: &mut D, column: &str, m: &FieldMatch) {
    match m {
        FieldMatch::Any => {}
        FieldMatch::Is(v) => {
            let p = q.bind_text(v.clone());
            q.and(format!("{column} = {p}"));
        }
        FieldMatch::Unset => q.and(format!("{column} IS NULL")),
    }
}

/// Adds to `q` the namespace and every clause of the filter, evaluated at `now`, over the
/// items table aliased `i`.
pub fn filter_clauses<D: SqlDialect + ?Sized>(
    q: &mut D,
    namespace: &str,
    f: &Filter,
    now: Timestamp,
) {
    let ns = q.bind_text(namespace.to_owned());
    q.and(format!("i.namespace = {ns}"));
    if !f.include_deleted {
        let live = q.live();
        q.and(live.to_owned());
    }
    let now = now.as_millis();
    if !f.include_expired {
        let p = q.bind_int(now);
        q.and(format!("(i.expires_at IS NULL OR i.expires_at > {p})"));
    }
    match f.as_of {
        Some(as_of) => {
            let p = q.bind_int(as_of.as_millis());
            q.and(format!(
                "(i.valid_from IS NULL OR i.valid_from <= {p}) AND (i.valid_to IS NULL OR {p} < i.valid_to)"
            ));
        }
        None if !f.include_superseded => {
            let p = q.bind_int(now);
            q.and(format!(
                "i.superseded_by IS NULL AND (i.valid_to IS NULL OR i.valid_to > {p})"
            ));
        }
        None => {}
    }
    field(q, "i.user_id", &f.user);
    field(q, "i.session_id", &f.session);
    field(q, "i.task_id", &f.task);
    field(q, "i.agent_id", &f.agent);
    if !f.kinds.is_empty() {
        let kinds = f.kinds.iter().map(|k| k.as_str().to_owned()).collect();
        let clause = q.one_of("i.kind", kinds);
        q.and(clause);
    }
    if !f.statuses.is_empty() {
        let statuses = f.statuses.iter().map(|s| s.as_str().to_owned()).collect();
        let clause = q.one_of("i.status", statuses);
        q.and(clause);
    }
    if !f.tags.is_empty() {
        let clause = q.has_tags(&f.tags);
        q.and(clause);
    }
    for cond in &f.metadata {
        let clause = q.metadata(cond);
        q.and(clause);
    }
    if !f.exclude_ids.is_empty() {
        let listed = q.one_of("i.id", f.exclude_ids.clone());
        q.and(format!("NOT ({listed})"));
    }
    for (column, range) in [
        ("i.created_at", &f.created),
        ("i.updated_at", &f.updated),
        ("i.last_accessed_at", &f.accessed),
    ] {
        if let Some(from) = range.from {
            let p = q.bind_int(from.as_millis());
            q.and(format!("{column} >= {p}"));
        }
        if let Some(to) = range.to {
            let p = q.bind_int(to.as_millis());
            q.and(format!("{column} <= {p}"));
        }
    }
}

/// The item columns as a string literal, for `concat!` (a backend appends its vector column).
#[doc(hidden)]
#[macro_export]
macro_rules! sql_item_columns {
    () => {
        "i.id, i.namespace, i.kind, i.content, i.status, \
    i.tool_calls, i.tool_call_id, i.tool_name, i.is_error, i.user_id, i.session_id, i.task_id, \
    i.agent_id, i.extra, i.tags, i.tier, i.expires_at, i.importance, i.confidence, \
    i.access_count, i.last_accessed_at, i.superseded_by, i.valid_from, i.valid_to, \
    i.created_at, i.updated_at, i.version, i.deleted, i.embedding_model"
    };
}

/// The item columns, in the order [`read_item`] reads them, selected from alias `i`; the
/// embedding's vector follows them in a form each backend selects its own way.
pub const ITEM_COLUMNS: &str = sql_item_columns!();

/// The index of the vector column, right after [`ITEM_COLUMNS`].
pub const VECTOR_COLUMN: usize = 29;

/// One row selected with [`ITEM_COLUMNS`] and the vector, read column by column in the
/// driver's own types.
pub trait ItemRow {
    /// A non-null text column.
    fn text(&self, i: usize) -> Result<String>;
    /// A nullable text column.
    fn opt_text(&self, i: usize) -> Result<Option<String>>;
    /// A nullable integer column.
    fn opt_int(&self, i: usize) -> Result<Option<i64>>;
    /// A non-null floating-point column.
    fn float(&self, i: usize) -> Result<f64>;
    /// A nullable boolean column.
    fn opt_bool(&self, i: usize) -> Result<Option<bool>>;
    /// A JSON column.
    fn json(&self, i: usize) -> Result<Value>;
    /// A column of tags.
    fn tags(&self, i: usize) -> Result<BTreeSet<String>>;
    /// The vector column.
    fn vector(&self, i: usize) -> Result<Option<Vec<f32>>>;

    /// A non-null integer column.
    fn int(&self, i: usize) -> Result<i64> {
        self.opt_int(i)?
            .ok_or_else(|| corrupt(column_name(i), "NULL"))
    }
    /// A non-null boolean column.
    fn bool(&self, i: usize) -> Result<bool> {
        self.opt_bool(i)?
            .ok_or_else(|| corrupt(column_name(i), "NULL"))
    }
}

/// The name of column `i` of [`ITEM_COLUMNS`], for error messages.
pub fn column_name(i: usize) -> &'static str {
    ITEM_COLUMNS
        .split(", ")
        .nth(i)
        .map_or("embedding", |c| c.trim().trim_start_matches("i."))
}

/// A stored value that does not decode: the data is corrupt, not the caller's input.
pub fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Unexpected,
        format!("stored {what} does not parse: {detail}"),
    )
}

fn ts(v: Option<i64>) -> Option<Timestamp> {
    v.map(Timestamp::from_millis)
}

/// Maps a row selected with [`ITEM_COLUMNS`] followed by the vector.
pub fn read_item<R: ItemRow + ?Sized>(row: &R) -> Result<MemoryItem> {
    let status = row.text(4)?;
    let tier = row.text(15)?;
    let tool_calls = match row.json(5)? {
        Value::Array(a) => a,
        other => return Err(corrupt("tool_calls", other)),
    };
    let extra = match row.json(13)? {
        Value::Object(m) => m,
        other => return Err(corrupt("extra", other)),
    };
    let embedding = match (row.opt_text(28)?, row.vector(VECTOR_COLUMN)?) {
        (Some(model), Some(v)) => Some(Embedding::new(model, v)),
        _ => None,
    };
    Ok(MemoryItem {
        id: row.text(0)?,
        namespace: row.text(1)?,
        kind: Kind::parse(&row.text(2)?),
        content: row.text(3)?,
        status: Status::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        tool_calls,
        tool_call_id: row.opt_text(6)?,
        tool_name: row.opt_text(7)?,
        is_error: row.opt_bool(8)?,
        metadata: Metadata {
            user_id: row.opt_text(9)?,
            session_id: row.opt_text(10)?,
            task_id: row.opt_text(11)?,
            agent_id: row.opt_text(12)?,
            extra,
        },
        tags: row.tags(14)?,
        tier: Tier::parse(&tier).ok_or_else(|| corrupt("tier", &tier))?,
        expires_at: ts(row.opt_int(16)?),
        importance: row.float(17)? as f32,
        confidence: row.float(18)? as f32,
        access_count: u64::try_from(row.int(19)?).unwrap_or(0),
        last_accessed_at: ts(row.opt_int(20)?),
        superseded_by: row.opt_text(21)?,
        valid_from: ts(row.opt_int(22)?),
        valid_to: ts(row.opt_int(23)?),
        created_at: Timestamp::from_millis(row.int(24)?),
        updated_at: Timestamp::from_millis(row.int(25)?),
        version: u64::try_from(row.int(26)?).unwrap_or(0),
        deleted: row.bool(27)?,
        embedding,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_follow_the_select_list() {
        assert_eq!(column_name(0), "id");
        assert_eq!(column_name(27), "deleted");
        assert_eq!(column_name(28), "embedding_model");
        assert_eq!(column_name(VECTOR_COLUMN), "embedding");
    }
}

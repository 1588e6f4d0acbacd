//! SQL building with bound parameters (never interpolated values) and row mapping.

use std::collections::BTreeSet;

use memlayer_store::backend::sql::{self, ItemRow, SqlDialect};
use memlayer_store::types::MemoryItem;
use memlayer_store::{MetaCondition, MetaOp, Result, SortKey};
use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql};

use crate::error::corrupt;

/// A boxed query parameter.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// The item columns read by [`read_item`], for a table alias `i`: memlayer's SQL columns and
/// the vector.
pub(crate) const ITEM_COLUMNS: &str = concat!(
    memlayer_store::sql_item_columns!(),
    ", i.embedding::public.vector AS embedding"
);

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

    /// The parameters as the driver wants them.
    pub(crate) fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
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
        "NOT i.deleted"
    }

    fn one_of(&mut self, column: &str, values: Vec<String>) -> String {
        let p = self.bind(values);
        format!("{column} = ANY({p}::text[])")
    }

    fn has_tags(&mut self, tags: &[String]) -> String {
        let p = self.bind(tags.to_vec());
        format!("i.tags @> {p}::text[]")
    }

    fn metadata(&mut self, cond: &MetaCondition) -> String {
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
        if cond.op == MetaOp::Ne {
            format!("NOT ({holds})")
        } else {
            format!("({holds})")
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

/// A row of [`ITEM_COLUMNS`], in tokio-postgres's types.
struct PgRow<'a>(&'a Row);

fn get<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<T> {
    row.try_get(i).map_err(|e| corrupt(sql::column_name(i), e))
}

/// Column `i` of a row that is not an item's (a count, a name), read without panicking: a
/// value of another type is an error naming the column.
pub(crate) fn column<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<T> {
    row.try_get(i)
        .map_err(|e| corrupt(&format!("column {i}"), e))
}

impl ItemRow for PgRow<'_> {
    fn text(&self, i: usize) -> Result<String> {
        get(self.0, i)
    }

    fn opt_text(&self, i: usize) -> Result<Option<String>> {
        get(self.0, i)
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>> {
        get(self.0, i)
    }

    fn float(&self, i: usize) -> Result<f64> {
        // importance and confidence are `real` columns.
        get::<f32>(self.0, i).map(f64::from)
    }

    fn opt_bool(&self, i: usize) -> Result<Option<bool>> {
        get(self.0, i)
    }

    fn json(&self, i: usize) -> Result<Value> {
        get(self.0, i)
    }

    fn tags(&self, i: usize) -> Result<BTreeSet<String>> {
        get::<Vec<String>>(self.0, i).map(|t| t.into_iter().collect())
    }

    fn vector(&self, i: usize) -> Result<Option<Vec<f32>>> {
        get::<Option<pgvector::Vector>>(self.0, i).map(|v| v.map(|v| v.to_vec()))
    }
}

/// Maps a row selected with [`ITEM_COLUMNS`].
pub(crate) fn read_item(row: &Row) -> Result<MemoryItem> {
    sql::read_item(&PgRow(row)).map_err(|e| e.with_backend(crate::client::BACKEND))
}

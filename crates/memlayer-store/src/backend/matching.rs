//! The reference semantics of [`Filter`], evaluated in Rust.
//!
//! In-process backends use it directly; query-language backends translate the same rules and
//! the conformance suite checks they agree.

use std::cmp::Ordering;

use memlayer_types::{MemoryItem, Timestamp};
use serde_json::Value;

use crate::{Filter, MetaCondition, MetaOp};

/// Compares two JSON scalars of the same type: numbers as numbers, strings bytewise,
/// booleans by value. Different types (or non-scalars) do not compare.
pub fn compare_scalars(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// Whether an item's caller metadata satisfies one condition.
pub fn meta_condition_holds(item: &MemoryItem, cond: &MetaCondition) -> bool {
    let ord = item
        .metadata
        .extra
        .get(&cond.key)
        .and_then(|v| compare_scalars(v, &cond.value));
    match cond.op {
        MetaOp::Eq => ord == Some(Ordering::Equal),
        MetaOp::Ne => ord != Some(Ordering::Equal),
        MetaOp::Gt => ord == Some(Ordering::Greater),
        MetaOp::Gte => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
        MetaOp::Lt => ord == Some(Ordering::Less),
        MetaOp::Lte => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
    }
}

/// Whether an item is superseded at `now`: replaced by another, or its validity ended.
pub fn is_superseded(item: &MemoryItem, now: Timestamp) -> bool {
    item.superseded_by.is_some() || item.valid_to.is_some_and(|t| t <= now)
}

impl Filter {
    /// Whether `item` (already known to be in the right namespace) passes, evaluated at `now`.
    pub fn matches(&self, item: &MemoryItem, now: Timestamp) -> bool {
        if item.deleted && !self.include_deleted {
            return false;
        }
        if !self.include_expired && item.is_expired_at(now) {
            return false;
        }
        match self.as_of {
            Some(as_of) => {
                if !item.is_valid_at(as_of) {
                    return false;
                }
            }
            None => {
                if !self.include_superseded && is_superseded(item, now) {
                    return false;
                }
            }
        }
        let m = &item.metadata;
        self.user.accepts(m.user_id.as_deref())
            && self.session.accepts(m.session_id.as_deref())
            && self.task.accepts(m.task_id.as_deref())
            && self.agent.accepts(m.agent_id.as_deref())
            && (self.kinds.is_empty() || self.kinds.contains(&item.kind))
            && (self.statuses.is_empty() || self.statuses.contains(&item.status))
            && self.tags.iter().all(|t| item.tags.contains(t))
            && self.metadata.iter().all(|c| meta_condition_holds(item, c))
            && !self.exclude_ids.contains(&item.id)
            && self.created.contains(Some(item.created_at))
            && self.updated.contains(Some(item.updated_at))
            && self.accessed.contains(item.last_accessed_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memlayer_types::Kind;
    use serde_json::json;

    #[test]
    fn numbers_compare_as_numbers() {
        let item = MemoryItem::new("n", Kind::Fact, "x")
            .with_extra("n", 10)
            .with_extra("s", "10");
        let now = Timestamp::now();
        assert!(Filter::new().meta("n", MetaOp::Gt, 9).matches(&item, now));
        assert!(Filter::new().meta_eq("n", json!(10.0)).matches(&item, now));
        assert!(!Filter::new().meta_eq("s", 10).matches(&item, now));
        assert!(Filter::new().meta_ne("missing", 1).matches(&item, now));
        assert!(
            !Filter::new()
                .meta("missing", MetaOp::Lt, 1)
                .matches(&item, now)
        );
    }
}

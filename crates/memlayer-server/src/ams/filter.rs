//! AMS field filters: a condition on a field's values, and on a time field.

use axum::response::Response;
use memlayer::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use super::{invalid, parse_time};

/// One AMS field filter. Every spelling is a condition on the field's set of values (one value
/// for session, user, namespace and memory type; a list for topics and entities):
/// `eq` contains, `ne`/`not_eq` does not contain, `any`/`in_` meets, `all` includes,
/// `none`/`not_in` misses.
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct Match {
    pub(super) eq: Option<String>,
    #[serde(alias = "not_eq")]
    pub(super) ne: Option<String>,
    #[serde(alias = "in_")]
    pub(super) any: Option<Vec<String>>,
    pub(super) all: Option<Vec<String>>,
    #[serde(alias = "not_in")]
    pub(super) none: Option<Vec<String>>,
}

impl Match {
    pub(crate) fn accepts<'a>(&self, values: impl Iterator<Item = &'a str> + Clone) -> bool {
        let has = |x: &str| values.clone().any(|v| v == x);
        self.eq.as_deref().is_none_or(has)
            && self.ne.as_deref().is_none_or(|x| !has(x))
            && self.any.as_ref().is_none_or(|xs| xs.iter().any(|x| has(x)))
            && self.all.as_ref().is_none_or(|xs| xs.iter().all(|x| has(x)))
            && self
                .none
                .as_ref()
                .is_none_or(|xs| !xs.iter().any(|x| has(x)))
    }

    /// The single value this filter pins, if it pins one.
    pub(crate) fn pinned(&self) -> Option<&str> {
        match (&self.eq, &self.any) {
            (Some(x), _) => Some(x),
            (None, Some(xs)) if xs.len() == 1 => xs.first().map(String::as_str),
            _ => None,
        }
    }
}

/// A field filter given as a filter object, or as a bare value meaning `eq`.
pub(super) fn match_or_value<'de, D>(d: D) -> Result<Option<Match>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Value(String),
        Filter(Match),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => None,
        Some(Either::Value(v)) => Some(Match {
            eq: Some(v),
            ..Match::default()
        }),
        Some(Either::Filter(m)) => Some(m),
    })
}

/// A datetime filter: `gt`, `gte`, `lt`, `lte`, `eq`, `ne`, `between: [from, to]`.
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub(super) struct TimeMatch {
    gt: Option<Value>,
    gte: Option<Value>,
    lt: Option<Value>,
    lte: Option<Value>,
    eq: Option<Value>,
    ne: Option<Value>,
    between: Option<Vec<Value>>,
}

/// A datetime filter with its instants parsed.
#[derive(Default, Clone, Debug)]
pub(crate) struct Times {
    pub(crate) gt: Option<Timestamp>,
    pub(crate) gte: Option<Timestamp>,
    pub(crate) lt: Option<Timestamp>,
    pub(crate) lte: Option<Timestamp>,
    pub(crate) eq: Option<Timestamp>,
    pub(crate) ne: Option<Timestamp>,
}

impl TimeMatch {
    pub(crate) fn parse(&self, field: &str) -> Result<Times, Response> {
        let one = |v: &Option<Value>, op: &str| -> Result<Option<Timestamp>, Response> {
            match v {
                None | Some(Value::Null) => Ok(None),
                Some(v) => parse_time(v).map(Some).ok_or_else(|| {
                    invalid(&format!("{field}.{op}"), "expected an ISO 8601 datetime")
                }),
            }
        };
        let mut t = Times {
            gt: one(&self.gt, "gt")?,
            gte: one(&self.gte, "gte")?,
            lt: one(&self.lt, "lt")?,
            lte: one(&self.lte, "lte")?,
            eq: one(&self.eq, "eq")?,
            ne: one(&self.ne, "ne")?,
        };
        if let Some(b) = &self.between {
            let [from, to] = b.as_slice() else {
                return Err(invalid(&format!("{field}.between"), "expected [from, to]"));
            };
            t.gte = one(&Some(from.clone()), "between")?;
            t.lte = one(&Some(to.clone()), "between")?;
        }
        Ok(t)
    }
}

impl Times {
    pub(crate) fn accepts(&self, t: Option<Timestamp>) -> bool {
        let Some(t) = t else {
            return self.gt.is_none()
                && self.gte.is_none()
                && self.lt.is_none()
                && self.lte.is_none()
                && self.eq.is_none();
        };
        self.gt.is_none_or(|x| t > x)
            && self.gte.is_none_or(|x| t >= x)
            && self.lt.is_none_or(|x| t < x)
            && self.lte.is_none_or(|x| t <= x)
            && self.eq.is_none_or(|x| t == x)
            && self.ne.is_none_or(|x| t != x)
    }

    /// The inclusive range that holds every accepted instant (for the store filter).
    pub(crate) fn range(&self) -> (Option<Timestamp>, Option<Timestamp>) {
        let from = self.eq.or(self.gte).or(self.gt);
        let to = self.eq.or(self.lte).or(self.lt);
        (from, to)
    }
}

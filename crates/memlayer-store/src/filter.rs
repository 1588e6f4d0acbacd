use memlayer_types::{Kind, Status, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How an optional owner field (user, session, task, agent) must match.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "match", content = "value")]
pub enum FieldMatch {
    /// Any value, or none: the field does not restrict.
    #[default]
    Any,
    /// Exactly this value.
    Is(String),
    /// Only items where the field is not set.
    Unset,
}

impl FieldMatch {
    /// Whether an item's field value passes.
    pub fn accepts(&self, value: Option<&str>) -> bool {
        match self {
            FieldMatch::Any => true,
            FieldMatch::Is(want) => value == Some(want.as_str()),
            FieldMatch::Unset => value.is_none(),
        }
    }

    /// Whether this match restricts anything.
    pub fn is_any(&self) -> bool {
        matches!(self, FieldMatch::Any)
    }
}

/// A comparison of one caller metadata key (`metadata.extra`).
///
/// Exhaustive on purpose: every backend translates each comparison into its engine's
/// terms, so a new one must be a compile error in each backend, not a runtime refusal.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetaOp {
    /// The key exists and equals the value (numbers compare as numbers).
    Eq,
    /// The key is missing or differs from the value.
    Ne,
    /// The key holds a value of the same type greater than the value.
    Gt,
    /// Greater than or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less than or equal.
    Lte,
}

/// One condition on a caller metadata key. The value must be a string, number or boolean.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct MetaCondition {
    /// The key; any string, never interpolated into a query.
    pub key: String,
    /// The comparison.
    pub op: MetaOp,
    /// The operand: a JSON string, number or boolean.
    pub value: Value,
}

/// An inclusive time range; an unset bound is open.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct TimeRange {
    /// Lower bound, inclusive.
    pub from: Option<Timestamp>,
    /// Upper bound, inclusive.
    pub to: Option<Timestamp>,
}

impl TimeRange {
    /// A range between two optional bounds.
    pub fn new(from: Option<Timestamp>, to: Option<Timestamp>) -> Self {
        TimeRange { from, to }
    }

    /// Whether the range restricts anything.
    pub fn is_open(&self) -> bool {
        self.from.is_none() && self.to.is_none()
    }

    /// Whether `t` lies inside; an unset `t` is inside only an open range.
    pub fn contains(&self, t: Option<Timestamp>) -> bool {
        if self.is_open() {
            return true;
        }
        match t {
            None => false,
            Some(t) => self.from.is_none_or(|f| f <= t) && self.to.is_none_or(|to| t <= to),
        }
    }
}

/// Which items an operation sees. Every field composes with every other and with every mode.
///
/// The default sees live items: not soft-deleted, not expired, not superseded.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Filter {
    /// The user owning the item.
    pub user: FieldMatch,
    /// The session.
    pub session: FieldMatch,
    /// The task.
    pub task: FieldMatch,
    /// The agent.
    pub agent: FieldMatch,
    /// Any of these kinds (empty = all).
    pub kinds: Vec<Kind>,
    /// Any of these statuses (empty = all).
    pub statuses: Vec<Status>,
    /// Items carrying all of these tags.
    pub tags: Vec<String>,
    /// Conditions on caller metadata, all of which must hold.
    pub metadata: Vec<MetaCondition>,
    /// Ids never returned; applied before the limit.
    pub exclude_ids: Vec<String>,
    /// Creation time range.
    pub created: TimeRange,
    /// Last-write time range.
    pub updated: TimeRange,
    /// Last-access time range; items never accessed fall outside any bounded range.
    pub accessed: TimeRange,
    /// Also return items whose `expires_at` has passed.
    pub include_expired: bool,
    /// Also return superseded items (those with `superseded_by`, or a `valid_to` in the past).
    pub include_superseded: bool,
    /// Also return soft-deleted items.
    pub include_deleted: bool,
    /// The instant used instead of the wall clock for expiry and validity.
    pub now: Option<Timestamp>,
    /// Time travel: only items valid at this instant, superseded ones included.
    pub as_of: Option<Timestamp>,
}

impl Filter {
    /// The filter that sees every live item.
    pub fn new() -> Self {
        Filter::default()
    }

    /// Only items of this user.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = FieldMatch::Is(user.into());
        self
    }

    /// Only items without a user.
    pub fn no_user(mut self) -> Self {
        self.user = FieldMatch::Unset;
        self
    }

    /// Only items of this session.
    pub fn session(mut self, session: impl Into<String>) -> Self {
        self.session = FieldMatch::Is(session.into());
        self
    }

    /// Only items of this task.
    pub fn task(mut self, task: impl Into<String>) -> Self {
        self.task = FieldMatch::Is(task.into());
        self
    }

    /// Only items of this agent.
    pub fn agent(mut self, agent: impl Into<String>) -> Self {
        self.agent = FieldMatch::Is(agent.into());
        self
    }

    /// Adds a kind to the accepted kinds.
    pub fn kind(mut self, kind: Kind) -> Self {
        self.kinds.push(kind);
        self
    }

    /// Adds a status to the accepted statuses.
    pub fn status(mut self, status: Status) -> Self {
        self.statuses.push(status);
        self
    }

    /// Requires a tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Requires `key == value` in caller metadata.
    pub fn meta_eq(self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.meta(key, MetaOp::Eq, value)
    }

    /// Excludes items with `key == value` in caller metadata.
    pub fn meta_ne(self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.meta(key, MetaOp::Ne, value)
    }

    /// Adds a metadata condition.
    pub fn meta(mut self, key: impl Into<String>, op: MetaOp, value: impl Into<Value>) -> Self {
        self.metadata.push(MetaCondition {
            key: key.into(),
            op,
            value: value.into(),
        });
        self
    }

    /// Never returns this id.
    pub fn exclude_id(mut self, id: impl Into<String>) -> Self {
        self.exclude_ids.push(id.into());
        self
    }

    /// Restricts creation time.
    pub fn created_between(mut self, from: Option<Timestamp>, to: Option<Timestamp>) -> Self {
        self.created = TimeRange::new(from, to);
        self
    }

    /// Restricts last-write time.
    pub fn updated_between(mut self, from: Option<Timestamp>, to: Option<Timestamp>) -> Self {
        self.updated = TimeRange::new(from, to);
        self
    }

    /// Restricts last-access time.
    pub fn accessed_between(mut self, from: Option<Timestamp>, to: Option<Timestamp>) -> Self {
        self.accessed = TimeRange::new(from, to);
        self
    }

    /// Also returns expired items.
    pub fn include_expired(mut self, yes: bool) -> Self {
        self.include_expired = yes;
        self
    }

    /// Also returns superseded items.
    pub fn include_superseded(mut self, yes: bool) -> Self {
        self.include_superseded = yes;
        self
    }

    /// Also returns soft-deleted items.
    pub fn include_deleted(mut self, yes: bool) -> Self {
        self.include_deleted = yes;
        self
    }

    /// Uses `now` instead of the wall clock.
    pub fn at(mut self, now: Timestamp) -> Self {
        self.now = Some(now);
        self
    }

    /// Time travel to `as_of`.
    pub fn as_of(mut self, as_of: Timestamp) -> Self {
        self.as_of = Some(as_of);
        self
    }

    /// The instant this filter evaluates expiry and validity at.
    pub fn effective_now(&self) -> Timestamp {
        self.now.unwrap_or_else(Timestamp::now)
    }

    /// Whether the filter selects items by any property (and so is safe for `clear`).
    ///
    /// The visibility switches (`include_*`, `now`, `as_of`) do not count: they widen or
    /// shift what is seen but never narrow it to a subset chosen by the caller.
    pub fn selects_subset(&self) -> bool {
        !(self.user.is_any()
            && self.session.is_any()
            && self.task.is_any()
            && self.agent.is_any()
            && self.kinds.is_empty()
            && self.statuses.is_empty()
            && self.tags.is_empty()
            && self.metadata.is_empty()
            && self.created.is_open()
            && self.updated.is_open()
            && self.accessed.is_open())
    }
}

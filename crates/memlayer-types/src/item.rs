use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::Timestamp;

/// What a memory item is: a message of a conversation, a fact, a summary, or a custom kind.
///
/// A custom kind round-trips unchanged; a custom string that spells a built-in kind becomes
/// that kind.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Kind {
    /// A system prompt or instruction.
    System,
    /// A message from the human.
    Human,
    /// A message from the model, possibly with tool calls.
    Ai,
    /// The result of a tool call.
    Tool,
    /// A long-term fact.
    Fact,
    /// A summary that replaces a range of other items.
    Summary,
    /// Any other caller-defined kind.
    Custom(String),
}

impl Kind {
    /// The stable string form stored by every backend.
    pub fn as_str(&self) -> &str {
        match self {
            Kind::System => "system",
            Kind::Human => "human",
            Kind::Ai => "ai",
            Kind::Tool => "tool",
            Kind::Fact => "fact",
            Kind::Summary => "summary",
            Kind::Custom(s) => s,
        }
    }

    /// Parses the stored string form; never fails, unknown strings are custom kinds.
    pub fn parse(s: &str) -> Kind {
        match s {
            "system" => Kind::System,
            "human" => Kind::Human,
            "ai" => Kind::Ai,
            "tool" => Kind::Tool,
            "fact" => Kind::Fact,
            "summary" => Kind::Summary,
            other => Kind::Custom(other.to_owned()),
        }
    }

    /// True for the kinds that make up a conversation (system, human, ai, tool).
    pub fn is_message(&self) -> bool {
        matches!(self, Kind::System | Kind::Human | Kind::Ai | Kind::Tool)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Kind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Kind::parse(&s))
    }
}

/// The review status of an item.
///
/// Legal transitions: draft to accepted, draft to discard, accepted to discard, and staying put.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Proposed, not yet confirmed.
    Draft,
    /// Confirmed; the default.
    #[default]
    Accepted,
    /// Rejected; kept for audit.
    Discard,
}

impl Status {
    /// The stable string form stored by every backend.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Accepted => "accepted",
            Status::Discard => "discard",
        }
    }

    /// Parses the stored string form.
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "draft" => Some(Status::Draft),
            "accepted" => Some(Status::Accepted),
            "discard" => Some(Status::Discard),
            _ => None,
        }
    }

    /// Whether an item in status `self` may move to `next`.
    pub fn can_become(self, next: Status) -> bool {
        matches!(
            (self, next),
            (Status::Draft, _)
                | (Status::Accepted, Status::Accepted | Status::Discard)
                | (Status::Discard, Status::Discard)
        )
    }
}

/// The memory tier, which sets the default time to live.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Short-lived working memory: 72 hours by default.
    #[default]
    Working,
    /// Episodes: 30 days by default.
    Episodic,
    /// Knowledge: never expires by default.
    Semantic,
    /// Skills and procedures: never expire by default.
    Procedural,
}

impl Tier {
    /// The stable string form stored by every backend.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Working => "working",
            Tier::Episodic => "episodic",
            Tier::Semantic => "semantic",
            Tier::Procedural => "procedural",
        }
    }

    /// Parses the stored string form.
    pub fn parse(s: &str) -> Option<Tier> {
        match s {
            "working" => Some(Tier::Working),
            "episodic" => Some(Tier::Episodic),
            "semantic" => Some(Tier::Semantic),
            "procedural" => Some(Tier::Procedural),
            _ => None,
        }
    }

    /// The default time to live of the tier; `None` means the item never expires.
    pub fn default_ttl(self) -> Option<Duration> {
        match self {
            Tier::Working => Some(Duration::from_secs(72 * 3600)),
            Tier::Episodic => Some(Duration::from_secs(30 * 24 * 3600)),
            Tier::Semantic | Tier::Procedural => None,
        }
    }
}

/// Who and what an item belongs to, plus free-form caller keys.
#[derive(Clone, PartialEq, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Metadata {
    /// The user the item is about or from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The conversation session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The task within a session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// The agent that wrote or owns the item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// Caller keys; values are JSON scalars, arrays or objects.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
}

/// An embedding vector together with the id of the model that produced it.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct Embedding {
    /// The model id, for example `sentence-transformers/all-MiniLM-L6-v2`.
    pub model: String,
    /// The vector; its length is the dimension.
    pub vector: Vec<f32>,
}

impl Embedding {
    /// An embedding of `vector` by `model`.
    pub fn new(model: impl Into<String>, vector: Vec<f32>) -> Self {
        Embedding {
            model: model.into(),
            vector,
        }
    }

    /// The dimension of the vector.
    pub fn dim(&self) -> usize {
        self.vector.len()
    }
}

/// One memory: a message, a fact, a summary or any custom kind, with its lifecycle.
///
/// The store owns `version`, `updated_at` and `deleted`, and keeps `created_at` of an existing
/// id; whatever the caller sends there is replaced on upsert.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
pub struct MemoryItem {
    /// Unique across the whole store.
    #[serde(default = "new_id")]
    pub id: String,
    /// The tenant partition.
    pub namespace: String,
    /// What the item is.
    pub kind: Kind,
    /// The text; never empty.
    pub content: String,
    /// Review status.
    #[serde(default)]
    pub status: Status,
    /// Tool calls of an `ai` message, as JSON objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<Value>,
    /// The call a `tool` message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// The tool that produced a `tool` message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// Whether a `tool` message reports an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_error: Option<bool>,
    /// Ownership and caller keys.
    #[serde(default)]
    pub metadata: Metadata,
    /// A set of labels; a filter on tags matches items that carry all of them.
    #[serde(default)]
    pub tags: BTreeSet<String>,
    /// The memory tier.
    #[serde(default)]
    pub tier: Tier,
    /// When the item stops being visible; `None` on insert means the tier's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// How much the item matters, 0..=1.
    #[serde(default = "half")]
    pub importance: f32,
    /// How sure we are of it, 0..=1.
    #[serde(default = "one")]
    pub confidence: f32,
    /// How often it was reinforced.
    #[serde(default)]
    pub access_count: u64,
    /// When it was last reinforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_accessed_at: Option<Timestamp>,
    /// The id of the item that replaced this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    /// Start of the validity interval (inclusive); `None` is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_from: Option<Timestamp>,
    /// End of the validity interval (exclusive); `None` is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_to: Option<Timestamp>,
    /// When the id was first written; kept by every later upsert.
    #[serde(default = "Timestamp::now")]
    pub created_at: Timestamp,
    /// When the item was last written.
    #[serde(default = "Timestamp::now")]
    pub updated_at: Timestamp,
    /// 1 on insert, +1 on every upsert of the same id.
    #[serde(default)]
    pub version: u64,
    /// Soft-delete flag.
    #[serde(default)]
    pub deleted: bool,
    /// Optional vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Embedding>,
}

fn new_id() -> String {
    crate::new_id()
}

fn half() -> f32 {
    0.5
}

fn one() -> f32 {
    1.0
}

impl MemoryItem {
    /// A new item with a generated id, created now, in the `working` tier.
    pub fn new(namespace: impl Into<String>, kind: Kind, content: impl Into<String>) -> Self {
        let now = Timestamp::now();
        MemoryItem {
            id: crate::new_id(),
            namespace: namespace.into(),
            kind,
            content: content.into(),
            status: Status::Accepted,
            tool_calls: Vec::new(),
            tool_call_id: None,
            tool_name: None,
            is_error: None,
            metadata: Metadata::default(),
            tags: BTreeSet::new(),
            tier: Tier::Working,
            expires_at: None,
            importance: 0.5,
            confidence: 1.0,
            access_count: 0,
            last_accessed_at: None,
            superseded_by: None,
            valid_from: None,
            valid_to: None,
            created_at: now,
            updated_at: now,
            version: 0,
            deleted: false,
            embedding: None,
        }
    }

    /// Sets the id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// Sets the user.
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.metadata.user_id = Some(user.into());
        self
    }

    /// Sets the session.
    pub fn with_session(mut self, session: impl Into<String>) -> Self {
        self.metadata.session_id = Some(session.into());
        self
    }

    /// Sets the task.
    pub fn with_task(mut self, task: impl Into<String>) -> Self {
        self.metadata.task_id = Some(task.into());
        self
    }

    /// Sets the agent.
    pub fn with_agent(mut self, agent: impl Into<String>) -> Self {
        self.metadata.agent_id = Some(agent.into());
        self
    }

    /// Sets one caller metadata key.
    pub fn with_extra(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.extra.insert(key.into(), value.into());
        self
    }

    /// Adds a tag.
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.insert(tag.into());
        self
    }

    /// Sets the tier.
    pub fn with_tier(mut self, tier: Tier) -> Self {
        self.tier = tier;
        self
    }

    /// Sets the status.
    pub fn with_status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    /// Sets the expiry.
    pub fn with_expires_at(mut self, at: Timestamp) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Sets the importance.
    pub fn with_importance(mut self, importance: f32) -> Self {
        self.importance = importance;
        self
    }

    /// Sets the confidence.
    pub fn with_confidence(mut self, confidence: f32) -> Self {
        self.confidence = confidence;
        self
    }

    /// Sets the creation time (kept only when the id is new).
    pub fn with_created_at(mut self, at: Timestamp) -> Self {
        self.created_at = at;
        self.updated_at = at;
        self
    }

    /// Sets the embedding.
    pub fn with_embedding(mut self, model: impl Into<String>, vector: Vec<f32>) -> Self {
        self.embedding = Some(Embedding::new(model, vector));
        self
    }

    /// Sets the tool calls of an `ai` message.
    pub fn with_tool_calls(mut self, calls: Vec<Value>) -> Self {
        self.tool_calls = calls;
        self
    }

    /// Marks a `tool` message as the answer to `call_id` from `tool_name`.
    pub fn with_tool_result(
        mut self,
        call_id: impl Into<String>,
        tool_name: impl Into<String>,
        is_error: bool,
    ) -> Self {
        self.tool_call_id = Some(call_id.into());
        self.tool_name = Some(tool_name.into());
        self.is_error = Some(is_error);
        self
    }

    /// Whether the item is expired at `now`.
    pub fn is_expired_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|e| e <= now)
    }

    /// Whether the item's validity interval contains `at`.
    pub fn is_valid_at(&self, at: Timestamp) -> bool {
        self.valid_from.is_none_or(|f| f <= at) && self.valid_to.is_none_or(|t| at < t)
    }
}

//! The tools' arguments: each field is named and described in the JSON schema a client sees.

use rmcp::schemars;
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RememberArgs {
    /// What to remember, as one self-contained statement.
    pub content: String,
    /// facts (default), user_profile or agent_experience.
    #[serde(alias = "type")]
    pub kind: Option<String>,
    /// working, episodic, semantic or procedural (the kind's own tier when absent).
    pub tier: Option<String>,
    /// The user it is about.
    pub user: Option<String>,
    /// The session it came from.
    pub session: Option<String>,
    /// Tags for filtering.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Free-form metadata (a JSON object), kept with the memory.
    #[serde(default)]
    pub metadata: Map<String, Value>,
    /// How long it lives: 90s, 15m, 12h, 30d or 2w (the tier's own time when absent).
    pub ttl: Option<String>,
    /// 0..1, how much it matters.
    pub importance: Option<f32>,
    /// The namespace (the server's default when absent).
    pub namespace: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RecallArgs {
    /// What to look for.
    pub query: String,
    /// hybrid (default), keyword, vector or recent.
    pub mode: Option<String>,
    /// How many results (default 5).
    pub limit: Option<usize>,
    /// Leave out results scoring below this (in the mode's own score).
    pub min_score: Option<f32>,
    /// Only this user's memories.
    pub user: Option<String>,
    /// Only this session's.
    pub session: Option<String>,
    /// Only these kinds (fact, human, ai, summary, user_profile, ...).
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Only items with all these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The namespace (the server's default when absent).
    pub namespace: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct GetArgs {
    /// The memory's id.
    pub id: String,
    /// The namespace (the server's default when absent).
    pub namespace: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ListArgs {
    /// Only this user's memories.
    pub user: Option<String>,
    /// Only this session's.
    pub session: Option<String>,
    /// Only these kinds (fact, human, ai, summary, user_profile, ...).
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Only items with all these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Also superseded memories (older versions).
    #[serde(default)]
    pub include_superseded: bool,
    /// How many per page (default 20).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// The namespace (the server's default when absent).
    pub namespace: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateArgs {
    /// The memory to correct.
    pub id: String,
    /// Its new content; the old memory is superseded and stays reachable through `history`.
    pub content: String,
    /// The namespace (the server's default when absent).
    pub namespace: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct HistoryArgs {
    /// Any version of the memory.
    pub id: String,
    /// The namespace (the server's default when absent).
    pub namespace: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ForgetArgs {
    /// Delete this memory.
    pub id: Option<String>,
    /// Delete everything of this user in the namespace (every version, permanently).
    pub user: Option<String>,
    /// Delete the memories of this session (with `tags`, `kinds` or alone).
    pub session: Option<String>,
    /// Delete the memories with all these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Delete the memories of these kinds.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// The namespace (the server's default when absent).
    pub namespace: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AppendArgs {
    /// The conversation.
    pub session: String,
    /// Its user.
    pub user: Option<String>,
    /// system, human, ai or tool.
    pub role: String,
    /// The message text.
    pub content: String,
    /// The namespace (the server's default when absent).
    pub namespace: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct WindowArgs {
    /// The conversation.
    pub session: String,
    /// Its user.
    pub user: Option<String>,
    /// Keep at most this many rounds (0 = all).
    pub max_rounds: Option<usize>,
    /// Keep within this many tokens.
    pub max_tokens: Option<usize>,
    /// The namespace (the server's default when absent).
    pub namespace: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct BriefingArgs {
    /// The user the session is with.
    pub user: String,
    /// The session starting (its summary is preferred to the user's latest).
    pub session: Option<String>,
    /// What the session is about: the most relevant memories for it are added.
    pub topic: Option<String>,
    /// The token budget of the whole briefing (default 1000).
    pub max_tokens: Option<usize>,
    /// The namespace (the server's default when absent).
    pub namespace: Option<String>,
}

/// A tool's arguments, or why they do not parse: a malformed call becomes a tool error the
/// model can read and correct, rather than a protocol error. The schema is `T`'s.
pub(super) struct Args<T>(pub Result<T, String>);

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Args<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Ok(Args(
            serde_json::from_value(value).map_err(|e| e.to_string()),
        ))
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Args<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }

    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

//! Short-term memory: the running conversation of a scope, persisted through any store, so a
//! process restart keeps it, and windowed for the next prompt.

use memlayer_store::types::{Kind, MemoryItem, Tier, Timestamp};
use memlayer_store::{
    ClearRequest, DynStore, Error, FieldMatch, Filter, MemoryStoreExt, Result, SearchRequest,
};

use crate::window::{Window, WindowConfig, window};

/// Whose conversation: a user, a session or a task (at least one), always with the agent
/// checked (an unset agent matches only messages written without one).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// The user.
    pub user: Option<String>,
    /// The session.
    pub session: Option<String>,
    /// The task.
    pub task: Option<String>,
    /// The agent.
    pub agent: Option<String>,
}

impl Scope {
    /// The conversation of a session.
    pub fn session(id: impl Into<String>) -> Self {
        Scope {
            session: Some(id.into()),
            ..Scope::default()
        }
    }

    /// The conversation of a user.
    pub fn user(id: impl Into<String>) -> Self {
        Scope {
            user: Some(id.into()),
            ..Scope::default()
        }
    }

    /// The conversation of a task.
    pub fn task(id: impl Into<String>) -> Self {
        Scope {
            task: Some(id.into()),
            ..Scope::default()
        }
    }

    /// Also scoped to this user.
    pub fn with_user(mut self, id: impl Into<String>) -> Self {
        self.user = Some(id.into());
        self
    }

    /// Also scoped to this session.
    pub fn with_session(mut self, id: impl Into<String>) -> Self {
        self.session = Some(id.into());
        self
    }

    /// The agent whose conversation it is.
    pub fn with_agent(mut self, id: impl Into<String>) -> Self {
        self.agent = Some(id.into());
        self
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.user.is_none() && self.session.is_none() && self.task.is_none() {
            return Err(Error::invalid(
                "scope",
                "names no user, session or task; a conversation needs at least one",
            ));
        }
        Ok(())
    }

    /// The filter selecting this scope's conversation: its messages and summaries.
    pub fn filter(&self) -> Filter {
        let mut f = self.owner_filter();
        for kind in [
            Kind::System,
            Kind::Human,
            Kind::Ai,
            Kind::Tool,
            Kind::Summary,
        ] {
            f = f.kind(kind);
        }
        f
    }

    /// The filter selecting everything this scope owns, of any kind.
    pub fn owner_filter(&self) -> Filter {
        let is = |v: &Option<String>| match v {
            Some(v) => FieldMatch::Is(v.clone()),
            None => FieldMatch::Any,
        };
        let mut f = Filter::new();
        f.user = is(&self.user);
        f.session = is(&self.session);
        f.task = is(&self.task);
        f.agent = match &self.agent {
            Some(a) => FieldMatch::Is(a.clone()),
            None => FieldMatch::Unset,
        };
        f
    }

    /// A stable, unambiguous key of the owner fields, for ids derived from them.
    pub fn key(&self) -> String {
        serde_json::json!([self.user, self.session, self.task, self.agent]).to_string()
    }

    pub(crate) fn stamp(&self, item: &mut MemoryItem) {
        let m = &mut item.metadata;
        m.user_id = self.user.clone();
        m.session_id = self.session.clone();
        m.task_id = self.task.clone();
        m.agent_id = self.agent.clone();
    }
}

/// The content stored for an ai message that only calls tools: `tool calls: a, b`.
pub fn tool_call_summary(message: &MemoryItem) -> String {
    let names: Vec<&str> = message
        .tool_calls
        .iter()
        .map(|c| {
            c.get("name")
                .or_else(|| c.get("function").and_then(|f| f.get("name")))
                .and_then(serde_json::Value::as_str)
                .unwrap_or("tool")
        })
        .collect();
    format!("tool calls: {}", names.join(", "))
}

/// The conversations of one namespace, stored as message items.
#[derive(Clone, Debug)]
pub struct ShortTermMemory {
    store: DynStore,
    namespace: String,
    tier: Tier,
}

impl ShortTermMemory {
    /// Conversations in `namespace` of `store`, in the working tier (72 h time to live).
    pub fn new(store: DynStore, namespace: impl Into<String>) -> Self {
        ShortTermMemory {
            store,
            namespace: namespace.into(),
            tier: Tier::Working,
        }
    }

    /// Stores messages in another tier (and so with its time to live).
    pub fn with_tier(mut self, tier: Tier) -> Self {
        self.tier = tier;
        self
    }

    /// The store underneath.
    pub fn store(&self) -> &DynStore {
        &self.store
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The tier messages are stored in.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// Appends one message to the scope's conversation.
    ///
    /// # Errors
    /// As [`ShortTermMemory::append_many`].
    pub async fn append(&self, scope: &Scope, message: MemoryItem) -> Result<MemoryItem> {
        let mut out = self.append_many(scope, vec![message]).await?;
        out.pop()
            .ok_or_else(|| Error::invalid("messages", "nothing was stored"))
    }

    /// Appends messages, in order, after everything already in the conversation.
    ///
    /// Each gets the scope's owner fields, the namespace and the tier, a creation time
    /// strictly after the previous message's, so the stored order is the conversation order,
    /// and the previous message's id in `metadata.extra["follows"]`.
    /// An ai message that only calls tools (empty content) is stored with the content
    /// [`tool_call_summary`], since every stored item has content.
    ///
    /// # Errors
    /// `InvalidInput` for a scope without user, session or task, a kind that is not a message,
    /// or a tool message without `tool_call_id`; the store's errors otherwise.
    pub async fn append_many(
        &self,
        scope: &Scope,
        messages: Vec<MemoryItem>,
    ) -> Result<Vec<MemoryItem>> {
        scope.check()?;
        for m in &messages {
            if !m.kind.is_message() {
                return Err(Error::invalid(
                    "kind",
                    format!("{} is not a message kind (system, human, ai, tool)", m.kind),
                ));
            }
            if m.kind == Kind::Tool && m.tool_call_id.is_none() {
                return Err(Error::invalid(
                    "tool_call_id",
                    "a tool message must name the call it answers",
                ));
            }
        }
        let last = self
            .store
            .search(
                &self.namespace,
                &SearchRequest::recent()
                    .with_filter(scope.filter())
                    .with_limit(1),
            )
            .await?;
        let after = last
            .hits
            .first()
            .map_or(i64::MIN, |h| h.item.created_at.as_millis());
        // Each message names the one it follows, so that recall can lift a reply by the turn
        // it answers (`docs/decisions/0008-conversation-recall.md`).
        let mut previous = last.hits.first().map(|h| h.item.id.clone());
        let mut next = Timestamp::now().as_millis().max(after.saturating_add(1));
        let mut items = Vec::with_capacity(messages.len());
        for mut m in messages {
            if m.kind == Kind::Ai && m.content.trim().is_empty() && !m.tool_calls.is_empty() {
                // The contract wants content; an ai turn that only calls tools says so.
                m.content = tool_call_summary(&m);
            }
            m.namespace = self.namespace.clone();
            m.tier = self.tier;
            scope.stamp(&mut m);
            m.created_at = Timestamp::from_millis(next);
            next = next.saturating_add(1);
            if let Some(p) = previous.take() {
                m.metadata
                    .extra
                    .entry(memlayer_store::ranking::context::FOLLOWS)
                    .or_insert_with(|| p.into());
            }
            previous = Some(m.id.clone());
            items.push(m);
        }
        self.store.upsert_many(items).await
    }

    /// The whole live conversation of a scope (messages and the current summary), oldest
    /// first.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn messages(&self, scope: &Scope) -> Result<Vec<MemoryItem>> {
        scope.check()?;
        let mut all = self.store.list_all(&self.namespace, scope.filter()).await?;
        all.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(all)
    }

    /// The window of a scope's conversation for the next prompt.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn window(&self, scope: &Scope, config: &WindowConfig) -> Result<Window> {
        let messages = self.messages(scope).await?;
        Ok(window(&messages, config))
    }

    /// Forgets a scope's conversation (soft delete); returns how many messages.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn clear(&self, scope: &Scope) -> Result<u64> {
        scope.check()?;
        self.store
            .clear(&self.namespace, &ClearRequest::matching(scope.filter()))
            .await
    }
}

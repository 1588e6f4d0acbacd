//! The ten tools. Each checks its namespace and scope first ([`MemoryTools::open`]), and
//! answers a failure as a tool error the model reads, never as a protocol error.

use memlayer::orchestrator::{
    AddOutcome, CharsPerFour, ExtractionType, LongTermMemory, NewMemory, Scope, ShortTermMemory,
    TokenCounter, WindowConfig,
};
use memlayer::{
    ClearRequest, ErrorKind, Filter, Kind, ListRequest, MemoryItem, Order, SearchMode,
    SearchRequest, SortKey, Tier,
};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use serde_json::{Value, json};

use super::args::{
    AppendArgs, Args, BriefingArgs, ForgetArgs, GetArgs, HistoryArgs, ListArgs, RecallArgs,
    RememberArgs, UpdateArgs, WindowArgs,
};
use super::{MemoryTools, refusal};
use crate::keys::{KeyScope, parse_span};

type ToolResult = Result<CallToolResult, ErrorData>;

fn ok(value: Value) -> ToolResult {
    Ok(CallToolResult::success(vec![ContentBlock::json(value)?]))
}

fn failed(message: impl std::fmt::Display) -> ToolResult {
    Ok(refusal(message))
}

/// The parsed arguments, or the tool error naming what is wrong with them.
macro_rules! args {
    ($parsed:expr) => {
        match $parsed {
            Ok(a) => a,
            Err(why) => return failed(format!("arguments: {why}")),
        }
    };
}

/// Opens the call's namespace, or returns the refusal from the tool.
macro_rules! open {
    ($tools:expr, $ctx:expr, $ns:expr, $scope:expr) => {
        match $tools.open(&$ctx, $ns, $scope) {
            Ok(ns) => ns,
            Err(refused) => return Ok(refused),
        }
    };
}

fn brief(item: &MemoryItem) -> Value {
    json!({
        "id": item.id,
        "kind": item.kind.as_str(),
        "content": item.content,
        "user": item.metadata.user_id,
        "session": item.metadata.session_id,
        "tags": item.tags,
        "created_at": item.created_at,
    })
}

/// Every field of an item but its vector.
fn whole(item: &MemoryItem) -> Value {
    let mut item = item.clone();
    item.embedding = None;
    serde_json::to_value(item).unwrap_or(Value::Null)
}

/// A filter of owner, kinds and tags, as several tools take them.
fn filter_of(
    user: Option<String>,
    session: Option<String>,
    kinds: &[String],
    tags: Vec<String>,
) -> Filter {
    let mut filter = Filter::new();
    if let Some(u) = user {
        filter = filter.user(u);
    }
    if let Some(s) = session {
        filter = filter.session(s);
    }
    for k in kinds {
        filter = filter.kind(Kind::parse(k));
    }
    for t in tags {
        filter = filter.tag(t);
    }
    filter
}

/// The kinds a briefing draws long-term memories from.
const LONG_TERM_KINDS: [&str; 3] = ["fact", "user_profile", "agent_experience"];

#[tool_router(vis = "pub(super)")]
impl MemoryTools {
    #[tool(
        description = "Store a long-term memory (a fact, a user profile detail or an agent experience). Exact duplicates are recognised, and a new value for the same subject supersedes the old one."
    )]
    async fn remember(
        &self,
        ctx: RequestContext<RoleServer>,
        Parameters(Args(a)): Parameters<Args<RememberArgs>>,
    ) -> ToolResult {
        let a = args!(a);
        let ns = open!(self, ctx, a.namespace, KeyScope::Write);
        let t = a.kind.as_deref().unwrap_or("facts");
        let Some(extraction) = ExtractionType::parse(t) else {
            return failed(format!(
                "kind is {t:?}; must be facts, user_profile or agent_experience"
            ));
        };
        let mut memory = NewMemory::new(extraction, a.content);
        if let Some(tier) = &a.tier {
            let Some(tier) = Tier::parse(tier) else {
                return failed(format!(
                    "tier is {tier:?}; must be working, episodic, semantic or procedural"
                ));
            };
            memory = memory.with_tier(tier);
        }
        if let Some(ttl) = &a.ttl {
            match parse_span("ttl", ttl) {
                Ok(d) => memory = memory.with_ttl(d),
                Err(e) => return failed(e),
            }
        }
        for (k, v) in a.metadata {
            memory = memory.with_metadata(k, v);
        }
        for t in a.tags {
            memory = memory.with_tag(t);
        }
        if let Some(i) = a.importance {
            memory = memory.with_importance(i);
        }
        let scope = Scope {
            user: a.user,
            session: a.session,
            ..Scope::default()
        };
        let ltm = LongTermMemory::new(self.store.clone(), ns);
        match ltm.add(&scope, memory).await {
            Ok(outcome) => {
                let what = match &outcome {
                    AddOutcome::Added(_) => "added",
                    AddOutcome::Duplicate(_) => "duplicate",
                    AddOutcome::Confirmed(_) => "confirmed",
                    AddOutcome::Superseded { .. } => "superseded",
                };
                ok(json!({ "outcome": what, "memory": brief(outcome.item()) }))
            }
            Err(e) => failed(e),
        }
    }

    #[tool(
        description = "Search memory by keyword, by meaning, or both (hybrid, the default), with optional user, session, kind and tag filters. Returns the best matches with their fused, keyword and vector scores."
    )]
    async fn recall(
        &self,
        ctx: RequestContext<RoleServer>,
        Parameters(Args(a)): Parameters<Args<RecallArgs>>,
    ) -> ToolResult {
        let a = args!(a);
        let ns = open!(self, ctx, a.namespace, KeyScope::Read);
        let mode = match a.mode.as_deref().unwrap_or("hybrid") {
            "hybrid" => SearchMode::Hybrid,
            "keyword" => SearchMode::Keyword,
            "vector" | "semantic" => SearchMode::Vector,
            "recent" => SearchMode::Recent,
            other => {
                return failed(format!(
                    "mode is {other:?}; must be hybrid, keyword, vector or recent"
                ));
            }
        };
        let mut request = SearchRequest::new(mode)
            .with_query(a.query)
            .with_filter(filter_of(a.user, a.session, &a.kinds, a.tags))
            .with_limit(a.limit.unwrap_or(5));
        if let Some(min) = a.min_score {
            request = request.with_min_score(min);
        }
        match self.store.search(&ns, &request).await {
            Ok(results) => {
                let hits: Vec<Value> = results
                    .hits
                    .iter()
                    .map(|h| {
                        let mut b = brief(&h.item);
                        b["score"] = json!(h.score);
                        b["keyword_score"] = json!(h.keyword_score);
                        b["vector_score"] = json!(h.vector_score);
                        b
                    })
                    .collect();
                ok(json!({ "memories": hits }))
            }
            Err(e) => failed(e),
        }
    }

    #[tool(
        description = "One memory by id, with every field (its version, validity and what superseded it)."
    )]
    async fn get(
        &self,
        ctx: RequestContext<RoleServer>,
        Parameters(Args(a)): Parameters<Args<GetArgs>>,
    ) -> ToolResult {
        let a = args!(a);
        let ns = open!(self, ctx, a.namespace, KeyScope::Read);
        match self.store.get(&ns, &a.id).await {
            Ok(item) => ok(json!({ "memory": whole(&item) })),
            Err(e) => failed(e),
        }
    }

    #[tool(
        description = "List memories, newest first, with optional user, session, kind and tag filters; page on with next_cursor."
    )]
    async fn list(
        &self,
        ctx: RequestContext<RoleServer>,
        Parameters(Args(a)): Parameters<Args<ListArgs>>,
    ) -> ToolResult {
        let a = args!(a);
        let ns = open!(self, ctx, a.namespace, KeyScope::Read);
        let filter =
            filter_of(a.user, a.session, &a.kinds, a.tags).include_superseded(a.include_superseded);
        let mut request = ListRequest::new()
            .with_filter(filter)
            .with_limit(a.limit.unwrap_or(20));
        if let Some(c) = a.cursor {
            request = request.with_cursor(c);
        }
        match self.store.list(&ns, &request).await {
            Ok(page) => ok(json!({
                "memories": page.items.iter().map(brief).collect::<Vec<_>>(),
                "next_cursor": page.next_cursor,
            })),
            Err(e) => failed(e),
        }
    }

    #[tool(
        description = "Correct a memory: the new content becomes a new memory that supersedes the old one, which stays reachable through history."
    )]
    async fn update(
        &self,
        ctx: RequestContext<RoleServer>,
        Parameters(Args(a)): Parameters<Args<UpdateArgs>>,
    ) -> ToolResult {
        let a = args!(a);
        let ns = open!(self, ctx, a.namespace, KeyScope::Write);
        let old = match self.store.get(&ns, &a.id).await {
            Ok(item) => item,
            Err(e) => return failed(e),
        };
        if let Some(by) = &old.superseded_by {
            return failed(format!(
                "memory {} was already superseded by {by}; update that one",
                old.id
            ));
        }
        let mut new = MemoryItem::new(&ns, old.kind.clone(), a.content).with_tier(old.tier);
        new.metadata = old.metadata.clone();
        new.metadata.extra.remove("fingerprint");
        new.tags = old.tags.clone();
        new.importance = old.importance;
        new.confidence = old.confidence;
        new.valid_from = Some(memlayer::Timestamp::now());
        let new = match self.store.upsert(new).await {
            Ok(item) => item,
            Err(e) => return failed(e),
        };
        match self.store.supersede(&ns, &old.id, &new.id).await {
            Ok(old) => ok(json!({ "memory": brief(&new), "superseded": old.id })),
            Err(e) => {
                // The correction must not stay half-made: the new memory goes again.
                let _ = self.store.delete(&ns, &new.id).await;
                failed(e)
            }
        }
    }

    #[tool(
        description = "A memory's history: every version from the first to the current, each with when it was valid and what superseded it."
    )]
    async fn history(
        &self,
        ctx: RequestContext<RoleServer>,
        Parameters(Args(a)): Parameters<Args<HistoryArgs>>,
    ) -> ToolResult {
        let a = args!(a);
        let ns = open!(self, ctx, a.namespace, KeyScope::Read);
        let start = match self.store.get(&ns, &a.id).await {
            Ok(item) => item,
            Err(e) => return failed(e),
        };
        // Back through what each version replaced, then forward through what replaced it;
        // bounded, so a corrupt cycle cannot loop.
        let mut before = Vec::new();
        let mut cursor = start.id.clone();
        for _ in 0..100 {
            match self.store.predecessors(&ns, &cursor).await {
                Ok(mut p) if !p.is_empty() => {
                    p.sort_by_key(|i| std::cmp::Reverse(i.created_at));
                    cursor = p[0].id.clone();
                    before.push(p.remove(0));
                }
                Ok(_) => break,
                Err(e) => return failed(e),
            }
        }
        before.reverse();
        let mut after = Vec::new();
        let mut next = start.superseded_by.clone();
        while let Some(id) = next.take() {
            if after.len() >= 100 {
                break;
            }
            match self.store.get(&ns, &id).await {
                Ok(item) => {
                    next = item.superseded_by.clone();
                    after.push(item);
                }
                Err(e) if e.kind() == ErrorKind::NotFound => break,
                Err(e) => return failed(e),
            }
        }
        let versions: Vec<Value> = before
            .iter()
            .chain(std::iter::once(&start))
            .chain(after.iter())
            .map(|i| {
                json!({
                    "id": i.id,
                    "content": i.content,
                    "version": i.version,
                    "created_at": i.created_at,
                    "valid_from": i.valid_from,
                    "valid_to": i.valid_to,
                    "superseded_by": i.superseded_by,
                    "current": i.superseded_by.is_none(),
                })
            })
            .collect();
        ok(json!({ "versions": versions }))
    }

    #[tool(
        description = "Delete one memory by id, everything of a user, or the memories matching a session, tags or kinds. Answers the exact number deleted."
    )]
    async fn forget(
        &self,
        ctx: RequestContext<RoleServer>,
        Parameters(Args(a)): Parameters<Args<ForgetArgs>>,
    ) -> ToolResult {
        let a = args!(a);
        let ns = open!(self, ctx, a.namespace, KeyScope::Write);
        let by_filter = a.session.is_some() || !a.tags.is_empty() || !a.kinds.is_empty();
        match (a.id, a.user) {
            (Some(id), None) if !by_filter => match self.store.delete(&ns, &id).await {
                Ok(()) => ok(json!({ "deleted": 1 })),
                Err(e) => failed(e),
            },
            (None, Some(user)) if !by_filter => {
                let done =
                    crate::erase::forget_user(&self.store, &user, std::slice::from_ref(&ns)).await;
                match &done.failure {
                    None => ok(json!({ "deleted": done.items() })),
                    Some(e) => failed(format!(
                        "forget stopped after deleting {} items: {e}; call it again to finish",
                        done.items()
                    )),
                }
            }
            (None, user) if by_filter => {
                let filter = filter_of(user, a.session, &a.kinds, a.tags);
                match self.store.clear(&ns, &ClearRequest::matching(filter)).await {
                    Ok(n) => ok(json!({ "deleted": n })),
                    Err(e) => failed(e),
                }
            }
            _ => failed(
                "give an id alone, a user alone, or a filter (session, tags, kinds, with a user or not)",
            ),
        }
    }

    #[tool(description = "Append a message (role system, human, ai or tool) to a conversation.")]
    async fn conversation_append(
        &self,
        ctx: RequestContext<RoleServer>,
        Parameters(Args(a)): Parameters<Args<AppendArgs>>,
    ) -> ToolResult {
        let a = args!(a);
        let ns = open!(self, ctx, a.namespace, KeyScope::Write);
        let kind = match a.role.as_str() {
            "system" => Kind::System,
            "human" | "user" => Kind::Human,
            "ai" | "assistant" => Kind::Ai,
            "tool" => Kind::Tool,
            other => {
                return failed(format!(
                    "role is {other:?}; must be system, human, ai or tool"
                ));
            }
        };
        let scope = Scope {
            user: a.user,
            session: Some(a.session),
            ..Scope::default()
        };
        let stm = ShortTermMemory::new(self.store.clone(), &ns);
        match stm
            .append(&scope, MemoryItem::new(&ns, kind, a.content))
            .await
        {
            Ok(item) => ok(json!({ "message": brief(&item) })),
            Err(e) => failed(e),
        }
    }

    #[tool(
        description = "The recent part of a conversation that fits a prompt: whole rounds, newest last, never splitting a tool call from its result."
    )]
    async fn conversation_window(
        &self,
        ctx: RequestContext<RoleServer>,
        Parameters(Args(a)): Parameters<Args<WindowArgs>>,
    ) -> ToolResult {
        let a = args!(a);
        let ns = open!(self, ctx, a.namespace, KeyScope::Read);
        let scope = Scope {
            user: a.user,
            session: Some(a.session),
            ..Scope::default()
        };
        let mut config = WindowConfig::new().max_rounds(a.max_rounds.unwrap_or(0));
        if let Some(t) = a.max_tokens {
            config = config.max_tokens(t);
        }
        let stm = ShortTermMemory::new(self.store.clone(), &ns);
        match stm.window(&scope, &config).await {
            Ok(w) => ok(json!({
                "messages": w.messages.iter().map(|m| json!({"role": m.kind.as_str(), "content": m.content})).collect::<Vec<_>>(),
                "rounds_total": w.rounds_total,
                "rounds_kept": w.rounds_kept,
                "tokens": w.tokens,
            })),
            Err(e) => failed(e),
        }
    }

    #[tool(
        description = "What to know at the start of a session with a user, within a token budget: their profile, the latest summary, then the memories most relevant to an optional topic."
    )]
    async fn briefing(
        &self,
        ctx: RequestContext<RoleServer>,
        Parameters(Args(a)): Parameters<Args<BriefingArgs>>,
    ) -> ToolResult {
        let a = args!(a);
        let ns = open!(self, ctx, a.namespace, KeyScope::Read);
        let budget = a.max_tokens.unwrap_or(1000);
        let counter = CharsPerFour;
        let mut used = 0usize;
        let mut taken: Vec<String> = Vec::new();
        let mut fits = |item: &MemoryItem| -> bool {
            let cost = counter.count(&item.content);
            if taken.contains(&item.id) || used + cost > budget {
                return false;
            }
            used += cost;
            taken.push(item.id.clone());
            true
        };
        let newest = |filter: Filter, limit: usize| {
            ListRequest::new()
                .with_filter(filter)
                .sorted(SortKey::Updated, Order::Desc)
                .with_limit(limit)
        };
        let user = Filter::new().user(a.user.clone());
        let profile = match self
            .store
            .list(
                &ns,
                &newest(user.clone().kind(Kind::Custom("user_profile".into())), 50),
            )
            .await
        {
            Ok(page) => page.items,
            Err(e) => return failed(e),
        };
        let profile: Vec<Value> = profile.iter().filter(|i| fits(i)).map(brief).collect();
        let summaries = {
            let mut filter = user.clone().kind(Kind::Summary);
            if let Some(s) = &a.session {
                filter = filter.session(s.clone());
            }
            match self.store.list(&ns, &newest(filter, 1)).await {
                Ok(page) if !page.items.is_empty() || a.session.is_none() => page.items,
                Ok(_) => match self
                    .store
                    .list(&ns, &newest(user.clone().kind(Kind::Summary), 1))
                    .await
                {
                    Ok(page) => page.items,
                    Err(e) => return failed(e),
                },
                Err(e) => return failed(e),
            }
        };
        let summary = summaries.iter().find(|i| fits(i)).map(brief);
        let mut memories = Vec::new();
        if let Some(topic) = a.topic.filter(|t| !t.trim().is_empty()) {
            let mut filter = user.clone();
            for k in LONG_TERM_KINDS {
                filter = filter.kind(Kind::parse(k));
            }
            let request = SearchRequest::new(SearchMode::Hybrid)
                .with_query(topic)
                .with_filter(filter)
                .with_limit(20);
            match self.store.search(&ns, &request).await {
                Ok(results) => {
                    for h in &results.hits {
                        if fits(&h.item) {
                            let mut b = brief(&h.item);
                            b["score"] = json!(h.score);
                            memories.push(b);
                        }
                    }
                }
                Err(e) => return failed(e),
            }
        }
        ok(json!({
            "user": a.user,
            "profile": profile,
            "summary": summary,
            "memories": memories,
            "tokens": used,
            "max_tokens": budget,
        }))
    }
}

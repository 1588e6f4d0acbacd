//! Conversation windowing: which messages of a conversation go into the next prompt.
//!
//! A round starts at a human message and runs to the next one; messages before the first
//! human message form a round of their own. System messages and the summary of older rounds
//! are always kept. Rounds are kept
//! or dropped whole, newest kept first, so an ai message never loses the results of its tool
//! calls and a tool result never loses its call.

use std::collections::HashSet;
use std::sync::Arc;

use memlayer_store::types::{Kind, MemoryItem};

/// Counts tokens of a text, for the token budget.
pub trait TokenCounter: Send + Sync + std::fmt::Debug {
    /// The number of tokens `text` costs.
    fn count(&self, text: &str) -> usize;
}

/// The default counter: one token per four characters, rounded up (a common rule of thumb for
/// English with GPT-style tokenizers; plug in a real tokenizer for exact budgets).
#[derive(Clone, Copy, Debug, Default)]
pub struct CharsPerFour;

impl TokenCounter for CharsPerFour {
    fn count(&self, text: &str) -> usize {
        text.chars().count().div_ceil(4)
    }
}

/// How much of a conversation a window keeps.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WindowConfig {
    /// The newest rounds to keep; 0 keeps every round.
    pub max_rounds: usize,
    /// The token budget of the whole window, system messages included; `None` is unlimited.
    pub max_tokens: Option<usize>,
    /// The counter of the budget.
    pub counter: Arc<dyn TokenCounter>,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            max_rounds: 0,
            max_tokens: None,
            counter: Arc::new(CharsPerFour),
        }
    }
}

impl WindowConfig {
    /// Every round, no budget.
    pub fn new() -> Self {
        WindowConfig::default()
    }

    /// Keeps the newest `n` rounds (0 = all).
    pub fn max_rounds(mut self, n: usize) -> Self {
        self.max_rounds = n;
        self
    }

    /// Keeps the window within `tokens`.
    pub fn max_tokens(mut self, tokens: usize) -> Self {
        self.max_tokens = Some(tokens);
        self
    }

    /// Counts tokens with `counter`.
    pub fn counter(mut self, counter: Arc<dyn TokenCounter>) -> Self {
        self.counter = counter;
        self
    }
}

/// A window of a conversation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Window {
    /// The kept messages, in conversation order.
    pub messages: Vec<MemoryItem>,
    /// Rounds in the conversation.
    pub rounds_total: usize,
    /// Rounds in the window.
    pub rounds_kept: usize,
    /// Tokens of the window, by the configured counter.
    pub tokens: usize,
    /// The budget could not be met: the system messages and the newest round alone exceed it
    /// (they are kept anyway, since a prompt without the current turn is useless).
    pub over_budget: bool,
}

/// The call ids of an ai message's tool calls (`tool_calls[*].id`).
pub fn call_ids(message: &MemoryItem) -> impl Iterator<Item = &str> {
    message
        .tool_calls
        .iter()
        .filter_map(|c| c.get("id").and_then(serde_json::Value::as_str))
}

/// Tokens of one message: its content and, for an ai message, its tool calls as JSON.
pub fn message_tokens(counter: &dyn TokenCounter, message: &MemoryItem) -> usize {
    let calls = if message.tool_calls.is_empty() {
        0
    } else {
        let json = serde_json::to_string(&message.tool_calls).unwrap_or_default();
        counter.count(&json)
    };
    counter.count(&message.content) + calls
}

/// Windows `messages` (in conversation order) by `config`.
pub fn window(messages: &[MemoryItem], config: &WindowConfig) -> Window {
    let counter = config.counter.as_ref();
    // Round index per non-system message; systems are `None`.
    let mut round_of: Vec<Option<usize>> = Vec::with_capacity(messages.len());
    let mut rounds: Vec<usize> = Vec::new(); // tokens per round
    let mut system_tokens = 0;
    for m in messages {
        let tokens = message_tokens(counter, m);
        // Systems and the summary of older rounds are always kept.
        if matches!(m.kind, Kind::System | Kind::Summary) {
            round_of.push(None);
            system_tokens += tokens;
            continue;
        }
        if m.kind == Kind::Human || rounds.is_empty() {
            rounds.push(0);
        }
        let r = rounds.len() - 1;
        rounds[r] += tokens;
        round_of.push(Some(r));
    }
    let total = rounds.len();
    let mut first = if config.max_rounds == 0 {
        0
    } else {
        total.saturating_sub(config.max_rounds)
    };
    let mut tokens = system_tokens + rounds[first..].iter().sum::<usize>();
    let mut over_budget = false;
    if let Some(budget) = config.max_tokens {
        while tokens > budget && first + 1 < total {
            tokens -= rounds[first];
            first += 1;
        }
        over_budget = tokens > budget;
    }
    let kept: Vec<&MemoryItem> = messages
        .iter()
        .zip(&round_of)
        .filter(|(_, r)| r.is_none_or(|r| r >= first))
        .map(|(m, _)| m)
        .collect();
    // A tool result whose call is not in the window (only possible when the stored
    // conversation already lacked it, or answered across a human turn) is left out.
    let calls: HashSet<&str> = kept.iter().flat_map(|m| call_ids(m)).collect();
    let mut out = Vec::with_capacity(kept.len());
    for m in kept {
        if m.kind == Kind::Tool
            && !m
                .tool_call_id
                .as_deref()
                .is_some_and(|id| calls.contains(id))
        {
            tokens = tokens.saturating_sub(message_tokens(counter, m));
            continue;
        }
        out.push(m.clone());
    }
    Window {
        messages: out,
        rounds_total: total,
        rounds_kept: total - first,
        tokens,
        over_budget,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code
    use super::*;
    use serde_json::json;

    fn msg(kind: Kind, text: &str) -> MemoryItem {
        MemoryItem::new("ns", kind, text)
    }

    fn ai_calls(ids: &[&str]) -> MemoryItem {
        msg(Kind::Ai, "").with_tool_calls(
            ids.iter()
                .map(|id| json!({"id": id, "name": "search", "args": {}}))
                .collect(),
        )
    }

    fn tool(id: &str) -> MemoryItem {
        msg(Kind::Tool, "result").with_tool_result(id, "search", false)
    }

    fn contents(w: &Window) -> Vec<String> {
        w.messages
            .iter()
            .map(|m| format!("{}:{}", m.kind, m.content))
            .collect()
    }

    fn conversation() -> Vec<MemoryItem> {
        vec![
            msg(Kind::System, "be brief"),
            msg(Kind::Human, "h1"),
            ai_calls(&["c1", "c2"]),
            tool("c1"),
            tool("c2"),
            msg(Kind::Ai, "a1"),
            msg(Kind::Human, "h2"),
            msg(Kind::Ai, "a2"),
            msg(Kind::Human, "h3"),
            msg(Kind::Ai, "a3"),
        ]
    }

    #[test]
    fn rounds_start_at_human_messages_and_systems_stay() {
        let w = window(&conversation(), &WindowConfig::new().max_rounds(2));
        assert_eq!(
            contents(&w),
            ["system:be brief", "human:h2", "ai:a2", "human:h3", "ai:a3"]
        );
        assert_eq!((w.rounds_total, w.rounds_kept), (3, 2));
        let all = window(&conversation(), &WindowConfig::new());
        assert_eq!(all.messages.len(), 10);
    }

    #[test]
    fn a_round_with_tool_calls_is_kept_whole_or_dropped_whole() {
        let c = conversation();
        let full = window(&c, &WindowConfig::new());
        // Budgets from the whole conversation down to nothing: the first round (with the calls)
        // is either entirely in or entirely out, never a call without its results.
        for budget in (0..=full.tokens).rev() {
            let w = window(&c, &WindowConfig::new().max_tokens(budget));
            let has_call = w.messages.iter().any(|m| !m.tool_calls.is_empty());
            let results = w.messages.iter().filter(|m| m.kind == Kind::Tool).count();
            assert_eq!(results, if has_call { 2 } else { 0 }, "budget {budget}");
            assert!(w.tokens <= budget || w.over_budget, "budget {budget}");
            assert_eq!(w.messages.last().unwrap().content, "a3");
        }
    }

    #[test]
    fn the_newest_round_is_kept_even_over_budget() {
        let w = window(&conversation(), &WindowConfig::new().max_tokens(1));
        assert!(w.over_budget);
        assert_eq!(contents(&w), ["system:be brief", "human:h3", "ai:a3"]);
    }

    #[test]
    fn orphan_tool_results_are_left_out() {
        let c = vec![
            msg(Kind::Human, "h"),
            tool("nobody-called-me"),
            msg(Kind::Ai, "a"),
        ];
        let w = window(&c, &WindowConfig::new());
        assert_eq!(contents(&w), ["human:h", "ai:a"]);
    }

    #[test]
    fn messages_before_the_first_human_form_a_round() {
        let c = vec![
            msg(Kind::Ai, "hello, how can I help?"),
            msg(Kind::Human, "h"),
        ];
        let w = window(&c, &WindowConfig::new().max_rounds(1));
        assert_eq!(contents(&w), ["human:h"]);
        assert_eq!(w.rounds_total, 2);
    }

    #[test]
    fn chars_per_four_rounds_up() {
        assert_eq!(CharsPerFour.count(""), 0);
        assert_eq!(CharsPerFour.count("abcde"), 2);
        assert_eq!(CharsPerFour.count("été!"), 1);
    }
}

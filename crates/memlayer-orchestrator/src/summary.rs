//! Summaries: when a conversation grows past a threshold, its older part is replaced by one
//! `summary` item that supersedes every message it covers. The covered messages stay in the
//! store, reachable through `Filter::as_of` and `predecessors`.

use std::sync::Arc;

use async_trait::async_trait;
use memlayer_store::types::{Kind, MemoryItem, Timestamp};
use memlayer_store::{Error, Result};
use serde_json::Value as Json;

use crate::llm::{ChatClient, transcript};
use crate::short_term::{Scope, ShortTermMemory};
use crate::window::{CharsPerFour, TokenCounter, message_tokens};

/// What a summary is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SummaryTemplate {
    /// The course of a conversation: what was asked, done and decided.
    Conversation,
    /// The facts stated, one per line.
    Facts,
    /// What is known about the people in it.
    Profiles,
}

impl SummaryTemplate {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            SummaryTemplate::Conversation => "conversation",
            SummaryTemplate::Facts => "facts",
            SummaryTemplate::Profiles => "profiles",
        }
    }

    /// The instruction an LLM summarizer gets.
    pub fn instruction(self) -> &'static str {
        match self {
            SummaryTemplate::Conversation => {
                "Summarise this conversation for the assistant's future self: what the user \
                 asked, what was done (tools included) and what was decided, in a few sentences."
            }
            SummaryTemplate::Facts => {
                "List the facts stated in this conversation, one short sentence per line."
            }
            SummaryTemplate::Profiles => {
                "Describe what this conversation reveals about the user: preferences, \
                 circumstances, goals, in a few sentences."
            }
        }
    }
}

/// When to summarise and what to keep.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SummaryConfig {
    /// Summarise when the conversation holds more messages than this (systems excluded).
    pub message_threshold: usize,
    /// Or when it holds more tokens than this.
    pub token_threshold: Option<usize>,
    /// Messages at the end left as they are (extended back to the start of their round, so
    /// a tool call is never separated from its results).
    pub keep_recent: usize,
    /// The template.
    pub template: SummaryTemplate,
    /// The token counter of `token_threshold`.
    pub counter: Arc<dyn TokenCounter>,
}

impl Default for SummaryConfig {
    fn default() -> Self {
        SummaryConfig {
            message_threshold: 40,
            token_threshold: None,
            keep_recent: 10,
            template: SummaryTemplate::Conversation,
            counter: Arc::new(CharsPerFour),
        }
    }
}

impl SummaryConfig {
    /// Sets the message threshold.
    pub fn message_threshold(mut self, n: usize) -> Self {
        self.message_threshold = n;
        self
    }

    /// Sets the token threshold.
    pub fn token_threshold(mut self, n: usize) -> Self {
        self.token_threshold = Some(n);
        self
    }

    /// Sets how many recent messages stay.
    pub fn keep_recent(mut self, n: usize) -> Self {
        self.keep_recent = n;
        self
    }

    /// Sets the template.
    pub fn template(mut self, t: SummaryTemplate) -> Self {
        self.template = t;
        self
    }
}

/// Writes a summary of items.
#[async_trait]
pub trait Summarizer: Send + Sync + std::fmt::Debug {
    /// A short name, recorded on the summary.
    fn name(&self) -> &str;

    /// The summary text of `items` (a previous summary, if any, comes first).
    ///
    /// # Errors
    /// Any; nothing is written when summarising fails.
    async fn summarize(&self, template: SummaryTemplate, items: &[MemoryItem]) -> Result<String>;
}

/// The default summarizer: no model, the first sentence of every human and ai message (and the
/// previous summary), capped in length.
#[derive(Clone, Copy, Debug)]
pub struct ExtractiveSummarizer {
    /// The longest summary, in characters.
    pub max_chars: usize,
}

impl Default for ExtractiveSummarizer {
    fn default() -> Self {
        ExtractiveSummarizer { max_chars: 2_000 }
    }
}

fn first_sentence(text: &str) -> &str {
    let end = text
        .char_indices()
        .find(|(_, c)| matches!(c, '.' | '!' | '?' | '\n'))
        .map_or(text.len(), |(i, c)| i + c.len_utf8());
    text[..end].trim()
}

#[async_trait]
impl Summarizer for ExtractiveSummarizer {
    fn name(&self) -> &str {
        "extractive"
    }

    async fn summarize(&self, template: SummaryTemplate, items: &[MemoryItem]) -> Result<String> {
        let mut out = String::new();
        for item in items {
            let line = match item.kind {
                Kind::Summary => item.content.clone(),
                Kind::Human if template != SummaryTemplate::Conversation => {
                    first_sentence(&item.content).to_owned()
                }
                Kind::Human => format!("User: {}", first_sentence(&item.content)),
                Kind::Ai if template == SummaryTemplate::Conversation => {
                    format!("Assistant: {}", first_sentence(&item.content))
                }
                _ => continue,
            };
            if line.is_empty() {
                continue;
            }
            if out.chars().count() + line.chars().count() + 1 > self.max_chars {
                break;
            }
            out.push_str(&line);
            out.push('\n');
        }
        let out = out.trim().to_owned();
        if out.is_empty() {
            return Err(Error::invalid("items", "hold nothing to summarise"));
        }
        Ok(out)
    }
}

/// A summarizer over an OpenAI-compatible chat endpoint (answer `{"summary": "..."}`).
#[derive(Clone, Debug)]
pub struct LlmSummarizer {
    chat: ChatClient,
}

impl LlmSummarizer {
    /// A summarizer over `chat`.
    pub fn new(chat: ChatClient) -> Self {
        LlmSummarizer { chat }
    }
}

#[async_trait]
impl Summarizer for LlmSummarizer {
    fn name(&self) -> &str {
        "llm"
    }

    async fn summarize(&self, template: SummaryTemplate, items: &[MemoryItem]) -> Result<String> {
        let system = format!(
            "{} Answer with a JSON object {{\"summary\": \"...\"}} and nothing else.",
            template.instruction()
        );
        let answer = self.chat.json(&system, &transcript(items)).await?;
        answer
            .get("summary")
            .and_then(Json::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| crate::extraction::malformed("the answer has no non-empty \"summary\""))
    }
}

/// Where the summarised range ends: `keep_recent` from the end, moved back to the start of
/// that round. Returns the number of leading messages to summarise.
fn cut(messages: &[&MemoryItem], keep_recent: usize) -> usize {
    let mut cut = messages.len().saturating_sub(keep_recent);
    while cut > 0 && cut < messages.len() && messages[cut].kind != Kind::Human {
        cut -= 1;
    }
    cut
}

impl ShortTermMemory {
    /// Summarises the older part of a scope's conversation when it is past a threshold.
    ///
    /// The summary is a `summary` item (owner fields of the scope, created just after the last
    /// message it covers, so it sits in their place), and every covered message, and the
    /// previous summary if any, is superseded by it. Returns the summary, or `None` when
    /// below the thresholds or when nothing can be summarised without splitting a round.
    ///
    /// # Errors
    /// The summarizer's and the store's errors; when the summarizer fails nothing is written.
    pub async fn summarize_if_needed(
        &self,
        scope: &Scope,
        config: &SummaryConfig,
        summarizer: &dyn Summarizer,
    ) -> Result<Option<MemoryItem>> {
        let all = self.messages(scope).await?;
        let talk: Vec<&MemoryItem> = all.iter().filter(|m| m.kind != Kind::System).collect();
        let messages: Vec<&MemoryItem> = talk
            .iter()
            .copied()
            .filter(|m| m.kind != Kind::Summary)
            .collect();
        let tokens: usize = talk
            .iter()
            .map(|m| message_tokens(config.counter.as_ref(), m))
            .sum();
        let over_messages = messages.len() > config.message_threshold;
        let over_tokens = config.token_threshold.is_some_and(|t| tokens > t);
        if !over_messages && !over_tokens {
            return Ok(None);
        }
        let n = cut(&messages, config.keep_recent);
        if n == 0 {
            return Ok(None);
        }
        let range: Vec<&MemoryItem> = messages[..n].to_vec();
        let previous: Vec<&MemoryItem> = talk
            .iter()
            .copied()
            .filter(|m| m.kind == Kind::Summary)
            .collect();
        let input: Vec<MemoryItem> = previous
            .iter()
            .chain(range.iter())
            .map(|m| (*m).clone())
            .collect();
        let text = summarizer.summarize(config.template, &input).await?;
        let last = range.last().map_or(Timestamp::now(), |m| m.created_at);
        let mut summary = MemoryItem::new(self.namespace(), Kind::Summary, text)
            .with_tier(self.tier())
            .with_extra("summarizes", range.len() as u64)
            .with_extra("template", config.template.as_str())
            .with_extra("summarizer", summarizer.name());
        summary.created_at = last;
        summary.valid_from = Some(Timestamp::now());
        scope.stamp(&mut summary);
        let summary = self.store().upsert(summary).await?;
        for m in previous.iter().chain(range.iter()) {
            self.store()
                .supersede(self.namespace(), &m.id, &summary.id)
                .await?;
        }
        Ok(Some(summary))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sentences() {
        assert_eq!(first_sentence("Hi there. More."), "Hi there.");
        assert_eq!(first_sentence("no end"), "no end");
        assert_eq!(first_sentence("Ça va? Oui."), "Ça va?");
    }

    #[test]
    fn the_cut_never_splits_a_round() {
        let m = |k: Kind| MemoryItem::new("n", k, "x");
        let items = [
            m(Kind::Human),
            m(Kind::Ai),
            m(Kind::Human),
            m(Kind::Ai),
            m(Kind::Tool),
            m(Kind::Ai),
        ];
        let refs: Vec<&MemoryItem> = items.iter().collect();
        assert_eq!(cut(&refs, 2), 2);
        assert_eq!(cut(&refs, 4), 2);
        assert_eq!(cut(&refs, 5), 0);
        assert_eq!(cut(&refs, 0), 6);
    }
}

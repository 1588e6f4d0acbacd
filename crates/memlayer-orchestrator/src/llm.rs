//! An OpenAI-compatible chat client, and the two LLM parts built on it: the extractor and the
//! summarizer. Output is demanded as JSON and validated; anything malformed is an error (the
//! orchestrator retries it, then dead-letters it).

use std::time::Duration;

use async_trait::async_trait;
use memlayer_store::types::MemoryItem;
use memlayer_store::{Error, ErrorKind, Result};
use serde_json::{Value as Json, json};

use crate::extraction::{Extractor, malformed};
use crate::long_term::{ExtractionType, NewMemory, Triple};

/// An OpenAI-compatible `/v1/chat/completions` endpoint.
#[derive(Clone, Debug)]
pub struct ChatClient {
    http: reqwest::Client,
    url: String,
    model: String,
    api_key: Option<String>,
}

impl ChatClient {
    /// A client for `base_url` (for example `http://127.0.0.1:8080`, with or without `/v1`)
    /// and `model`, with a 60 s timeout.
    ///
    /// # Errors
    /// `ConfigInvalid` when the HTTP client cannot be built.
    pub fn new(base_url: &str, model: impl Into<String>) -> Result<Self> {
        let base = base_url.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::new(ErrorKind::ConfigInvalid, format!("http client: {e}")))?;
        Ok(ChatClient {
            http,
            url: format!("{base}/v1/chat/completions"),
            model: model.into(),
            api_key: None,
        })
    }

    /// Sends `Authorization: Bearer <key>`.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// One completion that must be a JSON object.
    ///
    /// # Errors
    /// `Unavailable` (temporary) for connection failures, 429 and 5xx; `Timeout`;
    /// `ConfigInvalid` for other 4xx; `InvalidInput` (field `extraction`) for an answer that
    /// is not a JSON object.
    pub async fn json(&self, system: &str, user: &str) -> Result<Json> {
        let body = json!({
            "model": self.model,
            "temperature": 0,
            "response_format": { "type": "json_object" },
            "messages": [
                { "role": "system", "content": system },
                { "role": "user", "content": user },
            ],
        });
        let mut request = self.http.post(&self.url).json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                ErrorKind::Timeout
            } else {
                ErrorKind::Unavailable
            };
            Error::new(kind, format!("chat endpoint {}: {e}", self.url)).set_temporary(true)
        })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| {
            Error::new(ErrorKind::Unavailable, format!("chat endpoint body: {e}"))
                .set_temporary(true)
        })?;
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(Error::new(
                ErrorKind::Unavailable,
                format!("chat endpoint answered {status}: {text}"),
            )
            .set_temporary(true));
        }
        if !status.is_success() {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                format!("chat endpoint answered {status}: {text}"),
            ));
        }
        let envelope: Json = serde_json::from_str(&text)
            .map_err(|e| malformed(format!("the endpoint's answer is not JSON: {e}")))?;
        let content = envelope
            .pointer("/choices/0/message/content")
            .and_then(Json::as_str)
            .ok_or_else(|| malformed("the answer has no choices[0].message.content"))?;
        let value: Json = serde_json::from_str(content)
            .map_err(|e| malformed(format!("the model's content is not JSON: {e}")))?;
        if !value.is_object() {
            return Err(malformed("the model's content is not a JSON object"));
        }
        Ok(value)
    }
}

/// The transcript of messages as the LLM reads it: one `role: text` line each.
pub fn transcript(messages: &[MemoryItem]) -> String {
    messages
        .iter()
        .map(|m| format!("{}: {}", m.kind, m.content))
        .collect::<Vec<_>>()
        .join("\n")
}

const EXTRACT_PROMPT: &str = "You extract long-term memories from a conversation. Answer with a \
JSON object {\"memories\": [...]} and nothing else. Each memory is an object with \"type\" \
(\"user_profile\" for facts about the user, \"agent_experience\" for lessons the assistant \
learned, \"facts\" for facts about the world), \"content\" (one self-contained sentence), \
optionally \"subject\", \"predicate\" and \"object\" when the memory is a statement that can \
change over time, and optionally \"importance\" and \"confidence\" between 0 and 1. Return \
{\"memories\": []} when there is nothing worth remembering.";

/// The LLM extractor.
#[derive(Clone, Debug)]
pub struct LlmExtractor {
    chat: ChatClient,
}

impl LlmExtractor {
    /// An extractor over `chat`.
    pub fn new(chat: ChatClient) -> Self {
        LlmExtractor { chat }
    }
}

fn unit(v: Option<&Json>, field: &str, default: f32) -> Result<f32> {
    match v {
        None | Some(Json::Null) => Ok(default),
        Some(v) => {
            let x = v
                .as_f64()
                .ok_or_else(|| malformed(format!("{field} is not a number")))?;
            if !(0.0..=1.0).contains(&x) {
                return Err(malformed(format!("{field} is {x}, outside 0..=1")));
            }
            Ok(x as f32)
        }
    }
}

/// Validates the extractor's JSON answer.
///
/// # Errors
/// `InvalidInput` (field `extraction`) naming the first bad memory and field.
pub fn parse_memories(value: &Json) -> Result<Vec<NewMemory>> {
    let list = value
        .get("memories")
        .and_then(Json::as_array)
        .ok_or_else(|| malformed("the answer has no \"memories\" array"))?;
    let mut out = Vec::with_capacity(list.len());
    for (i, m) in list.iter().enumerate() {
        let field = |name: &str| format!("memories[{i}].{name}");
        let kind = m
            .get("type")
            .and_then(Json::as_str)
            .and_then(ExtractionType::parse)
            .ok_or_else(|| {
                malformed(format!(
                    "{} must be user_profile, agent_experience or facts",
                    field("type")
                ))
            })?;
        let content = m
            .get("content")
            .and_then(Json::as_str)
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| malformed(format!("{} must be a non-empty string", field("content"))))?;
        let mut memory = NewMemory::new(kind, content)
            .with_importance(unit(m.get("importance"), &field("importance"), 0.5)?)
            .with_confidence(unit(m.get("confidence"), &field("confidence"), 0.8)?);
        let part = |name: &str| m.get(name).and_then(Json::as_str).map(str::trim);
        if let (Some(s), Some(p), Some(o)) = (part("subject"), part("predicate"), part("object"))
            && !s.is_empty()
            && !p.is_empty()
            && !o.is_empty()
        {
            memory = memory.with_triple(Triple::new(s, p, o));
        }
        out.push(memory);
    }
    Ok(out)
}

#[async_trait]
impl Extractor for LlmExtractor {
    fn name(&self) -> &str {
        "llm"
    }

    async fn extract(&self, messages: &[MemoryItem]) -> Result<Vec<NewMemory>> {
        let answer = self
            .chat
            .json(EXTRACT_PROMPT, &transcript(messages))
            .await?;
        parse_memories(&answer)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code
    use super::*;

    #[test]
    fn valid_answers_parse_and_bad_ones_name_the_field() {
        let ok = json!({"memories": [
            {"type": "user_profile", "content": "Lives in Oslo", "subject": "user",
             "predicate": "lives_in", "object": "Oslo", "confidence": 0.9},
            {"type": "facts", "content": "Water boils at 100 C"}
        ]});
        let m = parse_memories(&ok).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].triple.as_ref().unwrap().object, "Oslo");
        assert_eq!(m[0].confidence, 0.9);
        for (bad, needle) in [
            (json!({"items": []}), "memories"),
            (
                json!({"memories": [{"type": "opinion", "content": "x"}]}),
                "memories[0].type",
            ),
            (
                json!({"memories": [{"type": "facts", "content": " "}]}),
                "memories[0].content",
            ),
            (
                json!({"memories": [{"type": "facts", "content": "x", "importance": 3}]}),
                "memories[0].importance",
            ),
        ] {
            let e = parse_memories(&bad).unwrap_err();
            assert!(e.to_string().contains(needle), "{e}");
        }
    }
}

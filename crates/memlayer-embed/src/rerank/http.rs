//! A reranker behind the common `/rerank` JSON endpoint (the shape Cohere, Jina, Text
//! Embeddings Inference and most gateways accept): `{model, query, documents, top_n}` in,
//! `{results: [{index, relevance_score}]}` out.

use std::time::Duration;

use async_trait::async_trait;
use memlayer_store::{Error, ErrorKind, Result};
use serde::Deserialize;
use serde_json::json;

use super::Reranker;

/// Where and how to reach a `/rerank` endpoint.
#[derive(Clone, Debug)]
pub struct HttpRerankerConfig {
    /// The full endpoint URL, e.g. `http://127.0.0.1:8080/rerank` or
    /// `https://api.cohere.com/v2/rerank`.
    pub url: String,
    /// The model name sent with each call.
    pub model: String,
    /// A bearer token, if the endpoint wants one.
    pub api_key: Option<String>,
    /// The timeout of one call.
    pub timeout: Duration,
}

impl HttpRerankerConfig {
    /// A configuration with a 30 s timeout and no key.
    pub fn new(url: impl Into<String>, model: impl Into<String>) -> Self {
        HttpRerankerConfig {
            url: url.into(),
            model: model.into(),
            api_key: None,
            timeout: Duration::from_secs(30),
        }
    }

    /// Sets the bearer token.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }
}

/// A [`Reranker`] over HTTP.
#[derive(Clone, Debug)]
pub struct HttpReranker {
    config: HttpRerankerConfig,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Answer {
    results: Vec<Scored>,
}

#[derive(Deserialize)]
struct Scored {
    index: usize,
    relevance_score: f32,
}

fn error(kind: ErrorKind, msg: String) -> Error {
    Error::new(kind, msg).with_backend("rerank")
}

impl HttpReranker {
    /// A client for `config`.
    ///
    /// # Errors
    /// `ConfigInvalid` when the HTTP client cannot be built.
    pub fn new(config: HttpRerankerConfig) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| error(ErrorKind::ConfigInvalid, format!("HTTP client: {e}")))?;
        Ok(HttpReranker { config, client })
    }
}

#[async_trait]
impl Reranker for HttpReranker {
    fn model_id(&self) -> &str {
        &self.config.model
    }

    async fn score(&self, query: &str, documents: &[String]) -> Result<Vec<f32>> {
        if documents.is_empty() {
            return Ok(Vec::new());
        }
        let mut request = self.client.post(&self.config.url).json(&json!({
            "model": self.config.model,
            "query": query,
            "documents": documents,
            "top_n": documents.len(),
        }));
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                ErrorKind::Timeout
            } else {
                ErrorKind::Unavailable
            };
            error(kind, format!("{}: {e}", self.config.url))
        })?;
        let status = response.status();
        if !status.is_success() {
            let kind = if status.is_server_error() {
                ErrorKind::Unavailable
            } else {
                ErrorKind::Unexpected
            };
            return Err(error(
                kind,
                format!("{} answered {status}", self.config.url),
            ));
        }
        let answer: Answer = response.json().await.map_err(|e| {
            error(
                ErrorKind::Unexpected,
                format!("{} sent no `results` list: {e}", self.config.url),
            )
        })?;
        let mut scores = vec![None; documents.len()];
        for r in answer.results {
            let slot = scores.get_mut(r.index).ok_or_else(|| {
                error(
                    ErrorKind::Unexpected,
                    format!(
                        "index {} is out of range for {} documents",
                        r.index,
                        documents.len()
                    ),
                )
            })?;
            *slot = Some(r.relevance_score);
        }
        scores
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                s.ok_or_else(|| {
                    error(
                        ErrorKind::Unexpected,
                        format!("{} returned no score for document {i}", self.config.url),
                    )
                })
            })
            .collect()
    }
}

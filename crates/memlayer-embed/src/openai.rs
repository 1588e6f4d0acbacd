use std::time::Duration;

use async_trait::async_trait;
use memlayer_store::{Error, ErrorKind, Result};
use serde::Deserialize;
use serde_json::json;

use crate::Embedder;

/// How to reach an OpenAI-compatible `/v1/embeddings` endpoint.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OpenAiConfig {
    /// Base URL including the version, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:8080/v1`.
    pub base_url: String,
    /// Bearer token, if the endpoint needs one.
    pub api_key: Option<String>,
    /// Model name sent to the endpoint.
    pub model: String,
    /// The vector dimension every answer must have.
    pub dimension: usize,
    /// Texts per request.
    pub batch_size: usize,
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retries after a 429, a 5xx or a connection failure.
    pub max_retries: u32,
    /// First backoff; doubles per retry, capped at 8 s (a `Retry-After` header wins).
    pub initial_backoff: Duration,
}

impl OpenAiConfig {
    /// A config with defaults: batches of 64, 30 s timeout, 5 retries from 250 ms.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>, dimension: usize) -> Self {
        OpenAiConfig {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            dimension,
            batch_size: 64,
            timeout: Duration::from_secs(30),
            max_retries: 5,
            initial_backoff: Duration::from_millis(250),
        }
    }

    /// Sets the API key.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Sets the retry policy.
    pub fn retries(mut self, max_retries: u32, initial_backoff: Duration) -> Self {
        self.max_retries = max_retries;
        self.initial_backoff = initial_backoff;
        self
    }

    /// Sets the batch size.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }
}

/// An embedder over any OpenAI-compatible embeddings endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiEmbedder {
    config: OpenAiConfig,
    model_id: String,
    client: reqwest::Client,
}

#[derive(Deserialize)]
struct Response {
    data: Vec<Datum>,
}

#[derive(Deserialize)]
struct Datum {
    embedding: Vec<f32>,
    #[serde(default)]
    index: Option<usize>,
}

fn unexpected(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Unexpected, msg).with_backend("openai-embeddings")
}

impl OpenAiEmbedder {
    /// A client for `config`.
    ///
    /// # Errors
    /// `ConfigInvalid` for a zero dimension or an unusable HTTP client.
    pub fn new(config: OpenAiConfig) -> Result<Self> {
        if config.dimension == 0 {
            return Err(Error::new(
                ErrorKind::ConfigInvalid,
                "dimension must be at least 1",
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| {
                Error::new(ErrorKind::ConfigInvalid, "cannot build the HTTP client").with_source(e)
            })?;
        Ok(OpenAiEmbedder {
            model_id: format!("openai:{}", config.model),
            config,
            client,
        })
    }

    fn url(&self) -> String {
        format!("{}/embeddings", self.config.base_url.trim_end_matches('/'))
    }

    async fn request_once(
        &self,
        texts: &[String],
    ) -> std::result::Result<Vec<Vec<f32>>, (Error, Option<Duration>)> {
        let mut req = self
            .client
            .post(self.url())
            .json(&json!({"model": self.config.model, "input": texts}));
        if let Some(key) = &self.config.api_key {
            req = req.bearer_auth(key);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let kind = if e.is_timeout() {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Unavailable
                };
                return Err((
                    Error::new(kind, format!("embedding request to {} failed", self.url()))
                        .with_backend("openai-embeddings")
                        .with_source(e),
                    None,
                ));
            }
        };
        let status = resp.status();
        if status.as_u16() == 429 || status.is_server_error() {
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|s| s.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err((
                Error::new(
                    ErrorKind::Unavailable,
                    format!("embedding endpoint answered {status}"),
                )
                .with_backend("openai-embeddings"),
                retry_after,
            ));
        }
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            let body: String = body.chars().take(300).collect();
            let kind = if status.as_u16() == 400 || status.as_u16() == 422 {
                ErrorKind::InvalidInput
            } else {
                ErrorKind::ConfigInvalid
            };
            return Err((
                Error::new(
                    kind,
                    format!("embedding endpoint answered {status}: {body}"),
                )
                .with_backend("openai-embeddings")
                .set_temporary(false),
                None,
            ));
        }
        let bytes = resp.bytes().await.map_err(|e| {
            (
                Error::new(ErrorKind::Unavailable, "embedding response was cut off")
                    .with_backend("openai-embeddings")
                    .with_source(e),
                None,
            )
        })?;
        self.parse(&bytes, texts.len()).map_err(|e| (e, None))
    }

    fn parse(&self, bytes: &[u8], expected: usize) -> Result<Vec<Vec<f32>>> {
        let resp: Response = serde_json::from_slice(bytes).map_err(|e| {
            unexpected(format!("embedding response is not the expected JSON ({e})"))
        })?;
        if resp.data.len() != expected {
            return Err(unexpected(format!(
                "embedding response has {} vectors for {expected} inputs",
                resp.data.len()
            )));
        }
        let mut out: Vec<Option<Vec<f32>>> = vec![None; expected];
        for (pos, d) in resp.data.into_iter().enumerate() {
            let i = d.index.unwrap_or(pos);
            if i >= expected || out[i].is_some() {
                return Err(unexpected(format!(
                    "embedding response has a bad or repeated index {i}"
                )));
            }
            if d.embedding.len() != self.config.dimension {
                return Err(unexpected(format!(
                    "embedding response vector {i} has dimension {}, expected {}",
                    d.embedding.len(),
                    self.config.dimension
                )));
            }
            if d.embedding.iter().any(|x| !x.is_finite()) {
                return Err(unexpected(format!(
                    "embedding response vector {i} is not finite"
                )));
            }
            out[i] = Some(d.embedding);
        }
        out.into_iter()
            .map(|v| v.ok_or_else(|| unexpected("embedding response misses an index")))
            .collect()
    }

    async fn request(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut backoff = self.config.initial_backoff;
        let mut attempt = 0;
        loop {
            match self.request_once(texts).await {
                Ok(v) => return Ok(v),
                Err((e, retry_after)) => {
                    if !e.is_temporary() || attempt >= self.config.max_retries {
                        return Err(e.with_context("attempts", attempt + 1));
                    }
                    attempt += 1;
                    let wait = retry_after.unwrap_or(backoff).min(Duration::from_secs(8));
                    tokio::time::sleep(wait).await;
                    backoff = (backoff * 2).min(Duration::from_secs(8));
                }
            }
        }
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimension(&self) -> usize {
        self.config.dimension
    }

    fn max_batch(&self) -> usize {
        self.config.batch_size
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.config.batch_size.max(1)) {
            out.extend(self.request(chunk).await?);
        }
        Ok(out)
    }
}

//! A Redis Streams event sink (feature `redis-streams`): every event is one `XADD` entry, the
//! stream trimmed to about `max_len` entries (`MAXLEN ~`), so the log is durable and bounded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use fred::clients::Client;
use fred::interfaces::ClientLike;
use fred::prelude::Builder;
use fred::types::config::Config;
use fred::types::{CustomCommand, Value};
use memlayer_store::{Error, ErrorKind, Result};

use crate::events::{EventSink, MemoryEvent};

fn redis_error(e: fred::error::Error) -> Error {
    Error::new(ErrorKind::Unavailable, format!("redis: {}", e.details())).set_temporary(true)
}

/// Appends events to a Redis stream.
#[derive(Debug)]
pub struct RedisStreamSink {
    client: Client,
    key: String,
    max_len: u64,
    failed: AtomicU64,
}

impl RedisStreamSink {
    /// Connects to `url` and appends to the stream `key`, keeping about `max_len` entries.
    ///
    /// # Errors
    /// `ConfigInvalid` for a bad URL; `Unavailable` when Redis does not answer.
    pub async fn connect(url: &str, key: impl Into<String>, max_len: u64) -> Result<Self> {
        let config = Config::from_url(url)
            .map_err(|e| Error::new(ErrorKind::ConfigInvalid, format!("redis url: {e}")))?;
        let client = Builder::from_config(config)
            .with_performance_config(|p| p.default_command_timeout = Duration::from_secs(5))
            .build()
            .map_err(redis_error)?;
        match tokio::time::timeout(Duration::from_secs(10), client.init()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(redis_error(e)),
            Err(_) => {
                return Err(
                    Error::new(ErrorKind::Unavailable, "timed out connecting to Redis")
                        .set_temporary(true),
                );
            }
        }
        Ok(RedisStreamSink {
            client,
            key: key.into(),
            max_len: max_len.max(1),
            failed: AtomicU64::new(0),
        })
    }

    /// Events that could not be appended (Redis down); they are counted, never retried.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    async fn xadd(&self, event: &MemoryEvent) -> Result<()> {
        let json = serde_json::to_string(event)
            .map_err(|e| Error::new(ErrorKind::Unexpected, format!("event: {e}")))?;
        let args: Vec<Value> = vec![
            self.key.clone().into(),
            "MAXLEN".into(),
            "~".into(),
            (self.max_len as i64).into(),
            "*".into(),
            "event".into(),
            json.into(),
        ];
        let _: Value = self
            .client
            .custom(CustomCommand::new_static("XADD", None, false), args)
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    /// Every entry of the stream, oldest first: its id and its event's JSON.
    async fn entries(&self) -> Result<Vec<(Value, Option<String>)>> {
        let v: Value = self
            .client
            .custom(
                CustomCommand::new_static("XRANGE", None, false),
                vec![
                    Value::from(self.key.clone()),
                    Value::from("-"),
                    Value::from("+"),
                ],
            )
            .await
            .map_err(redis_error)?;
        Ok(v.into_array()
            .into_iter()
            .map(|entry| {
                let mut parts = entry.into_array().into_iter();
                let id = parts.next().unwrap_or(Value::Null);
                let json = parts
                    .next()
                    .and_then(|f| f.into_array().into_iter().nth(1))
                    .and_then(|v| v.as_string());
                (id, json)
            })
            .collect())
    }

    /// Every event in the stream, oldest first.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer; `Unexpected` for an entry that does not parse.
    pub async fn read_all(&self) -> Result<Vec<MemoryEvent>> {
        let mut out = Vec::new();
        for (_, json) in self.entries().await? {
            let Some(json) = json else { continue };
            let event = serde_json::from_str(&json)
                .map_err(|e| Error::new(ErrorKind::Unexpected, format!("stream entry: {e}")))?;
            out.push(event);
        }
        Ok(out)
    }

    /// Deletes every entry that mentions one of `ids` of `namespace` (to forget a user: the
    /// events of their items go with the items). An entry that also mentions other items goes
    /// whole. Returns how many entries were deleted.
    ///
    /// # Errors
    /// `Unavailable` when Redis does not answer.
    pub async fn forget_ids(
        &self,
        namespace: &str,
        ids: &std::collections::HashSet<String>,
    ) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut doomed: Vec<Value> = Vec::new();
        for (entry_id, json) in self.entries().await? {
            let Some(Ok(event)) = json.map(|j| serde_json::from_str::<MemoryEvent>(&j)) else {
                continue;
            };
            if mentions(&event, namespace, ids) {
                doomed.push(entry_id);
            }
        }
        let mut deleted = 0u64;
        for chunk in doomed.chunks(500) {
            let mut args = vec![Value::from(self.key.clone())];
            args.extend(chunk.iter().cloned());
            let n: Value = self
                .client
                .custom(CustomCommand::new_static("XDEL", None, false), args)
                .await
                .map_err(redis_error)?;
            deleted += n.as_u64().unwrap_or(0);
        }
        Ok(deleted)
    }
}

/// Whether `event` names one of `ids` in `namespace`.
fn mentions(event: &MemoryEvent, namespace: &str, ids: &std::collections::HashSet<String>) -> bool {
    match event {
        MemoryEvent::Added {
            namespace: ns,
            ids: list,
        }
        | MemoryEvent::Updated {
            namespace: ns,
            ids: list,
        }
        | MemoryEvent::Deleted {
            namespace: ns,
            ids: list,
            ..
        }
        | MemoryEvent::Searched {
            namespace: ns,
            ids: list,
        } => ns == namespace && list.iter().any(|i| ids.contains(i)),
        MemoryEvent::Expired { namespace: ns, id } => ns == namespace && ids.contains(id),
        MemoryEvent::Cleared { .. } | MemoryEvent::Decayed { .. } => false,
    }
}

#[async_trait]
impl EventSink for RedisStreamSink {
    async fn deliver(&self, event: &MemoryEvent) {
        if self.xadd(event).await.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

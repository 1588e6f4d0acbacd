//! `forget --user U`: hard-deletes everything of a user, in every namespace, and writes the
//! event log's record of it. The erasure itself is `memlayer_server::erase`, which the MCP
//! `forget` tool shares.

use std::collections::BTreeMap;

pub use memlayer_server::erase::{Forgetting, Forgotten, forget_user};

/// Connects to a Redis Streams event log named `redis://HOST:PORT/STREAM-KEY` (checked before
/// anything is deleted).
///
/// # Errors
/// A one-line message for a bad spec or an unreachable Redis.
#[cfg(feature = "redis")]
pub async fn event_log(spec: &str) -> Result<memlayer::orchestrator::RedisStreamSink, String> {
    let (url, key) = spec
        .rsplit_once('/')
        .filter(|(u, k)| u.starts_with("redis://") && u.len() > "redis://".len() && !k.is_empty())
        .ok_or_else(|| format!("--events {spec:?}: expected redis://HOST:PORT/STREAM-KEY"))?;
    memlayer::orchestrator::RedisStreamSink::connect(url, key, 1_000_000)
        .await
        .map_err(|e| format!("--events: {e}"))
}

/// Deletes the events of the forgotten items from the event log; returns how many entries went.
///
/// # Errors
/// A one-line message when Redis fails.
#[cfg(feature = "redis")]
pub async fn forget_events(
    log: &memlayer::orchestrator::RedisStreamSink,
    report: &BTreeMap<String, Forgotten>,
) -> Result<u64, String> {
    let mut n = 0;
    for (ns, f) in report {
        let ids: std::collections::HashSet<String> = f.ids.iter().cloned().collect();
        n += log
            .forget_ids(ns, &ids)
            .await
            .map_err(|e| format!("--events: {e}"))?;
    }
    Ok(n)
}

/// The error of a forget that stopped part way, after its counts were printed.
pub(crate) fn stopped(done: &Forgetting) -> crate::Outcome {
    match &done.failure {
        None => Ok(()),
        Some(e) => Err(format!(
            "forget stopped after deleting {} (counted above): {e}; the rest is still stored, \
             run the same command again to finish",
            crate::plural(done.items(), "item")
        )),
    }
}

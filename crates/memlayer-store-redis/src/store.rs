//! The [`MemoryStore`] implementation.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;

use async_trait::async_trait;
use fred::interfaces::ClientLike;
use fred::types::Value;
use memlayer_store::backend::lifecycle::reassign_conflict;
use memlayer_store::backend::search::{run_list, run_search};
use memlayer_store::limits::{self, check_namespace, check_pin};
use memlayer_store::types::{MemoryItem, Tier, Timestamp};
use memlayer_store::{
    Capabilities, ClearRequest, CountOptions, EmbeddingPin, Error, ExpiredItem, ListRequest,
    MemoryStore, Page, Result, SearchRequest, SearchResults,
};

use crate::client::{BACKEND, NONE, RedisStore, tag};
use crate::codec::{Doc, bytes_of, numeric_field, string_of, token};
use crate::scripts;

#[async_trait]
impl MemoryStore for RedisStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::full();
        // The default ranks RediSearch's candidates with memlayer's BM25; a named scorer ranks
        // in the engine.
        caps.native_keyword_ranking = self.config.scorer != "memlayer";
        caps.approximate_vectors = true;
        caps
    }

    async fn upsert_many(&self, items: Vec<MemoryItem>) -> Result<Vec<MemoryItem>> {
        let op = "upsert_many";
        limits::check_batch(&items).map_err(|e| tag(e, op))?;
        // Every vector of the batch must agree with the pin before anything is written.
        let mut batch_pin: Option<(String, usize)> = None;
        for e in items.iter().filter_map(|i| i.embedding.as_ref()) {
            match &batch_pin {
                Some((m, d)) => check_pin(
                    &EmbeddingPin {
                        model: m.clone(),
                        dim: *d,
                    },
                    &e.model,
                    e.dim(),
                )
                .map_err(|e| tag(e, op))?,
                None => batch_pin = Some((e.model.clone(), e.dim())),
            }
        }
        if let Some((m, d)) = &batch_pin
            && let Some(p) = self.load_pin().await.map_err(|e| tag(e, op))?
        {
            check_pin(&p, m, *d).map_err(|e| tag(e, op))?;
        }
        let now = Timestamp::now();
        let mut fresh = Vec::with_capacity(items.len());
        for item in items {
            fresh.push(
                memlayer_store::backend::lifecycle::merge_upsert(None, item, now)
                    .map_err(|e| tag(e, op))?,
            );
        }
        if let Some((m, d)) = &batch_pin {
            self.pin(m, *d).await.map_err(|e| tag(e, op))?;
        }
        for item in &fresh {
            for (k, v) in &item.metadata.extra {
                if v.is_number() && self.may_add_numeric(&numeric_field(k)) {
                    self.ensure_numeric_field(&numeric_field(k), k)
                        .await
                        .map_err(|e| tag(e, op))?;
                }
            }
        }
        let mut keys: Vec<String> = fresh
            .iter()
            .map(|i| self.key(&i.namespace, &i.id))
            .collect();
        keys.push(self.counts_key());
        keys.push(self.lens_key());
        let mut args: Vec<Value> = vec![now.as_millis().to_string().into()];
        for item in &fresh {
            let fields = self.fields(item);
            args.push(item.namespace.clone().into());
            args.push(item.status.as_str().into());
            args.push(item.created_at.as_millis().to_string().into());
            args.push(item.access_count.to_string().into());
            args.push(
                item.last_accessed_at
                    .map_or(String::new(), |t| t.as_millis().to_string())
                    .into(),
            );
            args.push(fields.len().to_string().into());
            for (k, v) in fields {
                args.push(k.into());
                args.push(v);
            }
        }
        let reply = match self.eval(scripts::UPSERT, keys, args).await {
            Ok(v) => v,
            Err(e) => {
                let msg = e.to_string();
                let index = |s: &str| -> Option<usize> {
                    let rest = msg.split(s).nth(1)?;
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    digits.parse::<usize>().ok()
                };
                if let Some(i) = index("STATUS ") {
                    let item = &fresh[i.saturating_sub(1).min(fresh.len() - 1)];
                    let old = msg
                        .split("STATUS ")
                        .nth(1)
                        .and_then(|s| s.split_whitespace().nth(1))
                        .map(|s| s.trim_end_matches(':'))
                        .unwrap_or("?");
                    return Err(tag(
                        Error::invalid(
                            "status",
                            format!(
                                "cannot move from {old} to {}; legal moves are draft->accepted, draft->discard, accepted->discard",
                                item.status.as_str()
                            ),
                        ),
                        op,
                    ));
                }
                return Err(tag(e, op));
            }
        };
        let rows = reply.into_array();
        let mut out = Vec::with_capacity(fresh.len());
        for (mut item, row) in fresh.into_iter().zip(rows) {
            let r: Vec<String> = row
                .into_array()
                .iter()
                .map(|v| string_of(v).unwrap_or_default())
                .collect();
            let int = |i: usize| r.get(i).and_then(|s| s.parse::<i64>().ok());
            item.version = int(0).map_or(1, |v| v as u64);
            item.created_at = Timestamp::from_millis(int(1).unwrap_or(item.created_at.as_millis()));
            item.updated_at = Timestamp::from_millis(int(2).unwrap_or(item.updated_at.as_millis()));
            item.access_count = int(3).map_or(0, |v| v as u64);
            item.last_accessed_at = int(4).map(Timestamp::from_millis);
            out.push(item);
        }
        Ok(out)
    }

    async fn get(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        let v = self
            .call("HGETALL", vec![self.key(namespace, id).into()])
            .await
            .map_err(|e| tag(e, "get"))?;
        let arr = v.into_array();
        let mut fields = HashMap::new();
        for p in arr.chunks(2) {
            if let (Some(k), Some(v)) = (p.first().and_then(string_of), p.get(1).and_then(bytes_of))
            {
                fields.insert(k, v);
            }
        }
        if fields.is_empty() {
            return Err(tag(Error::not_found(namespace, id), "get"));
        }
        let item = Doc {
            fields,
            score: None,
        }
        .item()
        .map_err(|e| tag(e, "get"))?;
        if item.namespace != namespace || item.deleted {
            return Err(tag(Error::not_found(namespace, id), "get"));
        }
        Ok(item)
    }

    async fn delete(&self, namespace: &str, id: &str) -> Result<()> {
        let n = self
            .eval(
                scripts::DELETE,
                vec![self.key(namespace, id), self.counts_key(), self.lens_key()],
                vec![namespace.into(), "".into()],
            )
            .await
            .map_err(|e| tag(e, "delete"))?;
        if n.as_i64() != Some(1) {
            return Err(tag(Error::not_found(namespace, id), "delete"));
        }
        Ok(())
    }

    async fn clear(&self, namespace: &str, request: &ClearRequest) -> Result<u64> {
        limits::check_clear(namespace, request).map_err(|e| tag(e, "clear"))?;
        let mut filter = request.filter.clone();
        filter.include_deleted = false;
        let t = self.translate(namespace, &filter, filter.effective_now());
        if t.empty {
            return Ok(0);
        }
        let docs = self.all_docs(&t.query).await.map_err(|e| tag(e, "clear"))?;
        let now = Timestamp::now().as_millis().to_string();
        let mut n = 0;
        for d in docs {
            let item = d.item().map_err(|e| tag(e, "clear"))?;
            if !Self::passes(&item, &t.residual) {
                continue;
            }
            let r = self
                .eval(
                    scripts::SOFT_DELETE,
                    vec![self.key(namespace, &item.id)],
                    vec![namespace.into(), now.clone().into()],
                )
                .await
                .map_err(|e| tag(e, "clear"))?;
            if r.as_i64() == Some(1) {
                n += 1;
            }
        }
        Ok(n)
    }

    async fn count(&self, namespace: &str, options: CountOptions) -> Result<u64> {
        if options.include_deleted {
            let v = self
                .call("HGET", vec![self.counts_key().into(), namespace.into()])
                .await
                .map_err(|e| tag(e, "count"))?;
            return Ok(string_of(&v)
                .and_then(|s| s.parse::<i64>().ok())
                .unwrap_or(0)
                .max(0) as u64);
        }
        let (total, _) = self
            .search_docs(
                &format!("@t_ns:{{{}}} @t_del:{{n}}", token(namespace)),
                vec!["LIMIT".into(), "0".into(), "0".into()],
                false,
            )
            .await
            .map_err(|e| tag(e, "count"))?;
        Ok(total)
    }

    async fn search(&self, namespace: &str, request: &SearchRequest) -> Result<SearchResults> {
        run_search(self, namespace, request)
            .await
            .map_err(|e| tag(e, "search"))
    }

    async fn list(&self, namespace: &str, request: &ListRequest) -> Result<Page> {
        run_list(self, namespace, request)
            .await
            .map_err(|e| tag(e, "list"))
    }

    async fn supersede(&self, namespace: &str, id: &str, by: &str) -> Result<MemoryItem> {
        limits::check_supersede(id, by).map_err(|e| tag(e, "supersede"))?;
        let now = Timestamp::now().as_millis().to_string();
        let r = self
            .eval(
                scripts::SUPERSEDE,
                vec![self.key(namespace, id), self.key(namespace, by)],
                vec![namespace.into(), now.into(), by.into(), token(by).into()],
            )
            .await
            .map_err(|e| tag(e, "supersede"))?;
        match r.as_i64() {
            Some(1) => self.get(namespace, id).await,
            Some(-1) => Err(tag(Error::not_found(namespace, by), "supersede")),
            _ => Err(tag(Error::not_found(namespace, id), "supersede")),
        }
    }

    async fn restore(&self, namespace: &str, id: &str) -> Result<MemoryItem> {
        let now = Timestamp::now().as_millis().to_string();
        let r = self
            .eval(
                scripts::SUPERSEDE,
                vec![self.key(namespace, id), self.key(namespace, id)],
                vec![namespace.into(), now.into(), "".into(), NONE.into()],
            )
            .await
            .map_err(|e| tag(e, "restore"))?;
        match r.as_i64() {
            Some(1) => self.get(namespace, id).await,
            _ => Err(tag(Error::not_found(namespace, id), "restore")),
        }
    }

    async fn predecessors(&self, namespace: &str, id: &str) -> Result<Vec<MemoryItem>> {
        let query = format!(
            "@t_ns:{{{}}} @t_del:{{n}} @t_supby:{{{}}}",
            token(namespace),
            token(id)
        );
        let docs = self
            .all_docs(&query)
            .await
            .map_err(|e| tag(e, "predecessors"))?;
        let mut out: Vec<MemoryItem> = docs
            .iter()
            .map(Doc::item)
            .collect::<Result<Vec<_>>>()
            .map_err(|e| tag(e, "predecessors"))?
            .into_iter()
            .filter(|i| i.superseded_by.as_deref() == Some(id))
            .collect();
        out.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        Ok(out)
    }

    async fn reinforce(&self, namespace: &str, ids: &[String], at: Timestamp) -> Result<u64> {
        limits::check_ids("ids", ids).map_err(|e| tag(e, "reinforce"))?;
        let unique: HashSet<&String> = ids.iter().collect();
        let mut n = 0;
        for id in unique {
            // The tier is needed for the TTL: read it, then the script re-checks everything.
            let tier = self
                .call("HGET", vec![self.key(namespace, id).into(), "tier".into()])
                .await
                .map_err(|e| tag(e, "reinforce"))?;
            let ttl = string_of(&tier)
                .and_then(|t| Tier::parse(&t))
                .and_then(Tier::default_ttl)
                .map_or(String::new(), |d| d.as_millis().to_string());
            let r = self
                .eval(
                    scripts::REINFORCE,
                    vec![self.key(namespace, id)],
                    vec![
                        namespace.into(),
                        at.as_millis().to_string().into(),
                        ttl.into(),
                    ],
                )
                .await
                .map_err(|e| tag(e, "reinforce"))?;
            if r.as_i64() == Some(1) {
                n += 1;
            }
        }
        Ok(n)
    }

    async fn decay(
        &self,
        namespace: &str,
        idle_before: Timestamp,
        factor: f32,
        floor: f32,
    ) -> Result<u64> {
        limits::check_decay(factor, floor).map_err(|e| tag(e, "decay"))?;
        let query = format!("@t_ns:{{{}}} @t_del:{{n}}", token(namespace));
        let docs = self
            .all_docs_returning(&query, &["id"])
            .await
            .map_err(|e| tag(e, "decay"))?;
        let mut n = 0;
        for d in docs {
            let Some(id) = d.text("id") else { continue };
            // The script re-checks everything and decays from the current scores.
            let r = self
                .eval(
                    scripts::DECAY,
                    vec![self.key(namespace, &id)],
                    vec![
                        namespace.into(),
                        idle_before.as_millis().to_string().into(),
                        factor.to_string().into(),
                        floor.to_string().into(),
                    ],
                )
                .await
                .map_err(|e| tag(e, "decay"))?;
            if r.as_i64() == Some(1) {
                n += 1;
            }
        }
        Ok(n)
    }

    async fn list_expired(&self, now: Timestamp, limit: usize) -> Result<Vec<ExpiredItem>> {
        let (_, docs) = self
            .search_docs(
                &format!("@exp:[-inf {}]", now.as_millis()),
                vec![
                    "SORTBY".into(),
                    "cat".into(),
                    "ASC".into(),
                    "LIMIT".into(),
                    "0".into(),
                    "10000".into(),
                ],
                false,
            )
            .await
            .map_err(|e| tag(e, "list_expired"))?;
        let mut out: Vec<ExpiredItem> = docs
            .iter()
            .filter_map(|d| {
                Some(ExpiredItem {
                    namespace: d.text("namespace")?,
                    id: d.text("id")?,
                    expires_at: Timestamp::from_millis(d.text("expires_at")?.parse().ok()?),
                })
            })
            .collect();
        out.sort_by(|a, b| {
            a.expires_at
                .cmp(&b.expires_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        out.truncate(limit);
        Ok(out)
    }

    async fn delete_if_expired_before(
        &self,
        namespace: &str,
        id: &str,
        cutoff: Timestamp,
    ) -> Result<()> {
        let n = self
            .eval(
                scripts::DELETE,
                vec![self.key(namespace, id), self.counts_key(), self.lens_key()],
                vec![namespace.into(), cutoff.as_millis().to_string().into()],
            )
            .await
            .map_err(|e| tag(e, "delete_if_expired_before"))?;
        if n.as_i64() != Some(1) {
            return Err(tag(
                Error::not_found(namespace, id).with_context("cutoff", cutoff),
                "delete_if_expired_before",
            ));
        }
        Ok(())
    }

    async fn list_namespaces(&self) -> Result<Vec<String>> {
        let v = self
            .call("HGETALL", vec![self.counts_key().into()])
            .await
            .map_err(|e| tag(e, "list_namespaces"))?;
        let arr = v.into_array();
        let mut out: Vec<String> = arr
            .chunks(2)
            .filter_map(|p| {
                let n = p.get(1).and_then(string_of)?.parse::<i64>().ok()?;
                (n > 0).then(|| p.first().and_then(string_of)).flatten()
            })
            .collect();
        out.sort();
        Ok(out)
    }

    async fn delete_namespace(&self, namespace: &str) -> Result<u64> {
        let docs = self
            .all_docs(&format!("@t_ns:{{{}}}", token(namespace)))
            .await
            .map_err(|e| tag(e, "delete_namespace"))?;
        let mut n = 0;
        for d in docs {
            let Some(id) = d.text("id") else { continue };
            let r = self
                .eval(
                    scripts::DELETE,
                    vec![self.key(namespace, &id), self.counts_key(), self.lens_key()],
                    vec![namespace.into(), "".into()],
                )
                .await
                .map_err(|e| tag(e, "delete_namespace"))?;
            if r.as_i64() == Some(1) {
                n += 1;
            }
        }
        Ok(n)
    }

    async fn reassign(&self, ids: &[String], from: &str, to: &str) -> Result<u64> {
        check_namespace(to).map_err(|e| tag(e, "reassign"))?;
        limits::check_ids("ids", ids).map_err(|e| tag(e, "reassign"))?;
        let unique: Vec<&String> = ids.iter().collect::<BTreeSet<_>>().into_iter().collect();
        let mut keys = Vec::with_capacity(unique.len() * 2 + 2);
        for id in &unique {
            keys.push(self.key(from, id));
            keys.push(self.key(to, id));
        }
        keys.push(self.counts_key());
        keys.push(self.lens_key());
        // One script, so the move is all or nothing: a conflict moves no item.
        let moved = match self
            .eval(
                scripts::REASSIGN,
                keys,
                vec![from.into(), to.into(), token(to).into()],
            )
            .await
        {
            Ok(v) => v,
            Err(e) => {
                let conflicting = e
                    .to_string()
                    .split("CONFLICT ")
                    .nth(1)
                    .map(|rest| {
                        rest.chars()
                            .take_while(char::is_ascii_digit)
                            .collect::<String>()
                    })
                    .and_then(|digits| digits.parse::<usize>().ok())
                    .and_then(|i| unique.get(i.wrapping_sub(1)).copied());
                return Err(tag(
                    match conflicting {
                        Some(id) => reassign_conflict(id, to),
                        None => e,
                    },
                    "reassign",
                ));
            }
        };
        Ok(moved.as_i64().map_or(0, |n| n.max(0) as u64))
    }

    async fn embedding_pin(&self) -> Result<Option<EmbeddingPin>> {
        self.load_pin().await.map_err(|e| tag(e, "embedding_pin"))
    }

    async fn ping(&self) -> Result<()> {
        self.call("PING", vec![])
            .await
            .map_err(|e| tag(e, "ping"))?;
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        let _ = self.pool.quit().await;
        Ok(())
    }
}

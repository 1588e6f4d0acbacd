//! The write path: an upsert run in one transaction, with its term postings, and the error
//! that explains a refused write.

use std::collections::{HashMap, HashSet};

use memlayer_store::backend::lifecycle::merge_upsert;
use memlayer_store::limits::check_pin;
use memlayer_store::ranking::text;
use memlayer_store::types::{MemoryItem, Timestamp};
use memlayer_store::{EmbeddingPin, Error, ErrorKind, Result};

use crate::client::PostgresStore;
use crate::error::map_pg;
use crate::schema;
use crate::sql::{ITEM_COLUMNS, read_item};

/// Term frequencies and length of a text under memlayer's analyzer.
pub(crate) fn postings_of(content: &str) -> (Vec<String>, Vec<i32>, i32) {
    let mut tf: HashMap<String, i32> = HashMap::new();
    let mut len = 0i32;
    for t in text::terms(content) {
        *tf.entry(t).or_default() += 1;
        len = len.saturating_add(1);
    }
    let (terms, counts) = tf.into_iter().unzip();
    (terms, counts, len)
}

impl PostgresStore {
    pub(crate) async fn upsert_in(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        items: Vec<MemoryItem>,
    ) -> Result<Vec<MemoryItem>> {
        let s = self.s();
        let now = Timestamp::now();
        let mut pin = schema::load_pin(tx, s).await?;
        for e in items.iter().filter_map(|i| i.embedding.as_ref()) {
            if let Some(p) = &pin {
                check_pin(p, &e.model, e.dim())?;
                continue;
            }
            // Serialise concurrent first pins, then look again.
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                &[&format!("{s}.pin")],
            )
            .await
            .map_err(map_pg)?;
            pin = schema::load_pin(tx, s).await?;
            match &pin {
                Some(p) => check_pin(p, &e.model, e.dim())?,
                None => {
                    let new_pin = EmbeddingPin {
                        model: e.model.clone(),
                        dim: e.dim(),
                    };
                    schema::create_pin(
                        tx,
                        s,
                        &new_pin,
                        self.config.hnsw_m,
                        self.config.hnsw_ef_construction,
                    )
                    .await?;
                    pin = Some(new_pin);
                }
            }
        }
        // Defaults (tier TTL, version 1) as for a fresh insert; the statement applies the rules
        // for an existing row atomically.
        let fresh = items
            .into_iter()
            .map(|item| merge_upsert(None, item, now))
            .collect::<Result<Vec<_>>>()?;
        // One statement per run of distinct (namespace, id) keys (Postgres cannot update a
        // row twice in one statement), in the batch's order, so a repeated key's later item
        // wins.
        let mut out = Vec::with_capacity(fresh.len());
        let mut run: Vec<MemoryItem> = Vec::new();
        let mut keys = HashSet::new();
        for item in fresh {
            let key = (item.namespace.clone(), item.id.clone());
            if !keys.insert(key.clone()) {
                out.extend(self.upsert_run(tx, std::mem::take(&mut run)).await?);
                keys.clear();
                keys.insert(key);
            }
            run.push(item);
        }
        out.extend(self.upsert_run(tx, run).await?);
        Ok(out)
    }

    /// Upserts items of distinct ids in one statement, then rewrites their postings in two.
    pub(crate) async fn upsert_run(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        run: Vec<MemoryItem>,
    ) -> Result<Vec<MemoryItem>> {
        if run.is_empty() {
            return Ok(Vec::new());
        }
        let s = self.s();
        let text = |f: &dyn Fn(&MemoryItem) -> String| run.iter().map(f).collect::<Vec<_>>();
        let opt_text =
            |f: &dyn Fn(&MemoryItem) -> Option<String>| run.iter().map(f).collect::<Vec<_>>();
        let opt_ms = |f: &dyn Fn(&MemoryItem) -> Option<Timestamp>| {
            run.iter()
                .map(|i| f(i).map(Timestamp::as_millis))
                .collect::<Vec<_>>()
        };
        let ids = text(&|i| i.id.clone());
        let postings: Vec<(Vec<String>, Vec<i32>, i32)> =
            run.iter().map(|i| postings_of(&i.content)).collect();
        let doc_lens: Vec<i32> = postings.iter().map(|p| p.2).collect();
        let tool_calls: Vec<serde_json::Value> = run
            .iter()
            .map(|i| serde_json::Value::Array(i.tool_calls.clone()))
            .collect();
        let extra: Vec<serde_json::Value> = run
            .iter()
            .map(|i| serde_json::Value::Object(i.metadata.extra.clone()))
            .collect();
        let tags: Vec<serde_json::Value> = run
            .iter()
            .map(|i| serde_json::Value::from(i.tags.iter().cloned().collect::<Vec<String>>()))
            .collect();
        let is_error: Vec<Option<bool>> = run.iter().map(|i| i.is_error).collect();
        let importance: Vec<f32> = run.iter().map(|i| i.importance).collect();
        let confidence: Vec<f32> = run.iter().map(|i| i.confidence).collect();
        let access: Vec<i64> = run
            .iter()
            .map(|i| i64::try_from(i.access_count).unwrap_or(i64::MAX))
            .collect();
        let created: Vec<i64> = run.iter().map(|i| i.created_at.as_millis()).collect();
        let updated: Vec<i64> = run.iter().map(|i| i.updated_at.as_millis()).collect();
        let vectors: Vec<Option<pgvector::Vector>> = run
            .iter()
            .map(|i| {
                i.embedding
                    .as_ref()
                    .map(|e| pgvector::Vector::from(e.vector.clone()))
            })
            .collect();
        let sql = format!(
            "INSERT INTO {s}.items AS i (id, namespace, kind, content, status, tool_calls, tool_call_id, tool_name, is_error,
                user_id, session_id, task_id, agent_id, extra, tags, tier, expires_at, importance, confidence,
                access_count, last_accessed_at, superseded_by, valid_from, valid_to, created_at, updated_at, version,
                deleted, embedding_model, embedding, doc_len)
             SELECT u.id, u.namespace, u.kind, u.content, u.status, u.tool_calls, u.tool_call_id, u.tool_name,
                u.is_error, u.user_id, u.session_id, u.task_id, u.agent_id, u.extra,
                ARRAY(SELECT jsonb_array_elements_text(u.tags)), u.tier, u.expires_at, u.importance, u.confidence,
                u.access_count, u.last_accessed_at, u.superseded_by, u.valid_from, u.valid_to, u.created_at,
                u.updated_at, 1, false, u.embedding_model, u.embedding, u.doc_len
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::text[],
                $8::text[], $9::bool[], $10::text[], $11::text[], $12::text[], $13::text[], $14::jsonb[],
                $15::jsonb[], $16::text[], $17::int8[], $18::float4[], $19::float4[], $20::int8[], $21::int8[],
                $22::text[], $23::int8[], $24::int8[], $25::int8[], $26::int8[], $27::text[],
                $28::public.vector[], $29::int4[])
                AS u(id, namespace, kind, content, status, tool_calls, tool_call_id, tool_name, is_error,
                user_id, session_id, task_id, agent_id, extra, tags, tier, expires_at, importance, confidence,
                access_count, last_accessed_at, superseded_by, valid_from, valid_to, created_at, updated_at,
                embedding_model, embedding, doc_len)
             ON CONFLICT (namespace, id) DO UPDATE SET
                kind = EXCLUDED.kind, content = EXCLUDED.content, status = EXCLUDED.status,
                tool_calls = EXCLUDED.tool_calls, tool_call_id = EXCLUDED.tool_call_id,
                tool_name = EXCLUDED.tool_name, is_error = EXCLUDED.is_error, user_id = EXCLUDED.user_id,
                session_id = EXCLUDED.session_id, task_id = EXCLUDED.task_id, agent_id = EXCLUDED.agent_id,
                extra = EXCLUDED.extra, tags = EXCLUDED.tags, tier = EXCLUDED.tier,
                expires_at = EXCLUDED.expires_at, importance = EXCLUDED.importance,
                confidence = EXCLUDED.confidence, superseded_by = EXCLUDED.superseded_by,
                valid_from = EXCLUDED.valid_from, valid_to = EXCLUDED.valid_to,
                updated_at = GREATEST(EXCLUDED.updated_at, i.updated_at + 1),
                version = i.version + 1, deleted = false,
                embedding_model = EXCLUDED.embedding_model, embedding = EXCLUDED.embedding,
                doc_len = EXCLUDED.doc_len
             WHERE i.deleted OR i.status = EXCLUDED.status OR i.status = 'draft'
                   OR (i.status = 'accepted' AND EXCLUDED.status = 'discard')
             RETURNING {ITEM_COLUMNS}"
        );
        let namespaces = text(&|i| i.namespace.clone());
        let rows = tx
            .query(
                &sql,
                &[
                    &ids,
                    &namespaces,
                    &text(&|i| i.kind.as_str().to_owned()),
                    &text(&|i| i.content.clone()),
                    &text(&|i| i.status.as_str().to_owned()),
                    &tool_calls,
                    &opt_text(&|i| i.tool_call_id.clone()),
                    &opt_text(&|i| i.tool_name.clone()),
                    &is_error,
                    &opt_text(&|i| i.metadata.user_id.clone()),
                    &opt_text(&|i| i.metadata.session_id.clone()),
                    &opt_text(&|i| i.metadata.task_id.clone()),
                    &opt_text(&|i| i.metadata.agent_id.clone()),
                    &extra,
                    &tags,
                    &text(&|i| i.tier.as_str().to_owned()),
                    &opt_ms(&|i| i.expires_at),
                    &importance,
                    &confidence,
                    &access,
                    &opt_ms(&|i| i.last_accessed_at),
                    &opt_text(&|i| i.superseded_by.clone()),
                    &opt_ms(&|i| i.valid_from),
                    &opt_ms(&|i| i.valid_to),
                    &created,
                    &updated,
                    &opt_text(&|i| i.embedding.as_ref().map(|e| e.model.clone())),
                    &vectors,
                    &doc_lens,
                ],
            )
            .await
            .map_err(map_pg)?;
        let mut stored: HashMap<(String, String), MemoryItem> = HashMap::with_capacity(rows.len());
        for row in &rows {
            let item = read_item(row)?;
            stored.insert((item.namespace.clone(), item.id.clone()), item);
        }
        let key = |i: &MemoryItem| (i.namespace.clone(), i.id.clone());
        if let Some(refused) = run.iter().find(|i| !stored.contains_key(&key(i))) {
            return Err(self.refusal(tx, refused).await);
        }
        // Postings: the run's old ones go, its new ones come in one statement.
        tx.execute(
            &format!(
                "DELETE FROM {s}.postings WHERE (namespace, item_id) IN
                 (SELECT * FROM unnest($1::text[], $2::text[]))"
            ),
            &[&namespaces, &ids],
        )
        .await
        .map_err(map_pg)?;
        let (mut p_ns, mut p_term, mut p_item, mut p_tf, mut p_len) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (item, (terms, tfs, len)) in run.iter().zip(postings) {
            for (term, tf) in terms.into_iter().zip(tfs) {
                p_ns.push(item.namespace.clone());
                p_item.push(item.id.clone());
                p_term.push(term);
                p_tf.push(tf);
                p_len.push(len);
            }
        }
        tx.execute(
            &format!(
                "INSERT INTO {s}.postings (namespace, term, item_id, tf, doc_len)
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int4[], $5::int4[])"
            ),
            &[&p_ns, &p_term, &p_item, &p_tf, &p_len],
        )
        .await
        .map_err(map_pg)?;
        // In the batch's order.
        Ok(run.iter().filter_map(|i| stored.remove(&key(i))).collect())
    }

    /// Why the upsert guard refused `item`: the status move is illegal.
    pub(crate) async fn refusal(
        &self,
        tx: &tokio_postgres::Transaction<'_>,
        item: &MemoryItem,
    ) -> Error {
        let existing = match tx
            .query_opt(
                &format!(
                    "SELECT status FROM {}.items WHERE namespace = $1 AND id = $2",
                    self.s()
                ),
                &[&item.namespace, &item.id],
            )
            .await
        {
            Ok(row) => row,
            Err(e) => return map_pg(e),
        };
        match existing {
            Some(r) => Error::invalid(
                "status",
                format!(
                    "cannot move from {} to {}; legal moves are draft->accepted, draft->discard, accepted->discard",
                    r.try_get::<_, String>(0).unwrap_or_default(),
                    item.status.as_str()
                ),
            ),
            None => Error::new(
                ErrorKind::Conflict,
                "the row changed during the upsert; retry",
            )
            .set_temporary(true),
        }
    }
}

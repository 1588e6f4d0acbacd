//! The search legs run by `memlayer_store::backend::search::run_search`.

use async_trait::async_trait;
use fred::bytes::Bytes;
use fred::types::Value;
use memlayer_store::backend::search::{SearchLegs, leg_hit};
use memlayer_store::ranking::text;
use memlayer_store::types::MemoryItem;
use memlayer_store::{Cursor, Filter, ListRequest, RankedBy, Result, SearchHit};

use crate::client::RedisStore;

#[async_trait]
impl SearchLegs for RedisStore {
    async fn page(
        &self,
        namespace: &str,
        request: &ListRequest,
        cursor: Option<Cursor>,
        offset: usize,
    ) -> Result<(Vec<MemoryItem>, Option<String>)> {
        self.ordered_page(namespace, request, cursor, offset).await
    }

    async fn keyword_leg(
        &self,
        namespace: &str,
        text_query: &str,
        terms: &[String],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<SearchHit>> {
        if self.config.scorer == "memlayer" {
            return self.bm25_leg(namespace, terms, filter, k).await;
        }
        // Literal words only (letters and digits): no RediSearch syntax can reach the query.
        let words = text::query_words(text_query);
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let t = self.translate(namespace, filter, filter.effective_now());
        if t.empty {
            return Ok(Vec::new());
        }
        let query = format!("{} @content:({})", t.query, words.join("|"));
        let mut fetch = k.max(10);
        loop {
            let (total, docs) = self
                .search_docs(
                    &query,
                    vec![
                        "SCORER".into(),
                        self.config.scorer.clone().into(),
                        "LIMIT".into(),
                        "0".into(),
                        fetch.to_string().into(),
                    ],
                    true,
                )
                .await?;
            let mut hits = Vec::new();
            for d in &docs {
                let item = d.item()?;
                if Self::passes(&item, &t.residual) {
                    hits.push(leg_hit(
                        item,
                        d.score.unwrap_or(0.0) as f32,
                        RankedBy::Keyword,
                    ));
                }
            }
            // Residual conditions: keep reading down the ranking until k survive.
            if hits.len() >= k || docs.len() as u64 >= total || t.residual.is_empty() {
                memlayer_store::ranking::fusion::sort_hits(&mut hits);
                hits.truncate(k);
                return Ok(hits);
            }
            fetch *= 4;
        }
    }

    async fn vector_leg(
        &self,
        namespace: &str,
        vector: &[f32],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<SearchHit>> {
        let Some(pin) = self.load_pin().await? else {
            return Ok(Vec::new());
        };
        memlayer_store::limits::check_query_dim(&pin, vector)?;
        let t = self.translate(namespace, filter, filter.effective_now());
        if t.empty {
            return Ok(Vec::new());
        }
        let blob: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
        let zero = vector.iter().all(|x| *x == 0.0);
        // RediSearch leaves zero vectors out of KNN (their distance is undefined); by contract
        // their cosine is 0, so they are ranked here: every vector for a zero query, and the
        // stored zero vectors otherwise.
        let zero_query = if zero {
            "@t_vec:{y}"
        } else {
            "@t_vec:{y} @t_zero:{y}"
        };
        let mut zeros: Vec<SearchHit> = Vec::new();
        for d in self.all_docs(&format!("{} {zero_query}", t.query)).await? {
            let item = d.item()?;
            if Self::passes(&item, &t.residual) {
                zeros.push(leg_hit(item, 0.0, RankedBy::Vector));
            }
        }
        if zero {
            memlayer_store::ranking::fusion::sort_hits(&mut zeros);
            zeros.truncate(k);
            return Ok(zeros);
        }
        let mut fetch = k.max(10);
        loop {
            let query = format!(
                "({})=>[KNN {fetch} @vec $B EF_RUNTIME {} AS __d]",
                t.query, self.config.ef_runtime
            );
            let (total, docs) = self
                .search_docs(
                    &query,
                    vec![
                        "PARAMS".into(),
                        "2".into(),
                        "B".into(),
                        Value::Bytes(Bytes::from(blob.clone())),
                        "SORTBY".into(),
                        "__d".into(),
                        "ASC".into(),
                        "LIMIT".into(),
                        "0".into(),
                        fetch.to_string().into(),
                    ],
                    false,
                )
                .await?;
            let mut hits = zeros.clone();
            for d in &docs {
                let item = d.item()?;
                if !Self::passes(&item, &t.residual) {
                    continue;
                }
                let dist = d
                    .text("__d")
                    .and_then(|s| s.parse::<f64>().ok())
                    .unwrap_or(1.0);
                // A zero vector has no direction: its cosine is 0 by contract.
                let zero_item = item
                    .embedding
                    .as_ref()
                    .is_some_and(|e| e.vector.iter().all(|x| *x == 0.0));
                let score = if zero || zero_item || !dist.is_finite() {
                    0.0
                } else {
                    (1.0 - dist) as f32
                };
                hits.push(leg_hit(item, score, RankedBy::Vector));
            }
            if hits.len() >= k
                || (docs.len() as u64) < fetch as u64
                || docs.len() as u64 >= total
                || t.residual.is_empty()
            {
                memlayer_store::ranking::fusion::sort_hits(&mut hits);
                hits.truncate(k);
                return Ok(hits);
            }
            fetch *= 4;
        }
    }
}

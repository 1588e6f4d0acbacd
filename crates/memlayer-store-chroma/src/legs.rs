//! The search legs run by `memlayer_store::backend::search::run_search`, and the vector leg's helpers.

use std::collections::HashSet;

use async_trait::async_trait;
use chromadb::collection::{GetOptions, QueryOptions};
use memlayer_store::backend::search::{SearchLegs, leg_hit, sort_page};
use memlayer_store::ranking::bm25::{self, Bm25Params, TermRounds};
use memlayer_store::ranking::fusion::sort_hits;
use memlayer_store::ranking::vector::{TopK, cosine};
use memlayer_store::types::MemoryItem;
use memlayer_store::{Cursor, Filter, ListRequest, RankedBy, Result, SearchHit};
use serde_json::{Value as Json, json};

use crate::client::ChromaStore;
use crate::layout;
use crate::layout::{any, translate};
use crate::records::{df_id, ns_id, timed};

#[async_trait]
impl SearchLegs for ChromaStore {
    async fn page(
        &self,
        namespace: &str,
        request: &ListRequest,
        cursor: Option<Cursor>,
        offset: usize,
    ) -> Result<(Vec<MemoryItem>, Option<String>)> {
        // Chroma cannot sort: the filtered records are read and ordered here.
        let items = self.items_where(namespace, &request.filter).await?;
        Ok(sort_page(
            items,
            request.sort,
            request.order,
            cursor.as_ref(),
            offset,
            request.effective_limit(),
        ))
    }

    async fn keyword_leg(
        &self,
        namespace: &str,
        _text: &str,
        terms: &[String],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<SearchHit>> {
        let now = filter.effective_now();
        let t = translate(namespace, filter);
        if t.empty {
            return Ok(Vec::new());
        }
        // One read for the statistics: the namespace's count and length, each term's df.
        let mut ids = vec![ns_id(namespace)];
        ids.extend(terms.iter().map(|t| df_id(namespace, t)));
        let stats = self.stats(&ids).await?;
        let stat = |id: &str, field: &str| {
            stats
                .get(id)
                .and_then(|r| r.meta.get(field))
                .and_then(Json::as_i64)
                .unwrap_or(0)
        };
        let ns_key = ns_id(namespace);
        let n = stat(&ns_key, "n");
        if n <= 0 {
            return Ok(Vec::new());
        }
        let n = n as f32;
        let avg_len = (stat(&ns_key, "len") as f32 / n).max(1.0);
        let mut present: Vec<&str> = Vec::new();
        let mut idf: Vec<f32> = Vec::new();
        let mut df: Vec<f32> = Vec::new();
        for term in terms {
            let d = stat(&df_id(namespace, term), "df");
            if d > 0 {
                present.push(term);
                idf.push(bm25::idf(n, d as f32));
                df.push(d as f32);
            }
        }
        if present.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let params = Bm25Params::default();
        // Plain items: their terms documents carry tf and length, and their metadata is read
        // only when part of the filter could not be expressed in Chroma. Items plain but for
        // an expiry are selected the same way by their own scope keys and read whole, for the
        // re-check. The namespace's other items are listed by their scope (one selective
        // equality) and read whole.
        let mut include = vec!["documents".to_owned()];
        if !t.exact {
            include.push("metadatas".to_owned());
        }
        let others = self.ids_where(t.other.clone()).await?;
        // The rarest terms' documents first; a common term's are read only while a document
        // holding nothing rarer could still enter the top k (each is scored on every query
        // term from its own terms document, so the answer is the full read's).
        let mut rounds = TermRounds::new(params, &idf, &df, n);
        let mut read: HashSet<String> = HashSet::new();
        let mut top: TopK<String> = TopK::new(k);
        while let Some(round) = rounds.next_terms(top.kth()) {
            let probes = round
                .iter()
                .filter_map(|i| present.get(*i))
                .map(|t| json!({ "$contains": layout::term_probe(t) }))
                .collect();
            let Some(has_term) = any(probes) else { break };
            let plain = GetOptions {
                where_metadata: Some(t.plain_where()),
                where_document: Some(has_term.clone()),
                include: Some(include.clone()),
                ..GetOptions::default()
            };
            let expiring = GetOptions {
                where_metadata: Some(t.expiring.clone()),
                where_document: Some(has_term.clone()),
                include: Some(vec!["documents".to_owned(), "metadatas".to_owned()]),
                ..GetOptions::default()
            };
            let (plain, expiring, others) = tokio::try_join!(
                self.get_rows(&self.inner.items, plain),
                self.get_rows(&self.inner.items, expiring),
                self.rows_holding(&others, &has_term)
            )?;
            let rows = plain
                .into_iter()
                .map(|r| (r, t.exact))
                .chain(expiring.into_iter().map(|r| (r, false)))
                .chain(others.into_iter().map(|r| (r, false)));
            for ((id, row), exact) in rows {
                if !read.insert(id.clone()) {
                    continue;
                }
                if !exact {
                    let item = row.item()?;
                    if item.namespace != namespace || !filter.matches(&item, now) {
                        continue;
                    }
                }
                let Some(doc) = &row.document else { continue };
                let (tf, len) = layout::term_counts(doc, &present);
                let score: f32 = tf
                    .iter()
                    .zip(&idf)
                    .filter(|(tf, _)| **tf > 0.0)
                    .map(|(tf, idf)| params.term_score(*idf, *tf, len, avg_len))
                    .sum();
                top.offer(score, id);
            }
        }
        let scored = top.into_sorted();
        let ids: Vec<&str> = scored.iter().map(|(_, id)| id.as_str()).collect();
        let mut winners = self.rows_by_id(&ids).await?;
        let mut hits = Vec::with_capacity(scored.len());
        for (score, id) in scored {
            if let Some(row) = winners.remove(&id) {
                hits.push(leg_hit(row.item()?, score, RankedBy::Keyword));
            }
        }
        Ok(hits)
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
        self.check_dim(vector, &pin)?;
        let t = translate(namespace, filter);
        if t.empty {
            return Ok(Vec::new());
        }
        // Records without a vector are candidates too; `scored` passes over them.
        let w = t.both();
        if vector.iter().all(|x| *x == 0.0) {
            // Every cosine with a zero query is 0: the ranking is by id alone.
            let candidates = self.ids_where(w).await?;
            return self
                .exact_vector(namespace, &candidates, vector, filter, k)
                .await;
        }
        // Chroma evaluates a `where` by visiting every record it matches (chroma-core/chroma
        // #7092), so a filter most of a namespace passes is slow (ADR 0010, "Chroma"). So
        // the graph is first asked with no `where` at all, and the filter is checked on the
        // records read back; when enough of them pass, those are the answer.
        if let Some(hits) = self.vector_unfiltered(namespace, vector, filter, k).await? {
            return Ok(hits);
        }
        // HNSW pre-filtered by Chroma proposes candidates; the records (the truth) are read
        // back, re-checked and scored exactly, so a stale index entry can cost recall but
        // never a wrong answer. Chroma's filtered HNSW can come back short (behind duplicate
        // vectors, as in `search_selective_filter_fills_limit`): then the filter's vectors are
        // counted, and a narrow
        // filter, or a short answer at the largest request, is scored by an exact scan.
        let mut fetch = k.max(10);
        let mut candidates: Option<Vec<String>> = None;
        loop {
            let ids = self.nearest_ids(vector, fetch, Some(w.clone())).await?;
            let hits = self.scored(namespace, &ids, vector, filter).await?;
            if hits.len() < k {
                let all = match candidates.take() {
                    Some(c) => c,
                    None => self.ids_where(w.clone()).await?,
                };
                if hits.len() < all.len() {
                    if all.len() <= self.inner.config.exact_below
                        || fetch >= all.len()
                        || fetch >= self.inner.max_batch
                    {
                        return self.exact_vector(namespace, &all, vector, filter, k).await;
                    }
                    candidates = Some(all);
                    fetch = (fetch * 4).min(self.inner.max_batch);
                    continue;
                }
            }
            return Ok(best(hits, k));
        }
    }
}

impl ChromaStore {
    /// The vector leg without a `where`: the graph's best `max(4k, 40)` of the whole
    /// collection, read back and checked against the namespace and the filter. `None` when
    /// fewer than `k` pass (then the filter decides which records are candidates); otherwise
    /// the `k` best that pass, which are the filtered answer as far as the graph's order
    /// holds (a record it left out ranks below the ones it returned).
    pub(crate) async fn vector_unfiltered(
        &self,
        namespace: &str,
        vector: &[f32],
        filter: &Filter,
        k: usize,
    ) -> Result<Option<Vec<SearchHit>>> {
        let n = (4 * k).max(40).min(self.inner.max_batch.max(1));
        let ids = self.nearest_ids(vector, n, None).await?;
        let hits = self.scored(namespace, &ids, vector, filter).await?;
        Ok((hits.len() >= k).then(|| best(hits, k)))
    }

    /// The ids of the index's `n` nearest records to `vector`, among those `where_metadata`
    /// admits (all of them when it is `None`), nearest first.
    pub(crate) async fn nearest_ids(
        &self,
        vector: &[f32],
        n: usize,
        where_metadata: Option<Json>,
    ) -> Result<Vec<String>> {
        self.check_open()?;
        let options = QueryOptions {
            query_embeddings: Some(vec![vector.to_vec()]),
            query_texts: None,
            n_results: Some(n),
            where_metadata,
            where_document: None,
            include: Some(vec!["distances"]),
        };
        let r = timed(
            self.timeout(),
            "query",
            self.inner.index.query(options, None),
        )
        .await?;
        Ok(r.ids.into_iter().next().unwrap_or_default())
    }

    /// The records of `ids` that are items of `namespace` with a vector and pass `filter`,
    /// scored by exact cosine with `vector` (unordered).
    pub(crate) async fn scored(
        &self,
        namespace: &str,
        ids: &[String],
        vector: &[f32],
        filter: &Filter,
    ) -> Result<Vec<SearchHit>> {
        let now = filter.effective_now();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let rows = self.rows_by_id(&refs).await?;
        let mut hits = Vec::with_capacity(rows.len());
        for row in rows.values() {
            let item = row.item()?;
            if item.namespace != namespace || !filter.matches(&item, now) {
                continue;
            }
            let Some(e) = &item.embedding else { continue };
            let score = cosine(vector, &e.vector);
            hits.push(leg_hit(item, score, RankedBy::Vector));
        }
        Ok(hits)
    }

    /// Exact cosine over the given records, best first, ties by id.
    pub(crate) async fn exact_vector(
        &self,
        namespace: &str,
        ids: &[String],
        vector: &[f32],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<SearchHit>> {
        Ok(best(self.scored(namespace, ids, vector, filter).await?, k))
    }
}

/// The `k` best of `hits`, best first, ties by id.
pub(crate) fn best(mut hits: Vec<SearchHit>, k: usize) -> Vec<SearchHit> {
    sort_hits(&mut hits);
    hits.truncate(k);
    hits
}

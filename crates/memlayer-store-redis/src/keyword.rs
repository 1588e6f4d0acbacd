//! The keyword leg: memlayer's BM25 computed in Redis when the filter allows, else here.

use std::collections::{HashMap, HashSet};

use fred::interfaces::{ClientLike, FredResult};
use fred::types::Value;
use memlayer_store::backend::search::leg_hit;
use memlayer_store::ranking::{bm25, text};
use memlayer_store::types::MemoryItem;
use memlayer_store::{Filter, MetaCondition, RankedBy, Result, SearchHit};

use crate::client::RedisStore;
use crate::codec::{cmd, parse_search, string_of, token};
use crate::error::{corrupt, map_redis};

impl RedisStore {
    /// Keyword search ranked by memlayer's BM25 (k1 1.2, b by average length, Lucene IDF) over
    /// per-namespace statistics that include soft-deleted items, exactly as the memory backend
    /// ranks: the candidates are every item passing the filter that carries any query term.
    ///
    /// The statistics and every term's document frequency come back in one round trip. When
    /// RediSearch can express the whole filter, Redis scores the candidates itself
    /// ([`RedisStore::bm25_in_redis`]) and answers with the best `k`; otherwise the candidates
    /// are read whole and the filter's remainder checked here.
    pub(crate) async fn bm25_leg(
        &self,
        namespace: &str,
        terms: &[String],
        filter: &Filter,
        k: usize,
    ) -> Result<Vec<SearchHit>> {
        let t = self.translate(namespace, filter, filter.effective_now());
        if t.empty || terms.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        self.check_open()?;
        let ns = token(namespace);
        let mut commands: Vec<(&'static str, Vec<Value>)> = vec![
            ("HGET", vec![self.counts_key().into(), namespace.into()]),
            ("HGET", vec![self.lens_key().into(), namespace.into()]),
        ];
        for term in terms {
            let q = format!("@t_ns:{{{ns}}} @t_terms:{{{}}}", token(term));
            let count_only = vec!["LIMIT".into(), "0".into(), "0".into()];
            commands.push(("FT.SEARCH", self.search_args(&q, false, count_only)));
        }
        let pipe = self.pool.next().pipeline();
        for (name, args) in commands {
            let queued: FredResult<()> = pipe.custom(cmd(name), args).await;
            queued.map_err(map_redis)?;
        }
        let mut replies = pipe.try_all::<Value>().await.into_iter();
        let mut next = || -> Result<Value> {
            replies
                .next()
                .ok_or_else(|| corrupt("pipeline", "fewer replies than commands"))?
                .map_err(map_redis)
        };
        let stat = |v: Value| {
            string_of(&v)
                .and_then(|s| s.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let n = stat(next()?);
        let total_len = stat(next()?);
        let mut weighted: Vec<(&str, f32)> = Vec::new();
        let mut dfs: Vec<f32> = Vec::new();
        for term in terms {
            let (df, _) = parse_search(next()?, false)?;
            if df > 0 && n > 0.0 {
                weighted.push((term.as_str(), bm25::idf(n as f32, df as f32)));
                dfs.push(df as f32);
            }
        }
        if weighted.is_empty() {
            return Ok(Vec::new());
        }
        let avg_len = (total_len / n).max(1.0) as f32;
        // The rarest terms' candidates first; each round's best k are scored on every query
        // term, and a round is the last once no candidate holding only unread terms could
        // pass the k-th best score found (see `TermRounds`).
        let idfs: Vec<f32> = weighted.iter().map(|(_, idf)| *idf).collect();
        let mut rounds = bm25::TermRounds::new(bm25::Bm25Params::default(), &idfs, &dfs, n as f32);
        let mut read: HashSet<String> = HashSet::new();
        let mut top = memlayer_store::ranking::vector::TopK::new(k);
        while let Some(round) = rounds.next_terms(top.kth()) {
            let tags: Vec<String> = round
                .iter()
                .filter_map(|i| weighted.get(*i))
                .map(|(term, _)| token(term))
                .collect();
            let query = format!("{} @t_terms:{{{}}}", t.query, tags.join("|"));
            let best = if t.residual.is_empty() {
                self.bm25_in_redis(&query, &weighted, avg_len, k).await?
            } else {
                self.bm25_here(&query, &weighted, avg_len, &t.residual, k)
                    .await?
            };
            for (score, id) in best {
                if read.insert(id.clone()) {
                    top.offer(score, id);
                }
            }
        }
        let scored = top.into_sorted();
        if scored.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = scored.iter().map(|(_, id)| token(id)).collect();
        let winners = self
            .all_docs(&format!("@t_ns:{{{ns}}} @t_id:{{{}}}", ids.join("|")))
            .await?;
        let mut by_id: HashMap<String, MemoryItem> = HashMap::new();
        for d in &winners {
            let item = d.item()?;
            by_id.insert(item.id.clone(), item);
        }
        Ok(scored
            .into_iter()
            .filter_map(|(score, id)| Some(leg_hit(by_id.remove(&id)?, score, RankedBy::Keyword)))
            .collect())
    }

    /// The best `k` candidates of `query` by BM25, ranked by Redis: an `FT.AGGREGATE` counts
    /// each term in the candidates' stored terms (`contains`), sums the weighted term scores and
    /// keeps the best `k` (ties by id), so only those cross the network, never the candidates.
    /// Redis computes in doubles; the winners' scores are then computed again here, in the
    /// memory backend's arithmetic, from the terms that come back with them. (Two candidates
    /// whose scores differ only past single precision could swap places, as with Postgres'
    /// BM25 in SQL.)
    pub(crate) async fn bm25_in_redis(
        &self,
        query: &str,
        weighted: &[(&str, f32)],
        avg_len: f32,
        k: usize,
    ) -> Result<Vec<(f32, String)>> {
        let params = bm25::Bm25Params::default();
        let (k1, b) = (f64::from(params.k1), f64::from(params.b_at(avg_len)));
        let mut args: Vec<Value> = vec![self.index().into(), query.into()];
        args.extend(["LOAD", "3", "@id", "@terms", "@doc_len"].map(Value::from));
        let norm = format!(
            "{k1} * ({} + {b} * @doc_len / {})",
            1.0 - b,
            f64::from(avg_len)
        );
        args.extend(["APPLY".into(), norm.into(), "AS".into(), "bm25_norm".into()]);
        let mut sum = Vec::with_capacity(weighted.len());
        for (i, (term, idf)) in weighted.iter().enumerate() {
            // Terms are letters and digits (`text::terms`): nothing to escape in the literal.
            let tf = format!("contains(@terms, \" {term} \")");
            args.extend([
                "APPLY".into(),
                tf.into(),
                "AS".into(),
                format!("bm25_tf{i}").into(),
            ]);
            sum.push(format!(
                "{} * @bm25_tf{i} * {} / (@bm25_tf{i} + @bm25_norm)",
                f64::from(*idf),
                k1 + 1.0
            ));
        }
        args.extend([
            "APPLY".into(),
            sum.join(" + ").into(),
            "AS".into(),
            "bm25".into(),
        ]);
        args.extend(["SORTBY", "4", "@bm25", "DESC", "@id", "ASC", "MAX"].map(Value::from));
        args.push(k.to_string().into());
        args.extend(["LIMIT".into(), "0".into(), k.to_string().into()]);
        args.extend(self.query_tail());
        let reply = self.call("FT.AGGREGATE", args).await?.into_array();
        let wanted: Vec<&str> = weighted.iter().map(|(term, _)| *term).collect();
        let mut scored = Vec::with_capacity(k);
        for row in reply.into_iter().skip(1) {
            let mut fields: HashMap<String, String> = HashMap::new();
            for pair in row.into_array().chunks(2) {
                if let (Some(key), Some(value)) = (
                    pair.first().and_then(string_of),
                    pair.get(1).and_then(string_of),
                ) {
                    fields.insert(key, value);
                }
            }
            let id = fields
                .remove("id")
                .ok_or_else(|| corrupt("item", "a keyword candidate without its id"))?;
            let terms = fields
                .remove("terms")
                .ok_or_else(|| corrupt("item", format!("{id} has no analysed terms")))?;
            scored.push((Self::bm25_score(&terms, &wanted, weighted, avg_len), id));
        }
        scored.sort_by(memlayer_store::ranking::vector::best_first);
        Ok(scored)
    }

    /// The best `k` candidates of `query` by BM25, scored here: every candidate is read whole
    /// (the filter's `residual` needs its metadata) and checked.
    pub(crate) async fn bm25_here(
        &self,
        query: &str,
        weighted: &[(&str, f32)],
        avg_len: f32,
        residual: &[MetaCondition],
        k: usize,
    ) -> Result<Vec<(f32, String)>> {
        let docs = self.all_docs(query).await?;
        let wanted: Vec<&str> = weighted.iter().map(|(term, _)| *term).collect();
        let mut scored: Vec<(f32, String)> = Vec::with_capacity(docs.len());
        for d in &docs {
            if !Self::passes(&d.item()?, residual) {
                continue;
            }
            let Some(id) = d.text("id") else { continue };
            let terms = d
                .text("terms")
                .ok_or_else(|| corrupt("item", format!("{id} has no analysed terms")))?;
            scored.push((Self::bm25_score(&terms, &wanted, weighted, avg_len), id));
        }
        scored.sort_by(memlayer_store::ranking::vector::best_first);
        scored.truncate(k);
        Ok(scored)
    }

    /// BM25 of one stored terms document, in the memory backend's arithmetic.
    pub(crate) fn bm25_score(
        terms: &str,
        wanted: &[&str],
        weighted: &[(&str, f32)],
        avg_len: f32,
    ) -> f32 {
        let params = bm25::Bm25Params::default();
        let (tf, len) = text::term_counts(terms, wanted);
        tf.iter()
            .zip(weighted)
            .filter(|(f, _)| **f > 0.0)
            .map(|(f, (_, idf))| params.term_score(*idf, *f, len, avg_len))
            .sum()
    }
}

//! Every backend on the same data: ingest, get, the three search modes under both filters,
//! and recall against the exact answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use memlayer::{Filter, Kind, MemoryItem, SearchMode, SearchRequest, SearchResults};
use serde_json::{Value, json};

use super::data::Data;
use super::timing::{Timed, row, rss_bytes, timed, timed_row};
use crate::progress::Progress;

/// Whether `backend` searches `n` items approximately (its recall@10 is then measured):
/// Postgres, Redis and Chroma always (HNSW), memory and SQLite from the ANN threshold on.
pub(crate) fn approximate(backend: &str, n: usize) -> bool {
    !matches!(backend, "memory" | "sqlite") || n >= memlayer_ann::AnnConfig::default().threshold
}

/// The exact top-10 of `query` among `items` (optionally only those of `user`).
pub(crate) fn exact_top10(items: &[MemoryItem], query: &[f32], user: Option<&str>) -> Vec<String> {
    let mut top = memlayer::ranking::vector::TopK::new(10);
    for item in items {
        if user.is_some_and(|u| item.metadata.user_id.as_deref() != Some(u)) {
            continue;
        }
        if let Some(e) = &item.embedding {
            let score = memlayer::ranking::vector::dot(query, &e.vector);
            if top.admits(score) {
                top.offer(score, item.id.clone());
            }
        }
    }
    top.into_sorted().into_iter().map(|(_, id)| id).collect()
}

/// One timed vector search and one keyword search for `query`, each a one-shot row
/// (`{prefix}first_vector_search`, `{prefix}first_keyword_search`).
pub(crate) async fn first_searches(
    store: &memlayer::DynStore,
    backend: &str,
    n: usize,
    prefix: &str,
    (text, vector): &(String, Vec<f32>),
) -> Result<Vec<Value>> {
    let mut rows = Vec::new();
    for (op, q) in [
        (
            "first_vector_search",
            SearchRequest::vector(vector.clone()).with_limit(10),
        ),
        (
            "first_keyword_search",
            SearchRequest::keyword(text.clone()).with_limit(10),
        ),
    ] {
        let t = Instant::now();
        store.search("bench", &q).await?;
        let op = format!("{prefix}{op}");
        rows.push(row(backend, &op, n, 1, None, vec![t.elapsed()], 0.0, None));
    }
    Ok(rows)
}

/// The user of 1% of the bench's items.
pub(crate) const RARE_USER: &str = "rare";

/// The bench's filters: kind `fact`, which every item passes, or (`rare`) the 1% of items
/// of [`RARE_USER`].
pub(crate) fn bench_filter(rare: bool) -> Filter {
    if rare {
        Filter::new().user(RARE_USER)
    } else {
        Filter::new().kind(Kind::Fact)
    }
}

/// `calls` searches of `mode` by `clients` concurrent clients, under the all-pass filter or
/// (`rare`) the 1% one, cycling through `queries`.
pub(crate) async fn timed_search(
    store: &memlayer::DynStore,
    mode: SearchMode,
    rare: bool,
    queries: &Arc<Vec<(String, Vec<f32>)>>,
    clients: usize,
    calls: usize,
    warmup: usize,
) -> Result<Timed> {
    let (store, qs) = (store.clone(), queries.clone());
    timed(clients, calls, warmup, move |k| {
        let store = store.clone();
        let (text, v) = qs[k % qs.len()].clone();
        async move {
            store
                .search("bench", &bench_request(mode, rare, text, v))
                .await?;
            Ok(())
        }
    })
    .await
}

/// The bench's search request: top 10 in `mode` for a query's text and vector, under the
/// all-pass filter or (`rare`) the 1% one.
pub(crate) fn bench_request(
    mode: SearchMode,
    rare: bool,
    text: String,
    v: Vec<f32>,
) -> SearchRequest {
    let mut r = SearchRequest::new(mode)
        .with_filter(bench_filter(rare))
        .with_limit(10);
    if mode != SearchMode::Vector {
        r = r.with_query(text);
    }
    if mode != SearchMode::Keyword {
        r = r.with_vector(v);
    }
    r
}

/// Queries whose recall@10 is measured.
pub(crate) const RECALL_QUERIES: usize = 32;

/// The exact hybrid answers (top-10 ids) to the first [`RECALL_QUERIES`] queries, under the
/// all-pass filter and under the 1% one: hybrid search on a memory store of the same items that
/// scans its vectors exactly (the same BM25 and fusion as every backend), dropped afterwards.
pub(crate) async fn exact_hybrid_answers(
    items: &[MemoryItem],
    queries: &[(String, Vec<f32>)],
) -> Result<[Vec<Vec<String>>; 2]> {
    let exact = memlayer::memory::InMemoryStore::with_ann(memlayer_ann::AnnConfig::exact());
    for batch in items.chunks(1000) {
        memlayer::MemoryStore::upsert_many(&exact, batch.to_vec()).await?;
    }
    let mut answers = [Vec::new(), Vec::new()];
    for (rare, answers) in [false, true].into_iter().zip(answers.iter_mut()) {
        for (text, v) in queries.iter().take(RECALL_QUERIES) {
            let r = bench_request(SearchMode::Hybrid, rare, text.clone(), v.clone());
            let found = memlayer::MemoryStore::search(&exact, "bench", &r).await?;
            answers.push(found.hits.into_iter().map(|h| h.item.id).collect());
        }
    }
    Ok(answers)
}

/// Recall@10 of `store`'s hybrid search against [`exact_hybrid_answers`] (`want`, for the
/// filter `rare` says); a short answer is reported on stderr.
pub(crate) async fn hybrid_recall(
    store: &memlayer::DynStore,
    backend: &str,
    queries: &[(String, Vec<f32>)],
    want: &[Vec<String>],
    rare: bool,
) -> Result<f64> {
    let mut tally = Recall::default();
    for ((text, v), want) in queries.iter().zip(want) {
        let r = bench_request(SearchMode::Hybrid, rare, text.clone(), v.clone());
        let got = store.search("bench", &r).await?;
        tally.add(backend, "hybrid", &got, want);
    }
    Ok(tally.recall())
}

/// Hits found against hits wanted, over a run of queries.
#[derive(Default)]
pub(crate) struct Recall {
    pub(crate) hit: usize,
    pub(crate) total: usize,
}

impl Recall {
    /// Counts one answer against the exact one; a short answer is reported on stderr.
    pub(crate) fn add(&mut self, backend: &str, mode: &str, got: &SearchResults, want: &[String]) {
        let got: Vec<&str> = got.hits.iter().map(|h| h.item.id.as_str()).collect();
        if got.len() < want.len() {
            eprintln!(
                "{backend}: {mode} search returned {} of {} hits",
                got.len(),
                want.len()
            );
        }
        self.total += want.len();
        self.hit += want.iter().filter(|w| got.contains(&w.as_str())).count();
    }

    pub(crate) fn recall(&self) -> f64 {
        self.hit as f64 / self.total.max(1) as f64
    }
}

/// Recall@10 of vector search against the exact answer over the first 32 queries, under the
/// all-pass filter or (`rare`) the 1% one; a short answer is reported on stderr.
pub(crate) async fn vector_recall(
    store: &memlayer::DynStore,
    backend: &str,
    items: &[MemoryItem],
    queries: &[(String, Vec<f32>)],
    rare: bool,
) -> Result<f64> {
    let mut tally = Recall::default();
    for (_, v) in queries.iter().take(RECALL_QUERIES) {
        let want = exact_top10(items, v, rare.then_some(RARE_USER));
        let r = bench_request(SearchMode::Vector, rare, String::new(), v.clone());
        let got = store.search("bench", &r).await?;
        tally.add(backend, "vector", &got, &want);
    }
    Ok(tally.recall())
}

/// From this many items on, the bench fills a Postgres namespace by a bulk load.
pub(crate) const BULK_FROM: usize = 500_000;

/// `ef_construction` of the graph a bulk load builds: pgvector's default of 64 capped recall
/// at 1M whatever `ef_search` (ADR 0010); 128 is what memory and SQLite build their graphs with.
pub(crate) const BULK_EF_CONSTRUCTION: u32 = 128;

/// Builds a suspended Postgres vector index with [`BULK_EF_CONSTRUCTION`], showing the build's
/// progress; the row's time is the build's.
pub(crate) async fn build_vector_index(
    pg: &memlayer::postgres::PostgresStore,
    n: usize,
) -> Result<Value> {
    let config = pg.config().clone();
    let m = config.hnsw_m;
    let builder =
        memlayer::postgres::PostgresStore::connect_with(config.hnsw(m, BULK_EF_CONSTRUCTION))
            .await?;
    let started = Instant::now();
    let build = builder.build_vector_index();
    tokio::pin!(build);
    let mut p = Progress::new(&format!("postgres vector index over {n}"), n);
    let mut shown = 0usize;
    loop {
        tokio::select! {
            built = &mut build => {
                built?;
                break;
            }
            () = tokio::time::sleep(Duration::from_secs(5)) => {
                if let Some((done, _)) = pg.vector_index_build_progress().await? {
                    let done = usize::try_from(done).unwrap_or(0).min(n);
                    p.add(done.saturating_sub(shown));
                    shown = shown.max(done);
                }
            }
        }
    }
    p.finish();
    let took = started.elapsed();
    memlayer::MemoryStore::close(&builder).await?;
    let mut r = row(
        "postgres",
        "build_vector_index",
        n,
        1,
        None,
        vec![took],
        n as f64 / took.as_secs_f64(),
        None,
    );
    r["hnsw_m"] = json!(m);
    r["ef_construction"] = json!(BULK_EF_CONSTRUCTION);
    Ok(r)
}

/// Every store measurement of one backend at one size. `hybrid_answers` holds the exact
/// hybrid answers for this size once a backend needed them, for the next backend to reuse.
pub(crate) async fn store_rows(
    backend: &str,
    d: &Data,
    quick: bool,
    modes: &[String],
    filters: &[f64],
    hybrid_answers: &mut Option<[Vec<Vec<String>>; 2]>,
) -> Result<Vec<Value>> {
    let calls = if quick { 200 } else { 1000 };
    let warmup = if quick { 10 } else { 50 };
    let n = d.items.len();
    let rss_before = rss_bytes();
    let (store, guard) = crate::stores::open_fresh(backend).await?;
    let mut rows = Vec::new();

    // Ingest, batches of 1,000, no embedding: this fills the namespace searched below. From
    // `BULK_FROM` items on, Postgres loads in bulk: its HNSW index is suspended after the first
    // batch and built once over the loaded rows.
    let bulk = guard.postgres().filter(|_| n >= BULK_FROM);
    let mut lat = Vec::new();
    let started = Instant::now();
    let mut p = Progress::new(&format!("{backend} ingest {n}"), n);
    for (i, chunk) in d.items.chunks(1000).enumerate() {
        let t = Instant::now();
        store.upsert_many(chunk.to_vec()).await?;
        lat.push(t.elapsed());
        p.add(chunk.len());
        if i == 0
            && let Some(pg) = bulk
        {
            pg.suspend_vector_index().await?;
        }
    }
    p.finish();
    let per_s = n as f64 / started.elapsed().as_secs_f64();
    let op = if bulk.is_some() {
        "ingest_batch_1000_index_suspended"
    } else {
        "ingest_batch_1000"
    };
    rows.push(row(backend, op, n, 1, None, lat, per_s, None));
    if let Some(pg) = bulk {
        rows.push(build_vector_index(pg, n).await?);
    }
    // The first vector and keyword searches after ingest: for SQLite they load the
    // namespace's vectors and contents from the file and build the in-process indexes.
    rows.extend(first_searches(&store, backend, n, "", &d.queries[0]).await?);
    // Memory per item of the in-memory backend: this process's growth over the ingest and
    // the index, scaled to 1M items (the data set itself is held before and after). Only for
    // `memory`, the first backend of a run: after another backend, freed memory is reused.
    if backend == "memory"
        && let (Some(before), Some(after)) = (rss_before, rss_bytes())
    {
        let mut r = row(backend, "memory", n, 1, None, vec![], 0.0, None);
        let grown = after.saturating_sub(before);
        r["bytes"] = json!(grown);
        r["bytes_per_1m_items"] = json!((grown as f64 / n.max(1) as f64 * 1e6).round());
        rows.push(r);
    }

    // Smaller writes, in namespaces of their own, so the searched one stays as it is.
    let extra = d.write_items(quick);
    // The same items without their vectors: what the row costs apart from its vector.
    for (op, size, vectors) in [
        ("ingest_batch_100", 100usize, true),
        ("ingest_single", 1, true),
        ("ingest_batch_1000_no_vectors", 1000, false),
    ] {
        let take = if size == 1 {
            calls.min(extra.len())
        } else {
            extra.len()
        };
        let mut lat = Vec::new();
        let started = Instant::now();
        for chunk in extra[..take].chunks(size) {
            let items: Vec<MemoryItem> = chunk
                .iter()
                .cloned()
                .map(|mut i| {
                    i.namespace = format!("bench-{op}");
                    i.id = format!("{op}-{}", i.id);
                    if !vectors {
                        i.embedding = None;
                    }
                    i
                })
                .collect();
            let t = Instant::now();
            store.upsert_many(items).await?;
            lat.push(t.elapsed());
        }
        let per_s = take as f64 / started.elapsed().as_secs_f64();
        rows.push(row(backend, op, n, 1, None, lat, per_s, None));
    }
    // Batches of 100 embedded by the default hash embedder, into a store of their own pin.
    {
        let (raw, g2) = crate::stores::open_fresh(backend).await?;
        let embedded = memlayer::embed::EmbeddingStore::new(
            raw,
            Arc::new(memlayer::embed::HashEmbedder::new()),
        )
        .await?;
        let take = (if quick { 1000 } else { 5000 }).min(extra.len());
        let mut lat = Vec::new();
        let started = Instant::now();
        for chunk in extra[..take].chunks(100) {
            let items: Vec<MemoryItem> = chunk
                .iter()
                .cloned()
                .map(|mut i| {
                    i.embedding = None;
                    i
                })
                .collect();
            let t = Instant::now();
            memlayer::MemoryStore::upsert_many(&embedded, items).await?;
            lat.push(t.elapsed());
        }
        let per_s = take as f64 / started.elapsed().as_secs_f64();
        rows.push(row(
            backend,
            "ingest_batch_100_hash_embedder",
            n,
            1,
            None,
            lat,
            per_s,
            None,
        ));
        g2.release().await;
    }

    // Get by id.
    let ids: Arc<Vec<String>> = Arc::new(d.items.iter().map(|i| i.id.clone()).collect());
    {
        let store = store.clone();
        let ids = ids.clone();
        let t = timed(1, calls, warmup, move |k| {
            let store = store.clone();
            let id = ids[(k * 7919) % ids.len()].clone();
            async move {
                store.get("bench", &id).await?;
                Ok(())
            }
        })
        .await?;
        rows.push(timed_row(backend, "get", n, 1, None, t, None));
    }

    // Searches.
    let queries = Arc::new(d.queries.clone());
    if hybrid_answers.is_none() && modes.iter().any(|m| m == "hybrid") && approximate(backend, n) {
        *hybrid_answers = Some(exact_hybrid_answers(&d.items, &d.queries).await?);
    }
    for (mode, op) in [
        (SearchMode::Keyword, "keyword"),
        (SearchMode::Vector, "vector"),
        (SearchMode::Hybrid, "hybrid"),
    ] {
        if !modes.iter().any(|m| m == op) {
            continue;
        }
        for (selectivity, rare) in [(1.0, false), (0.01, true)] {
            if !filters.contains(&selectivity) {
                continue;
            }
            for clients in [1usize, 8, 64] {
                if quick && clients == 8 {
                    continue;
                }
                let t = timed_search(&store, mode, rare, &queries, clients, calls, warmup).await?;
                // Recall@10 of the vector leg against the exact answer (once per filter).
                let recall = if mode == SearchMode::Vector && clients == 1 {
                    let r = vector_recall(&store, backend, &d.items, &queries, rare).await?;
                    approximate(backend, n).then_some(r).or_else(|| {
                        if r < 0.9999 {
                            eprintln!("{backend}: an exact backend had recall {r}");
                        }
                        None
                    })
                } else if let (SearchMode::Hybrid, 1, true, Some(answers)) =
                    (mode, clients, approximate(backend, n), &*hybrid_answers)
                {
                    let want = &answers[usize::from(rare)];
                    Some(hybrid_recall(&store, backend, &queries, want, rare).await?)
                } else {
                    None
                };
                rows.push(timed_row(
                    backend,
                    op,
                    n,
                    clients,
                    Some(selectivity),
                    t,
                    recall,
                ));
                eprintln!("{backend} {op} n={n} clients={clients} filter={selectivity}: done");
            }
        }
    }

    // Postgres at every size: recall and latency of the graph alone (no exact ranking of
    // narrow filters) at `ef_search` 100, 200 and wider, on the same data and queries, one
    // client, side by side with the default's rows above.
    if let Some(pg) = guard.postgres()
        && modes.iter().any(|m| m == "vector")
    {
        for ef in [100u32, 200, 400, 800] {
            let config = pg.config().clone().ef_search(ef).exact_filter_rate(0.0);
            let wide: memlayer::DynStore =
                Arc::new(memlayer::postgres::PostgresStore::connect_with(config).await?);
            for (selectivity, rare) in [(1.0, false), (0.01, true)] {
                if !filters.contains(&selectivity) {
                    continue;
                }
                let mode = SearchMode::Vector;
                let t = timed_search(&wide, mode, rare, &queries, 1, calls, warmup).await?;
                let recall = vector_recall(&wide, backend, &d.items, &queries, rare).await?;
                let op = format!("vector_ef_search_{ef}");
                rows.push(timed_row(
                    backend,
                    &op,
                    n,
                    1,
                    Some(selectivity),
                    t,
                    Some(recall),
                ));
                eprintln!("{backend} {op} n={n} filter={selectivity}: done");
            }
            wide.close().await?;
        }
    }

    // Disk per item for SQLite: the file holds the searched namespace and the write
    // benchmarks' namespaces; its size over all those items, scaled to 1M items. Measured
    // after close, which folds the write-ahead log (up to 64 MB while writing) into the file.
    let mut stored = 0u64;
    if backend == "sqlite" {
        for ns in store.list_namespaces().await? {
            stored += store.count(&ns, memlayer::CountOptions::all()).await?;
        }
    }
    store.close().await?;
    if backend == "sqlite"
        && let Some(bytes) = guard.disk_bytes()
    {
        let mut r = row(backend, "disk", n, 1, None, vec![], 0.0, None);
        r["bytes"] = json!(bytes);
        r["graph_bytes"] = json!(guard.graph_bytes().unwrap_or(0));
        r["stored_items"] = json!(stored);
        r["bytes_per_1m_items"] = json!((bytes as f64 / stored.max(1) as f64 * 1e6).round());
        rows.push(r);
    }
    // A restart: the store opened again on its files, and its first searches (SQLite loads
    // the namespace's vectors and restores the graph it saved at close, and loads the
    // contents for the keyword index).
    if let Some(reopened) = guard.reopen().await? {
        rows.extend(first_searches(&reopened, backend, n, "restart_", &d.queries[1]).await?);
        reopened.close().await?;
    }
    guard.release().await;
    Ok(labelled(rows, d))
}

/// The rows of a run on `d`, each saying which data it measured.
pub(crate) fn labelled(mut rows: Vec<Value>, d: &Data) -> Vec<Value> {
    for r in &mut rows {
        r["data"] = json!(d.label);
    }
    rows
}

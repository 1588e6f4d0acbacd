//! How the graph's parameters were tuned for 1M vectors: one usearch graph of `N` clustered
//! synthetic vectors with degree `M` and the given element type, then, for each search
//! expansion, query p50/p95 and recall@10 against the exact answer, both as the graph ranks
//! (its stored elements) and re-ranked by the exact f32 dot product over the graph's best
//! `DEPTH` (default 40: how `VectorSet` answers; `0` re-ranks all `max(ef, 40)` the graph
//! returns). One thread searches; every core builds.
//!
//! ```text
//! cargo run --release -p memlayer-ann --example tune -- N M f32|f16|i8 EF[,EF...] [DEPTH[,DEPTH...]]
//! ```

mod common;

use std::time::Instant;

use memlayer_ann::synthetic::Clustered;
use memlayer_store::ranking::vector::{TopK, dot, exact_top_k};
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

const QUERIES: usize = 300;
const EF_ADD: usize = 128;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: &str| args.get(i).cloned().unwrap_or_else(|| default.into());
    let n: usize = arg(0, "100000").parse()?;
    let m: usize = arg(1, "16").parse()?;
    let (kind, quantization) = match arg(2, "f32").as_str() {
        "f16" => ("f16", ScalarKind::F16),
        "i8" => ("i8", ScalarKind::I8),
        _ => ("f32", ScalarKind::F32),
    };
    let efs: Vec<usize> = arg(3, "64,128,256")
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let depths: Vec<usize> = arg(4, "40")
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let dim = 384;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    let mut g = Clustered::new(dim, 1000, 1);
    let mut matrix = Vec::with_capacity(n * dim);
    for _ in 0..n {
        matrix.extend(g.next_vector());
    }
    let mut qg = g.reseeded(2);
    let queries: Vec<Vec<f32>> = (0..QUERIES).map(|_| qg.next_vector()).collect();
    let mut scratch = Vec::new();
    let truth: Vec<Vec<usize>> = queries
        .iter()
        .map(|q| {
            exact_top_k(q, &matrix, 10, &mut scratch)
                .into_iter()
                .map(|p| p.1)
                .collect()
        })
        .collect();

    let index = Index::new(&IndexOptions {
        dimensions: dim,
        metric: MetricKind::IP,
        quantization,
        connectivity: m,
        expansion_add: EF_ADD,
        expansion_search: 64,
        multi: false,
    })?;
    index.reserve_capacity_and_threads(n, threads)?;
    let t = Instant::now();
    std::thread::scope(|s| {
        for part in 0..threads {
            let (index, matrix) = (&index, &matrix);
            s.spawn(move || {
                for i in (part..n).step_by(threads) {
                    let _ = index.add(i as u64, &matrix[i * dim..(i + 1) * dim]);
                }
            });
        }
    });
    let build = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "{n} clustered vectors, M {m}, {kind}, SIMD {}, build {build:.0}/s on {threads} threads, \
         memory {:.0} MB",
        index.hardware_acceleration(),
        index.memory_usage() as f64 / 1e6
    );
    println!(
        "  ef  depth  graph_p50  graph_p95  graph_recall  rerank_p50  rerank_p95  rerank_recall"
    );
    for ef in efs {
        index.change_expansion_search(ef);
        // Two passes over every query, so neither finds the other's path in the cache: the
        // graph's own top 10 once per `ef`, then the re-rank at each depth.
        let (mut graph_lat, graph_r) =
            common::timed(&queries, &truth, |q| index.search(q, 10).map(|f| f.keys))?;
        let graph_p50 = common::pct(&mut graph_lat, 0.5);
        let graph_p95 = common::pct(&mut graph_lat, 0.95);
        for &depth in &depths {
            let depth = if depth == 0 { ef.max(40) } else { depth };
            let (mut rerank_lat, rerank_r) = common::timed(&queries, &truth, |q| {
                // The search explores at `max(ef, depth)` whatever it returns.
                index.search(q, depth).map(|found| {
                    let mut top = TopK::new(10);
                    for &key in &found.keys {
                        let i = key as usize;
                        top.offer(dot(q, &matrix[i * dim..(i + 1) * dim]), key);
                    }
                    top.into_sorted().into_iter().map(|p| p.1).collect()
                })
            })?;
            println!(
                "{ef:>4} {depth:>6} {graph_p50:>10.3} {graph_p95:>10.3} {graph_r:>13.3} {:>11.3} {:>11.3} {rerank_r:>14.3}",
                common::pct(&mut rerank_lat, 0.5),
                common::pct(&mut rerank_lat, 0.95),
            );
        }
    }
    Ok(())
}

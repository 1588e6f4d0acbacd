//! How the HNSW crate was picked: usearch and hnsw_rs side by side, on the same clustered
//! synthetic vectors, with the same graph parameters (M = 16, ef_construction = 128), both
//! building with every core: build rate, then query p50 and recall@10 against the exact
//! answer at several search expansions, one thread.
//!
//! ```text
//! cargo run --release -p memlayer-ann --example pick -- [N] [DIM]
//! ```

mod common;

use std::time::Instant;

use hnsw_rs::prelude::{DistDot, Hnsw};
use memlayer_ann::synthetic::Clustered;
use memlayer_store::ranking::vector::exact_top_k;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

const M: usize = 16;
const EF_ADD: usize = 128;
const QUERIES: usize = 200;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(100_000), |a| a.parse())?;
    let dim: usize = args.next().map_or(Ok(384), |a| a.parse())?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut g = Clustered::new(dim, 1000, 1);
    let vectors: Vec<Vec<f32>> = (0..n).map(|_| g.next_vector()).collect();
    let mut qg = g.reseeded(2);
    let queries: Vec<Vec<f32>> = (0..QUERIES).map(|_| qg.next_vector()).collect();
    let matrix: Vec<f32> = vectors.iter().flatten().copied().collect();
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
    println!(
        "{n} clustered unit vectors of {dim} dimensions, {threads} build threads, {QUERIES} queries"
    );
    println!("crate     build/s   ef   p50_ms  recall@10");

    // usearch
    let index = Index::new(&IndexOptions {
        dimensions: dim,
        metric: MetricKind::IP,
        quantization: ScalarKind::F32,
        connectivity: M,
        expansion_add: EF_ADD,
        expansion_search: 64,
        multi: false,
    })?;
    index.reserve_capacity_and_threads(n, threads)?;
    println!("usearch SIMD: {}", index.hardware_acceleration());
    let t = Instant::now();
    std::thread::scope(|s| {
        for part in 0..threads {
            let (index, vectors) = (&index, &vectors);
            s.spawn(move || {
                for (i, v) in vectors.iter().enumerate().skip(part).step_by(threads) {
                    let _ = index.add(i as u64, v);
                }
            });
        }
    });
    let build = n as f64 / t.elapsed().as_secs_f64();
    for ef in [32, 64, 128, 256] {
        index.change_expansion_search(ef);
        let (mut lat, r) =
            common::timed(&queries, &truth, |q| index.search(q, 10).map(|m| m.keys))?;
        println!(
            "usearch {build:>9.0} {ef:>4} {:>8.3} {r:>10.3}",
            common::pct(&mut lat, 0.5)
        );
    }

    // hnsw_rs
    let hnsw = Hnsw::<f32, DistDot>::new(M, n, 16, EF_ADD, DistDot {});
    let data: Vec<(&Vec<f32>, usize)> = vectors.iter().zip(0..).collect();
    let t = Instant::now();
    hnsw.parallel_insert(&data);
    let build = n as f64 / t.elapsed().as_secs_f64();
    for ef in [32, 64, 128, 256] {
        let (mut lat, r) = common::timed(&queries, &truth, |q| {
            let found = hnsw.search(q, 10, ef);
            Ok::<_, std::convert::Infallible>(found.iter().map(|nb| nb.d_id as u64).collect())
        })?;
        println!(
            "hnsw_rs {build:>9.0} {ef:>4} {:>8.3} {r:>10.3}",
            common::pct(&mut lat, 0.5)
        );
    }
    Ok(())
}

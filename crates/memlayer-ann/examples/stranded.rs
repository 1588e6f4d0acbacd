//! How many nodes usearch's concurrent insert strands, and what finding them costs: `N`
//! clustered 384-d vectors go into one usearch graph (i8, M 16, ef_construction 128, as
//! `VectorSet` builds it) from `THREADS` threads; then every node searches for itself at ef 16
//! (the check `VectorSet` runs after a parallel insert). The nodes it flags search for
//! themselves again at ef 32, 64 and 192, then at ef 1000: the ones still not found are the
//! stranded ones. All flagged nodes are then re-inserted by one thread and searched for again.
//!
//! ```text
//! cargo run --release -p memlayer-ann --example stranded -- [N] [THREADS]
//! ```

use std::time::Instant;

use memlayer_ann::synthetic::Clustered;
use usearch::{Index, IndexOptions, MetricKind, ScalarKind};

/// Whether `key`'s own vector finds it among its 10 nearest.
fn finds_itself(index: &Index, key: u64, v: &[f32]) -> Result<bool, Box<dyn std::error::Error>> {
    Ok(index.search(v, 10)?.keys.contains(&key))
}

/// How many of `keys` do not find themselves.
fn not_found(
    index: &Index,
    keys: &[usize],
    vectors: &[Vec<f32>],
) -> Result<usize, Box<dyn std::error::Error>> {
    let mut n = 0;
    for &i in keys {
        if !finds_itself(index, i as u64, &vectors[i])? {
            n += 1;
        }
    }
    Ok(n)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(20_000), |a| a.parse())?;
    let threads: usize = args.next().map_or(Ok(2), |a| a.parse())?;
    let dim = 384;
    let mut g = Clustered::new(dim, 1000, 1);
    let vectors: Vec<Vec<f32>> = (0..n).map(|_| g.next_vector()).collect();
    let index = Index::new(&IndexOptions {
        dimensions: dim,
        metric: MetricKind::IP,
        quantization: ScalarKind::I8,
        connectivity: 16,
        expansion_add: 128,
        expansion_search: 16,
        multi: false,
    })?;
    index.reserve_capacity_and_threads(n + 16, threads.max(2))?;

    let started = Instant::now();
    let per = n.div_ceil(threads.max(1));
    std::thread::scope(|s| {
        for (c, chunk) in vectors.chunks(per).enumerate() {
            let index = &index;
            s.spawn(move || {
                for (i, v) in chunk.iter().enumerate() {
                    if let Err(e) = index.add((c * per + i) as u64, v) {
                        eprintln!("insert failed: {e}");
                    }
                }
            });
        }
    });
    let build = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut flagged = Vec::new();
    for (i, v) in vectors.iter().enumerate() {
        if !finds_itself(&index, i as u64, v)? {
            flagged.push(i);
        }
    }
    let check = started.elapsed().as_secs_f64();

    // The flagged nodes searched for again at wider searches (`VectorSet` queries at 192).
    let mut rechecks = Vec::new();
    for ef in [32, 64, 192] {
        index.change_expansion_search(ef);
        let started = Instant::now();
        let missing = not_found(&index, &flagged, &vectors)?;
        rechecks.push(format!(
            "{missing} at ef {ef} ({:.2} s)",
            started.elapsed().as_secs_f64()
        ));
    }
    index.change_expansion_search(1000);
    let stranded = not_found(&index, &flagged, &vectors)?;

    let started = Instant::now();
    for &i in &flagged {
        index.remove(i as u64)?;
        index.add(i as u64, &vectors[i])?;
    }
    let reinsert = started.elapsed().as_secs_f64();
    index.change_expansion_search(192);
    let lost = not_found(&index, &flagged, &vectors)?;
    println!(
        "{n} vectors, {threads} threads: built in {build:.1} s; the ef-16 self-search check \
         (one thread) took {check:.1} s and flagged {} ({:.2}%); searched for again (one \
         thread), not found: {}, and {stranded} at ef 1000 (stranded); re-inserting the flagged took {reinsert:.2} s, \
         after which {lost} are not found at ef 192",
        flagged.len(),
        100.0 * flagged.len() as f64 / n as f64,
        rechecks.join(", ")
    );
    Ok(())
}

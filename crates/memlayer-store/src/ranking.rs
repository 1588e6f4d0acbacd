//! Ranking shared by backends without native ranking: text analysis, BM25, cosine, fusion.

pub mod bm25;
pub mod context;
pub mod fusion;
pub mod ints;
pub mod text;

/// Eight-bit sketches for exact scans (`memlayer-kernels`).
pub use memlayer_kernels::sketch;
/// Dot products, cosine and a bounded top-k (`memlayer-kernels`).
pub use memlayer_kernels::vector;

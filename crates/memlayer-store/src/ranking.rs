//! Ranking shared by backends without native ranking: text analysis, BM25, cosine, fusion.

pub mod bm25;
pub mod context;
pub mod fusion;
pub mod ints;
pub mod sketch;
pub mod text;
pub mod vector;

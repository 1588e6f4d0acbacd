#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod cache;
mod embedder;
mod hash;
mod layer;
#[cfg(feature = "local-minilm")]
mod minilm;
mod openai;
#[cfg(feature = "static")]
mod static_model;

pub use cache::{CachedEmbedder, cache_key};
pub use embedder::{DynEmbedder, Embedder, normalize};
pub use hash::HashEmbedder;
pub use layer::EmbeddingStore;
#[cfg(feature = "local-minilm")]
pub use minilm::{MINILM_MODEL_ID, MiniLmEmbedder};
pub use openai::{OpenAiConfig, OpenAiEmbedder};
#[cfg(feature = "static")]
pub use static_model::StaticEmbedder;

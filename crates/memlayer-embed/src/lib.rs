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

/// The default embedder of the server and the CLI: all-MiniLM-L6-v2 when
/// `MEMLAYER_MINILM_DIR` names its model directory (and the `local-minilm` feature is on),
/// else the zero-setup hash embedder. Returns it with a line saying which, for start-up logs.
///
/// # Errors
/// `ConfigInvalid` when `MEMLAYER_MINILM_DIR` is set but the model does not load there (a
/// configured model is never silently replaced by the hash embedder).
pub fn default_embedder() -> memlayer_store::Result<(DynEmbedder, String)> {
    #[cfg(feature = "local-minilm")]
    if std::env::var_os("MEMLAYER_MINILM_DIR").is_some() {
        let m = MiniLmEmbedder::from_env()?;
        let what = format!(
            "embedder: {} (384-d, from MEMLAYER_MINILM_DIR)",
            MINILM_MODEL_ID
        );
        return Ok((std::sync::Arc::new(m), what));
    }
    let h = HashEmbedder::new();
    let what = format!(
        "embedder: {} ({}-d hash embedder, lexical similarity; set MEMLAYER_MINILM_DIR for all-MiniLM-L6-v2)",
        h.model_id(),
        h.dimension()
    );
    Ok((std::sync::Arc::new(h), what))
}

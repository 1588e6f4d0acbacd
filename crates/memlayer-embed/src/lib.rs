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

/// The embedder for a store: the one its pin names (the hash embedder of the pinned
/// dimension, or all-MiniLM-L6-v2 from `MEMLAYER_MINILM_DIR`), or, for an unpinned store, the
/// default: all-MiniLM-L6-v2 when `MEMLAYER_MINILM_DIR` names its model directory (and the
/// `local-minilm` feature is on), else the zero-setup hash embedder. Returns it with a line
/// saying which, for start-up messages.
///
/// # Errors
/// `ConfigInvalid` when the pin names a model this build cannot load, or when
/// `MEMLAYER_MINILM_DIR` is set but the model does not load there (a configured model is never
/// silently replaced by the hash embedder).
pub fn embedder_for(
    pin: Option<&memlayer_store::EmbeddingPin>,
) -> memlayer_store::Result<(DynEmbedder, String)> {
    let hash = |dim: usize, why: &str| {
        let h = HashEmbedder::with_dimension(dim);
        let what = format!(
            "embedder: {} (hash embedder, lexical similarity; {why})",
            h.model_id()
        );
        (std::sync::Arc::new(h) as DynEmbedder, what)
    };
    match pin {
        Some(p) if p.model == HashEmbedder::with_dimension(p.dim).model_id() => {
            Ok(hash(p.dim, "the store's pinned model"))
        }
        #[cfg(feature = "local-minilm")]
        Some(p) if p.model == MINILM_MODEL_ID => Ok((
            std::sync::Arc::new(MiniLmEmbedder::from_env()?),
            format!("embedder: {MINILM_MODEL_ID} (the store's pinned model)"),
        )),
        Some(p) => Err(memlayer_store::Error::new(
            memlayer_store::ErrorKind::ConfigInvalid,
            format!(
                "the store is pinned to model {:?} ({} dimensions), which this program cannot load; use the program that wrote it, or re-embed the store",
                p.model, p.dim
            ),
        )),
        None => {
            #[cfg(feature = "local-minilm")]
            if std::env::var_os("MEMLAYER_MINILM_DIR").is_some() {
                return Ok((
                    std::sync::Arc::new(MiniLmEmbedder::from_env()?),
                    format!("embedder: {MINILM_MODEL_ID} (from MEMLAYER_MINILM_DIR)"),
                ));
            }
            Ok(hash(384, "set MEMLAYER_MINILM_DIR for all-MiniLM-L6-v2"))
        }
    }
}

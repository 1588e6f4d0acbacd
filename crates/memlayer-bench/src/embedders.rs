//! Opens an embedder by name for eval and bench, with a persistent cache so that reruns never
//! embed the same text twice.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use memlayer_embed::{CachedEmbedder, DynEmbedder, HashEmbedder};

/// A cached embedder shared by the tasks of one run.
pub type Shared = Arc<CachedEmbedder>;

fn cache_dir() -> PathBuf {
    crate::target_dir().join("embed-cache")
}

/// Opens `hash`, `minilm`, `static` or `openai`.
pub async fn open(name: &str) -> Result<Shared> {
    let inner: DynEmbedder = match name {
        "hash" => Arc::new(HashEmbedder::new()),
        "minilm" => {
            let dir = crate::services::model_dir("MEMLAYER_MINILM_DIR")?;
            Arc::new(memlayer_embed::MiniLmEmbedder::load(&dir).with_context(|| {
                format!(
                    "loading MiniLM from {} (run `cargo xtask services up models`)",
                    dir.display()
                )
            })?)
        }
        "static" => {
            let dir = crate::services::model_dir("MEMLAYER_STATIC_MODEL_DIR")?;
            Arc::new(memlayer_embed::StaticEmbedder::load(
                &dir,
                Some("static:tokenlearn-static-model"),
            )?)
        }
        "openai" => {
            let base = std::env::var("MEMLAYER_OPENAI_BASE_URL")
                .context("set MEMLAYER_OPENAI_BASE_URL (and MEMLAYER_OPENAI_MODEL, MEMLAYER_OPENAI_DIM, OPENAI_API_KEY)")?;
            let model = std::env::var("MEMLAYER_OPENAI_MODEL")
                .unwrap_or_else(|_| "text-embedding-3-small".into());
            let dim: usize = std::env::var("MEMLAYER_OPENAI_DIM")
                .unwrap_or_else(|_| "1536".into())
                .parse()?;
            let mut config = memlayer_embed::OpenAiConfig::new(base, model, dim);
            if let Ok(key) = std::env::var("OPENAI_API_KEY") {
                config = config.api_key(key);
            }
            Arc::new(memlayer_embed::OpenAiEmbedder::new(config)?)
        }
        other => bail!("unknown embedder {other:?}: hash, minilm, static or openai"),
    };
    let file = cache_dir().join(format!("{}.bin", inner.model_id().replace(['/', ':'], "_")));
    Ok(Arc::new(CachedEmbedder::with_file(inner, 1 << 20, file)?))
}

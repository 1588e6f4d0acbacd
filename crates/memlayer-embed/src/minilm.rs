use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_transformers::models::bert::BertModel;
use memlayer_store::{Error, ErrorKind, Result};
use tokenizers::{Tokenizer, TruncationStrategy};

use crate::Embedder;

/// The model id stored with MiniLM vectors.
pub const MINILM_MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// all-MiniLM-L6-v2 on the CPU through candle: 384 dimensions, mean pooling over the attention
/// mask, L2-normalised, inputs truncated at 256 tokens (the model's training length).
///
/// Loads `model.safetensors`, `tokenizer.json` and `config.json` from a directory, never from
/// a hub.
#[derive(Clone)]
pub struct MiniLmEmbedder {
    inner: Arc<Inner>,
}

struct Inner {
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    dir: PathBuf,
}

impl std::fmt::Debug for MiniLmEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLmEmbedder")
            .field("dir", &self.inner.dir)
            .finish()
    }
}

fn model_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Unexpected, format!("MiniLM {what}: {e}")).with_backend("minilm")
}

fn config_error(what: String) -> Error {
    Error::new(ErrorKind::ConfigInvalid, what).with_backend("minilm")
}

impl MiniLmEmbedder {
    /// Loads the model from `dir`.
    ///
    /// # Errors
    /// `ConfigInvalid` naming the missing or unreadable file.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let checkpoint = crate::bert::load(
            &dir,
            "minilm",
            "run `cargo xtask services up models` or point MEMLAYER_MINILM_DIR at an all-MiniLM-L6-v2 directory",
            |_| crate::bert::Truncation {
                max_length: 256,
                strategy: TruncationStrategy::LongestFirst,
            },
        )?;
        let device = Device::Cpu;
        let tokenizer = checkpoint.tokenizer;
        let model = BertModel::load(checkpoint.weights, &checkpoint.config)
            .map_err(|e| model_error("load", e))?;
        Ok(MiniLmEmbedder {
            inner: Arc::new(Inner {
                model,
                tokenizer,
                device,
                dir,
            }),
        })
    }

    /// Loads from `MEMLAYER_MINILM_DIR`.
    ///
    /// # Errors
    /// `ConfigInvalid` when the variable is unset or the directory is incomplete.
    pub fn from_env() -> Result<Self> {
        let dir = std::env::var("MEMLAYER_MINILM_DIR").map_err(|_| {
            config_error(
                "MEMLAYER_MINILM_DIR is not set; run `cargo xtask services up models` and export what it prints".into(),
            )
        })?;
        MiniLmEmbedder::load(dir)
    }

    /// Embeds a batch synchronously (CPU bound; call from a blocking context).
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let inner = &self.inner;
        // Embed in length-sorted sub-batches so that padding stays small.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(32) {
            let batch: Vec<String> = chunk.iter().map(|&i| texts[i].clone()).collect();
            let encodings = inner
                .tokenizer
                .encode_batch(batch, true)
                .map_err(|e| model_error("tokenize", e))?;
            let len = encodings.first().map_or(0, |e| e.get_ids().len());
            let ids: Vec<u32> = encodings
                .iter()
                .flat_map(|e| e.get_ids().to_vec())
                .collect();
            let mask: Vec<u32> = encodings
                .iter()
                .flat_map(|e| e.get_attention_mask().to_vec())
                .collect();
            let shape = (encodings.len(), len);
            let run = || -> candle_core::Result<Vec<Vec<f32>>> {
                let ids = Tensor::from_vec(ids, shape, &inner.device)?;
                let mask = Tensor::from_vec(mask, shape, &inner.device)?;
                let types = ids.zeros_like()?;
                let hidden = inner.model.forward(&ids, &types, Some(&mask))?;
                let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
                let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
                let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
                let mean = summed.broadcast_div(&counts)?;
                let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
                mean.broadcast_div(&norm)?.to_vec2::<f32>()
            };
            let vectors = run().map_err(|e| model_error("forward", e))?;
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Embedder for MiniLmEmbedder {
    fn model_id(&self) -> &str {
        MINILM_MODEL_ID
    }

    fn dimension(&self) -> usize {
        384
    }

    fn max_batch(&self) -> usize {
        256
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let this = self.clone();
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || this.embed_blocking(&texts))
            .await
            .map_err(|e| model_error("worker", e))?
    }
}

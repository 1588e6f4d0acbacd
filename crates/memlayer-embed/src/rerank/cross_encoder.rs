//! A BERT cross-encoder (e.g. `cross-encoder/ms-marco-MiniLM-L-6-v2`) on the CPU through
//! candle: query and memory are read as one pair, and the classifier's first logit is the
//! score. Loaded from a directory as MiniLM is (`config.json`, `tokenizer.json`,
//! `model.safetensors`), never from a hub.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder, linear};
use candle_transformers::models::bert::BertModel;
use memlayer_store::{Error, ErrorKind, Result};
use tokenizers::{Tokenizer, TruncationStrategy};

use super::Reranker;

/// A cross-encoder reranker.
#[derive(Clone)]
pub struct CrossEncoder {
    inner: Arc<Inner>,
}

struct Inner {
    model: BertModel,
    pooler: Linear,
    classifier: Linear,
    tokenizer: Tokenizer,
    device: Device,
    id: String,
    dir: PathBuf,
}

impl std::fmt::Debug for CrossEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrossEncoder")
            .field("id", &self.inner.id)
            .field("dir", &self.inner.dir)
            .finish()
    }
}

fn config_error(what: String) -> Error {
    Error::new(ErrorKind::ConfigInvalid, what).with_backend("cross-encoder")
}

fn model_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Unexpected, format!("cross-encoder {what}: {e}"))
        .with_backend("cross-encoder")
}

/// How many pairs one forward pass carries.
const BATCH: usize = 16;

impl CrossEncoder {
    /// Loads the model in `dir`, reported as `id` in reranked results.
    ///
    /// # Errors
    /// `ConfigInvalid` naming the missing or unreadable file or tensor.
    pub fn load(dir: impl AsRef<Path>, id: impl Into<String>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let crate::bert::Checkpoint {
            config,
            tokenizer,
            weights: vb,
        } = crate::bert::load(
            &dir,
            "cross-encoder",
            "a cross-encoder directory holds config.json, tokenizer.json and model.safetensors",
            |config| crate::bert::Truncation {
                max_length: config.max_position_embeddings.min(512),
                strategy: TruncationStrategy::OnlySecond,
            },
        )?;
        let device = Device::Cpu;
        let model = BertModel::load(vb.clone(), &config).map_err(|e| model_error("load", e))?;
        let hidden = config.hidden_size;
        let pooler = linear(hidden, hidden, vb.pp("bert.pooler.dense"))
            .map_err(|e| config_error(format!("bert.pooler.dense: {e}")))?;
        let labels = classifier_width(&vb, hidden)?;
        let classifier = linear(hidden, labels, vb.pp("classifier"))
            .map_err(|e| config_error(format!("classifier: {e}")))?;
        Ok(CrossEncoder {
            inner: Arc::new(Inner {
                model,
                pooler,
                classifier,
                tokenizer,
                device,
                id: id.into(),
                dir,
            }),
        })
    }

    /// Scores pairs synchronously (CPU bound; call from a blocking context).
    ///
    /// # Errors
    /// `Unexpected` for a tokenizer or model failure.
    pub fn score_blocking(&self, query: &str, documents: &[String]) -> Result<Vec<f32>> {
        let inner = &self.inner;
        let mut out = Vec::with_capacity(documents.len());
        for chunk in documents.chunks(BATCH) {
            let pairs: Vec<(String, String)> = chunk
                .iter()
                .map(|d| (query.to_owned(), d.clone()))
                .collect();
            let encodings = inner
                .tokenizer
                .encode_batch(pairs, true)
                .map_err(|e| model_error("tokenize", e))?;
            let len = encodings.first().map_or(0, |e| e.get_ids().len());
            let flat = |f: &dyn Fn(&tokenizers::Encoding) -> &[u32]| -> Vec<u32> {
                encodings.iter().flat_map(|e| f(e).to_vec()).collect()
            };
            let (ids, types, mask) = (
                flat(&|e| e.get_ids()),
                flat(&|e| e.get_type_ids()),
                flat(&|e| e.get_attention_mask()),
            );
            let shape = (encodings.len(), len);
            let run = || -> candle_core::Result<Vec<f32>> {
                let ids = Tensor::from_vec(ids, shape, &inner.device)?;
                let types = Tensor::from_vec(types, shape, &inner.device)?;
                let mask = Tensor::from_vec(mask, shape, &inner.device)?;
                let hidden = inner.model.forward(&ids, &types, Some(&mask))?;
                let cls = hidden.narrow(1, 0, 1)?.squeeze(1)?;
                let pooled = inner.pooler.forward(&cls)?.tanh()?;
                let logits = inner.classifier.forward(&pooled)?;
                logits.narrow(1, 0, 1)?.squeeze(1)?.to_vec1::<f32>()
            };
            out.extend(run().map_err(|e| model_error("forward", e))?);
        }
        Ok(out)
    }
}

/// The number of labels of the classifier head, read from its weight's shape.
fn classifier_width(vb: &VarBuilder<'_>, hidden: usize) -> Result<usize> {
    for labels in [1, 2, 3] {
        if vb.pp("classifier").contains_tensor("weight")
            && vb.pp("classifier").get((labels, hidden), "weight").is_ok()
        {
            return Ok(labels);
        }
    }
    Err(config_error(
        "no classifier head (classifier.weight of 1 to 3 labels); is this a cross-encoder?".into(),
    ))
}

#[async_trait]
impl Reranker for CrossEncoder {
    fn model_id(&self) -> &str {
        &self.inner.id
    }

    async fn score(&self, query: &str, documents: &[String]) -> Result<Vec<f32>> {
        let this = self.clone();
        let query = query.to_owned();
        let documents = documents.to_vec();
        tokio::task::spawn_blocking(move || this.score_blocking(&query, &documents))
            .await
            .map_err(|e| model_error("worker", e))?
    }
}

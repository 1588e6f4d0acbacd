//! Loading a BERT checkpoint directory (`config.json`, `tokenizer.json`, `model.safetensors`),
//! shared by the MiniLM embedder and the cross-encoder so both apply the same rules.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::Config;
use memlayer_store::{Error, ErrorKind, Result};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams, TruncationStrategy};

/// The files every checkpoint directory must hold.
const FILES: [&str; 3] = ["model.safetensors", "tokenizer.json", "config.json"];

/// A checkpoint read from disk, ready to build a model from.
pub(crate) struct Checkpoint {
    pub config: Config,
    pub tokenizer: Tokenizer,
    pub weights: VarBuilder<'static>,
}

/// How the tokenizer cuts long inputs.
pub(crate) struct Truncation {
    pub max_length: usize,
    pub strategy: TruncationStrategy,
}

/// Reads `dir`. `backend` names the model in errors; `hint` tells the reader how to get one.
///
/// # Errors
/// `ConfigInvalid` naming the missing or unreadable file.
pub(crate) fn load(
    dir: &Path,
    backend: &'static str,
    hint: &str,
    truncation: impl FnOnce(&Config) -> Truncation,
) -> Result<Checkpoint> {
    let config_error =
        |what: String| Error::new(ErrorKind::ConfigInvalid, what).with_backend(backend);
    for f in FILES {
        if !dir.join(f).is_file() {
            return Err(config_error(format!(
                "{} has no {f}; {hint}",
                dir.display()
            )));
        }
    }
    let config: Config = serde_json::from_str(
        &std::fs::read_to_string(dir.join("config.json"))
            .map_err(|e| config_error(format!("reading config.json: {e}")))?,
    )
    .map_err(|e| config_error(format!("config.json: {e}")))?;
    let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
        .map_err(|e| config_error(format!("tokenizer.json: {e}")))?;
    // Shipped tokenizers often pad every input to a fixed length; pad only to the longest
    // input of each batch, so short queries stay cheap and padding never enters a mean.
    tokenizer.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::BatchLongest,
        ..PaddingParams::default()
    }));
    let cut = truncation(&config);
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: cut.max_length,
            strategy: cut.strategy,
            ..TruncationParams::default()
        }))
        .map_err(|e| config_error(format!("tokenizer truncation: {e}")))?;
    let weights = load_weights(&dir.join("model.safetensors"), &Device::Cpu)
        .map_err(|e| config_error(format!("model.safetensors: {e}")))?;
    Ok(Checkpoint {
        config,
        tokenizer,
        weights,
    })
}

/// Reads the weights, storing every dense layer's matrix transposed.
///
/// candle's `Linear` multiplies by `weight.t()`. Stored as a transposed view of a contiguous
/// `[in, out]` matrix, that operand is contiguous, so the matrix kernel reads the weights in
/// place instead of repacking all of them on every call, which dominated a short query's cost
/// (ADR 0009, "Query latency").
fn load_weights(path: &Path, device: &Device) -> candle_core::Result<VarBuilder<'static>> {
    let tensors = candle_core::safetensors::load(path, device)?;
    let mut out = HashMap::with_capacity(tensors.len());
    for (name, tensor) in tensors {
        let dense = tensor.rank() == 2 && name.ends_with(".weight") && !name.contains("embeddings");
        let tensor = if dense {
            tensor.t()?.contiguous()?.t()?
        } else {
            tensor
        };
        out.insert(name, tensor);
    }
    Ok(VarBuilder::from_tensors(out, DType::F32, device))
}

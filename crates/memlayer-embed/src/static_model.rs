use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use memlayer_store::{Error, ErrorKind, Result};
use model2vec_rs::model::StaticModel;

use crate::Embedder;

/// A static (model2vec-format) embedding model from a local directory: a token embedding table
/// averaged per text. Very fast, weaker than a transformer.
#[derive(Clone)]
pub struct StaticEmbedder {
    model: Arc<StaticModel>,
    model_id: String,
    dim: usize,
    dir: PathBuf,
}

impl std::fmt::Debug for StaticEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticEmbedder")
            .field("model_id", &self.model_id)
            .field("dim", &self.dim)
            .field("dir", &self.dir)
            .finish()
    }
}

impl StaticEmbedder {
    /// Loads the model in `dir` (`model.safetensors`, `tokenizer.json`, `config.json`); the
    /// model id is `static:<directory name>` unless given.
    ///
    /// # Errors
    /// `ConfigInvalid` when the directory does not hold a loadable model.
    pub fn load(dir: impl AsRef<Path>, model_id: Option<&str>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let model = StaticModel::from_pretrained(&dir, None, Some(true), None).map_err(|e| {
            Error::new(
                ErrorKind::ConfigInvalid,
                format!("{} is not a loadable static model: {e}", dir.display()),
            )
        })?;
        let dim = model.encode_single("dimension probe").len();
        let model_id = model_id.map(str::to_owned).unwrap_or_else(|| {
            let name = dir
                .components()
                .rev()
                .find_map(|c| {
                    let s = c.as_os_str().to_string_lossy();
                    (s != "model").then(|| s.into_owned())
                })
                .unwrap_or_else(|| "model".into());
            format!("static:{name}")
        });
        Ok(StaticEmbedder {
            model: Arc::new(model),
            model_id,
            dim,
            dir,
        })
    }
}

#[async_trait]
impl Embedder for StaticEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn dimension(&self) -> usize {
        self.dim
    }

    fn max_batch(&self) -> usize {
        4096
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let model = self.model.clone();
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || model.encode(&texts))
            .await
            .map_err(|e| {
                Error::new(ErrorKind::Unexpected, "static model worker failed").with_source(e)
            })
    }
}

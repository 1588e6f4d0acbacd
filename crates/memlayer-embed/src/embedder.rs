use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use memlayer_store::Result;

/// Turns texts into vectors.
///
/// # Behavior
/// - `embed` returns one vector per input, in input order, each of length `dimension()`.
/// - The same text and model always give the same vector (up to floating-point noise for
///   neural models), so results may be cached by model id and content hash.
#[async_trait]
pub trait Embedder: Send + Sync + Debug + 'static {
    /// The model id stored with every vector and pinned by stores.
    fn model_id(&self) -> &str;

    /// The vector dimension.
    fn dimension(&self) -> usize;

    /// How many texts one call should carry at most; callers split larger inputs.
    fn max_batch(&self) -> usize {
        64
    }

    /// Embeds a batch of texts.
    ///
    /// # Errors
    /// `Unavailable`/`Timeout` for remote models that cannot be reached, `Unexpected` for a
    /// malformed answer or a model failure.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
}

/// A shared, type-erased embedder.
pub type DynEmbedder = Arc<dyn Embedder>;

const _: Option<&dyn Embedder> = None;

/// Scales `v` to unit length in place; a zero vector stays zero.
pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 && n.is_finite() {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

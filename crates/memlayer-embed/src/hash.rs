use async_trait::async_trait;
use memlayer_store::Result;
use memlayer_store::ranking::text;

use crate::{Embedder, normalize};

/// Inputs up to this many bytes in all are hashed on the calling task (a query, a message);
/// more go to the blocking pool.
const INLINE_BYTES: usize = 16 << 10;

/// A deterministic embedder that needs no model: signed feature hashing of BM25 terms and of
/// character trigrams, L2-normalised.
///
/// Its similarity is lexical (shared words and word pieces), not semantic: it makes vector and
/// hybrid search work out of the box and is the zero-setup default, but a real model
/// (`MiniLmEmbedder`, `OpenAiEmbedder`) is what gives recall by meaning.
#[derive(Debug, Clone)]
pub struct HashEmbedder {
    dim: usize,
    model: String,
}

impl HashEmbedder {
    /// The default: 384 dimensions.
    pub fn new() -> Self {
        HashEmbedder::with_dimension(384)
    }

    /// A hash embedder of `dim` dimensions (at least 1).
    pub fn with_dimension(dim: usize) -> Self {
        let dim = dim.max(1);
        HashEmbedder {
            dim,
            model: format!("memlayer/hash-v1-{dim}"),
        }
    }

    /// Embeds one text synchronously.
    pub fn embed_one(&self, input: &str) -> Vec<f32> {
        let mut v = vec![0.0f32; self.dim];
        let mut add = |feature: &str, weight: f32| {
            let h = fnv1a(feature.as_bytes());
            let idx = (h % self.dim as u64) as usize;
            let sign = if (h >> 63) == 0 { 1.0 } else { -1.0 };
            v[idx] += sign * weight;
        };
        for term in text::terms(input) {
            add(&term, 1.0);
            let chars: Vec<char> = format!("<{term}>").chars().collect();
            for w in chars.windows(3) {
                let gram: String = w.iter().collect();
                add(&format!("#{gram}"), 0.35);
            }
        }
        normalize(&mut v);
        v
    }
}

impl Default for HashEmbedder {
    fn default() -> Self {
        HashEmbedder::new()
    }
}

/// FNV-1a, 64 bit: stable across platforms and releases, unlike `std`'s hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[async_trait]
impl Embedder for HashEmbedder {
    fn model_id(&self) -> &str {
        &self.model
    }

    fn dimension(&self) -> usize {
        self.dim
    }

    fn max_batch(&self) -> usize {
        4096
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        // Large inputs are hashed on the blocking pool: on the async workers, a few of them at
        // once would stall every other request of a server (`/health` included).
        let bytes: usize = texts.iter().map(String::len).sum();
        if bytes < INLINE_BYTES {
            return Ok(texts.iter().map(|t| self.embed_one(t)).collect());
        }
        let this = self.clone();
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || texts.iter().map(|t| this.embed_one(t)).collect())
            .await
            .map_err(|e| {
                memlayer_store::Error::new(
                    memlayer_store::ErrorKind::Unexpected,
                    format!("the hash embedder's task failed: {e}"),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memlayer_store::ranking::vector::cosine;

    #[test]
    fn deterministic_normalised_and_lexical() {
        let e = HashEmbedder::new();
        let a = e.embed_one("The cats are sleeping on the sofa");
        assert_eq!(a, e.embed_one("The cats are sleeping on the sofa"));
        assert!((a.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
        let near = e.embed_one("a cat sleeps on a sofa");
        let far = e.embed_one("quarterly revenue grew in Europe");
        assert!(cosine(&a, &near) > 0.5, "{}", cosine(&a, &near));
        assert!(cosine(&a, &far) < 0.2, "{}", cosine(&a, &far));
        assert!(e.embed_one("").iter().all(|x| *x == 0.0));
    }
}

//! The bench's data: synthetic items from a fixed seed, or a BEIR dataset with MiniLM vectors.

use std::path::Path;

use anyhow::{Context, Result, bail};
use memlayer::{Kind, MemoryItem};
use memlayer_ann::synthetic::{Clustered, Rng};

use super::backends::RARE_USER;

pub const DIM: usize = 384;

pub(crate) const VOCABULARY: usize = 5000;

/// Topics of the clustered vectors, at every size.
pub(crate) const TOPICS: usize = 1000;

pub(crate) fn word(i: usize) -> String {
    // Pronounceable, distinct, and stable under stemming.
    const SYL: [&str; 20] = [
        "ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "vu", "ze", "ba", "do", "fi", "gu", "ho",
        "ja", "ke", "li", "mo", "ny",
    ];
    format!(
        "{}{}{}x",
        SYL[i % 20],
        SYL[(i / 20) % 20],
        SYL[(i / 400) % 20]
    )
}

/// The searched data: items with vectors, and queries.
#[derive(Clone)]
pub struct Data {
    pub items: Vec<MemoryItem>,
    pub queries: Vec<(String, Vec<f32>)>,
    /// The rows' `data`: `synthetic`, or a dataset's name and embedder (`scifact-minilm`).
    pub label: String,
}

/// The label of the synthetic sets' rows.
pub(crate) const SYNTHETIC: &str = "synthetic";

impl Data {
    /// The items the write rows upsert (into namespaces of their own): more of the synthetic
    /// set, or the dataset's own documents again.
    pub(crate) fn write_items(&self, quick: bool) -> Vec<MemoryItem> {
        let n = if quick { 2000 } else { 10_000 };
        if self.label == SYNTHETIC {
            data("bench-writes", n, 0).items
        } else {
            self.items.iter().take(n).cloned().collect()
        }
    }
}

pub fn data(ns: &str, n: usize, queries: usize) -> Data {
    let mut rng = Rng::new(0x5EED_0001);
    let mut vectors = Clustered::new(DIM, TOPICS, 0x5EED_0004);
    let mut query_vectors = vectors.reseeded(0x5EED_0005);
    let items = (0..n)
        .map(|i| {
            let text: Vec<String> = (0..8).map(|_| word(rng.zipf(VOCABULARY))).collect();
            let user = if i % 100 == 7 { RARE_USER } else { "common" };
            MemoryItem::new(ns, Kind::Fact, text.join(" "))
                .with_id(format!("i{i:07}"))
                .with_user(user)
                .with_embedding("bench/synthetic-384", vectors.next_vector())
        })
        .collect();
    let mut qrng = Rng::new(0x5EED_0002);
    let queries = (0..queries)
        .map(|_| {
            // Mid-frequency words, so keyword queries match a real but small share.
            let text = format!(
                "{} {}",
                word(20 + qrng.zipf(400)),
                word(20 + qrng.zipf(400))
            );
            (text, query_vectors.next_vector())
        })
        .collect();
    Data {
        items,
        queries,
        label: SYNTHETIC.to_owned(),
    }
}

/// A BEIR dataset's corpus as the searched namespace: each document (title and text) with its
/// all-MiniLM-L6-v2 vector, embedded through the persistent cache (so only a machine's first
/// run pays: 14-20 minutes for SciFact's 5,183 abstracts on two cores), every hundredth
/// document from the eighth owned by the rare user as in the synthetic sets, and as queries
/// the ones with relevance judgements, embedded the same way.
pub async fn dataset(dir: &Path) -> Result<Data> {
    use memlayer_embed::Embedder;
    let set = crate::eval::load(dir)?;
    let embedder = crate::embedders::open("minilm").await?;
    if embedder.dimension() != DIM {
        bail!(
            "--data: the bench's rows are {DIM}-d, but {} gives {} dimensions",
            embedder.model_id(),
            embedder.dimension()
        );
    }
    let (vectors, _) = crate::eval::embed_corpus(&set, &embedder).await?;
    let model = embedder.model_id().to_owned();
    let items = set
        .corpus
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let v = vectors
                .get(&r.id)
                .with_context(|| format!("document {} was not embedded", r.id))?;
            let user = if i % 100 == 7 { RARE_USER } else { "common" };
            Ok(MemoryItem::new("bench", Kind::Fact, r.text.clone())
                .with_id(r.id.clone())
                .with_user(user)
                .with_embedding(model.clone(), v.clone()))
        })
        .collect::<Result<Vec<_>>>()?;
    let texts: Vec<String> = set
        .queries
        .iter()
        .filter(|q| set.qrels.contains_key(&q.id))
        .map(|q| q.text.clone())
        .collect();
    if texts.len() < 2 {
        bail!(
            "--data {}: {} judged queries; the bench needs at least 2",
            dir.display(),
            texts.len()
        );
    }
    let vectors = embedder.embed(&texts).await?;
    Ok(Data {
        items,
        queries: texts.into_iter().zip(vectors).collect(),
        label: format!("{}-minilm", set.name),
    })
}

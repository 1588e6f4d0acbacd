//! An incrementally maintained BM25 index: documents are added and removed one at a time and a
//! query never rebuilds anything.

use std::collections::HashMap;
use std::hash::Hash;

use super::text;

/// BM25 parameters.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Bm25Params {
    /// Term-frequency saturation.
    pub k1: f32,
    /// Length normalisation, 0..=1.
    pub b: f32,
}

impl Default for Bm25Params {
    /// k1 = 1.2 and b = 0.75, the Lucene defaults.
    fn default() -> Self {
        Bm25Params { k1: 1.2, b: 0.75 }
    }
}

impl Bm25Params {
    /// One term's contribution: `idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))`.
    ///
    /// Backends that keep their own postings (Redis, Chroma) score with this, so their ranking
    /// is the memory backend's exactly.
    pub fn term_score(&self, idf: f32, tf: f32, len: f32, avg_len: f32) -> f32 {
        let Bm25Params { k1, b } = *self;
        idf * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * len / avg_len))
    }
}

/// Lucene's always-positive IDF of a term found in `df` of `n` documents.
pub fn idf(n: f32, df: f32) -> f32 {
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

#[derive(Debug, Clone)]
struct Doc {
    len: u32,
    /// Its distinct terms, to find its postings on removal.
    terms: Box<[String]>,
}

/// A BM25 index over documents keyed by `K`.
///
/// IDF is Lucene's `ln(1 + (N - df + 0.5) / (df + 0.5))`, always positive; each term scores
/// `idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))`.
#[derive(Debug, Clone)]
pub struct Bm25Index<K: Eq + Hash + Clone> {
    params: Bm25Params,
    docs: HashMap<K, Doc>,
    /// Per term: each document's (term frequency, length), so scoring needs no other lookup.
    postings: HashMap<String, HashMap<K, (u32, u32)>>,
    total_len: u64,
}

impl<K: Eq + Hash + Clone> Default for Bm25Index<K> {
    fn default() -> Self {
        Bm25Index::new(Bm25Params::default())
    }
}

impl<K: Eq + Hash + Clone> Bm25Index<K> {
    /// An empty index.
    pub fn new(params: Bm25Params) -> Self {
        Bm25Index {
            params,
            docs: HashMap::new(),
            postings: HashMap::new(),
            total_len: 0,
        }
    }

    /// The number of indexed documents.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// Indexes `text` under `key`, replacing what the key held.
    pub fn insert(&mut self, key: K, text: &str) {
        self.remove(&key);
        let mut tf: HashMap<String, u32> = HashMap::new();
        let mut len = 0u32;
        for term in text::terms(text) {
            *tf.entry(term).or_default() += 1;
            len = len.saturating_add(1);
        }
        for (term, n) in &tf {
            self.postings
                .entry(term.clone())
                .or_default()
                .insert(key.clone(), (*n, len));
        }
        self.total_len += u64::from(len);
        self.docs.insert(
            key,
            Doc {
                len,
                terms: tf.into_keys().collect(),
            },
        );
    }

    /// Removes `key`; a missing key is ignored.
    pub fn remove(&mut self, key: &K) {
        let Some(doc) = self.docs.remove(key) else {
            return;
        };
        self.total_len -= u64::from(doc.len);
        for term in doc.terms {
            if let Some(posting) = self.postings.get_mut(&term) {
                posting.remove(key);
                if posting.is_empty() {
                    self.postings.remove(&term);
                }
            }
        }
    }

    /// Scores every document containing at least one of the (already analysed) query terms.
    ///
    /// The result is unordered; callers filter it and take the top hits.
    pub fn score(&self, query_terms: &[String]) -> HashMap<K, f32> {
        self.score_refs(query_terms)
            .into_iter()
            .map(|(key, score)| (key.clone(), score))
            .collect()
    }

    /// As [`Bm25Index::score`], borrowing the keys.
    pub fn score_refs(&self, query_terms: &[String]) -> HashMap<&K, f32> {
        let mut scores: HashMap<&K, f32> = HashMap::new();
        if self.docs.is_empty() {
            return scores;
        }
        let n = self.docs.len() as f32;
        let avg_len = (self.total_len as f32 / n).max(1.0);
        for term in query_terms {
            let Some(posting) = self.postings.get(term) else {
                continue;
            };
            let idf = idf(n, posting.len() as f32);
            for (key, &(tf, len)) in posting {
                let s = self.params.term_score(idf, tf as f32, len as f32, avg_len);
                *scores.entry(key).or_default() += s;
            }
        }
        scores
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_rarer_and_denser_matches_higher() {
        let mut idx = Bm25Index::default();
        idx.insert("a", "the cat sat on the mat");
        idx.insert("b", "cats and dogs and cats");
        idx.insert("c", "a dog barked");
        let s = idx.score(&text::query_terms("cat"));
        assert_eq!(s.len(), 2);
        assert!(s["b"] > s["a"]);
        assert!(!s.contains_key("c"));
    }

    #[test]
    fn remove_and_reinsert_keep_statistics_exact() {
        let mut idx = Bm25Index::default();
        idx.insert(1, "alpha beta");
        idx.insert(2, "beta gamma");
        let before = idx.score(&text::query_terms("beta"));
        idx.insert(3, "delta");
        idx.remove(&3);
        idx.insert(2, "beta gamma");
        assert_eq!(idx.score(&text::query_terms("beta")), before);
        idx.remove(&1);
        idx.remove(&2);
        assert!(idx.is_empty());
        assert!(idx.postings.is_empty());
        assert_eq!(idx.total_len, 0);
    }
}

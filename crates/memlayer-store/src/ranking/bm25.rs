//! An incrementally maintained BM25 index: documents are added and removed one at a time and a
//! query never rebuilds anything.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash};

use super::ints::IntMap;
use super::text;

/// BM25 parameters.
#[derive(Clone, Copy, PartialEq, Debug)]
pub struct Bm25Params {
    /// Term-frequency saturation.
    pub k1: f32,
    /// Length normalisation, 0..=1; `None` chooses it by the namespace's average document
    /// length ([`length_normalisation`]).
    pub b: Option<f32>,
}

impl Default for Bm25Params {
    /// k1 = 1.2 (Lucene's), and b by the namespace's average document length.
    fn default() -> Self {
        Bm25Params { k1: 1.2, b: None }
    }
}

/// b for namespaces of short texts (chat messages, notes), at or below [`SHORT_LEN`] terms on
/// average.
pub const B_SHORT: f32 = 0.3;
/// b for namespaces of documents, at or above [`LONG_LEN`] terms on average: Lucene's 0.75.
pub const B_LONG: f32 = 0.75;
/// The average length (in index terms) at or below which a namespace counts as short texts.
pub const SHORT_LEN: f32 = 16.0;
/// The average length at or above which a namespace counts as documents.
pub const LONG_LEN: f32 = 64.0;

/// BM25's b for a namespace whose documents average `avg_len` index terms: [`B_SHORT`] up to
/// [`SHORT_LEN`], [`B_LONG`] from [`LONG_LEN`], linear between.
///
/// Length normalisation corrects for verbose documents; among short messages a length is
/// mostly noise, and full normalisation sinks a message that says more than the question
/// (`docs/decisions/0011-short-text-length-normalisation.md`).
pub fn length_normalisation(avg_len: f32) -> f32 {
    let t = ((avg_len - SHORT_LEN) / (LONG_LEN - SHORT_LEN)).clamp(0.0, 1.0);
    if t.is_nan() {
        return B_LONG;
    }
    B_SHORT + (B_LONG - B_SHORT) * t
}

impl Bm25Params {
    /// The b in force in a namespace whose documents average `avg_len` terms.
    pub fn b_at(&self, avg_len: f32) -> f32 {
        self.b.unwrap_or_else(|| length_normalisation(avg_len))
    }

    /// One term's contribution: `idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))`.
    ///
    /// Backends that keep their own postings (Redis, Chroma) score with this, so their ranking
    /// is the memory backend's exactly.
    pub fn term_score(&self, idf: f32, tf: f32, len: f32, avg_len: f32) -> f32 {
        let (k1, b) = (self.k1, self.b_at(avg_len));
        idf * tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * len / avg_len))
    }
}

/// Lucene's always-positive IDF of a term found in `df` of `n` documents.
pub fn idf(n: f32, df: f32) -> f32 {
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

/// Reads a top-k keyword query's documents in rounds, rarest terms first, and says when no
/// document left unread could still enter the top k (the MaxScore idea).
///
/// For backends that can only ask their engine for "the documents holding any of these
/// terms" and score those outside its own ranking (Chroma, Redis): a query's common terms
/// hold most of the namespace, yet can add at most `idf * (k1 + 1)` each to a document's
/// score. So the first round reads the documents of the rare terms only (and scores each
/// fully, from its own term counts). A document not read yet holds none of the terms read so
/// far, so it scores at most the sum of the unread terms' bounds; once that is below the k-th
/// best score found, the answer is final, exactly the one a read of every document gives.
/// Otherwise the next round reads the fewest further terms that bring the bound below it (all
/// of them while fewer than k documents are known).
#[derive(Debug, Clone)]
pub struct TermRounds {
    /// Term indexes, rarest (highest idf) first.
    order: Vec<usize>,
    /// `rest[i]`: the bound of every term from `order[i]` on; `rest[len] = 0`.
    rest: Vec<f32>,
    /// How many of `order` have been handed out.
    next: usize,
    /// How many of `order` the first round takes: the rare terms, at least one.
    first: usize,
}

/// How much larger than the k-th best score a bound must stay below, so that float rounding
/// in summing a document's terms can never let a document at the bound tie or pass it.
const BOUND_SLACK: f32 = 1.0e-3;

/// The first round takes the terms found in at most this share of the documents (and always
/// the rarest term).
const RARE_SHARE: f32 = 0.05;

impl TermRounds {
    /// Rounds over terms with these idfs and document frequencies, in a namespace of `n`
    /// documents.
    pub fn new(params: Bm25Params, idf: &[f32], df: &[f32], n: f32) -> Self {
        let mut order: Vec<usize> = (0..idf.len()).collect();
        order.sort_by(|a, b| idf[*b].total_cmp(&idf[*a]).then(a.cmp(b)));
        let mut rest = vec![0.0f32; order.len() + 1];
        for i in (0..order.len()).rev() {
            rest[i] = rest[i + 1] + idf[order[i]] * (params.k1 + 1.0);
        }
        let rare = order
            .iter()
            .take_while(|i| df.get(**i).is_some_and(|d| *d <= n * RARE_SHARE));
        let first = rare.count().max(1);
        TermRounds {
            order,
            rest,
            next: 0,
            first,
        }
    }

    /// The terms (indexes into the slices given to [`TermRounds::new`]) whose documents to
    /// read next, given the k-th best score among the documents read so far (`None` while
    /// fewer than k are known); `None` when the answer is final.
    pub fn next_terms(&mut self, kth_best: Option<f32>) -> Option<Vec<usize>> {
        let len = self.order.len();
        if self.next >= len {
            return None;
        }
        let safe = |bound: f32, kth: f32| bound * (1.0 + BOUND_SLACK) < kth;
        let end = if self.next == 0 {
            self.first
        } else {
            match kth_best {
                Some(kth) if safe(self.rest[self.next], kth) => return None,
                Some(kth) => (self.next + 1..=len)
                    .find(|end| safe(self.rest[*end], kth))
                    .unwrap_or(len),
                None => len,
            }
        };
        let terms = self.order[self.next..end].to_vec();
        self.next = end;
        Some(terms)
    }
}

/// The index's own `u32` slots, hashed by one multiplication.
type SlotMap<V> = IntMap<u32, V>;

#[derive(Debug, Clone)]
struct Doc<K> {
    key: K,
    len: u32,
    /// Its distinct terms, to find its postings on removal.
    terms: Box<[u32]>,
}

#[derive(Debug, Clone)]
struct Posting {
    term: String,
    /// Per document slot: (term frequency, document length), so scoring needs no other lookup.
    docs: SlotMap<(u32, u32)>,
}

/// A BM25 index over documents keyed by `K`.
///
/// IDF is Lucene's `ln(1 + (N - df + 0.5) / (df + 0.5))`, always positive; each term scores
/// `idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))`.
///
/// Documents and terms are numbered inside the index (freed numbers are reused), so postings
/// and a query's score table hold small integers, not keys and strings.
#[derive(Debug, Clone)]
pub struct Bm25Index<K: Eq + Hash + Clone> {
    params: Bm25Params,
    slots: HashMap<K, u32>,
    docs: Vec<Option<Doc<K>>>,
    free_docs: Vec<u32>,
    term_ids: HashMap<String, u32>,
    postings: Vec<Posting>,
    free_terms: Vec<u32>,
    total_len: u64,
}

impl<K: Eq + Hash + Clone> Default for Bm25Index<K> {
    fn default() -> Self {
        Bm25Index::new(Bm25Params::default())
    }
}

/// Takes a free number, or the next one.
fn allocate(free: &mut Vec<u32>, next: usize) -> u32 {
    free.pop()
        .unwrap_or_else(|| u32::try_from(next).unwrap_or(u32::MAX))
}

impl<K: Eq + Hash + Clone> Bm25Index<K> {
    /// An empty index.
    pub fn new(params: Bm25Params) -> Self {
        Bm25Index {
            params,
            slots: HashMap::new(),
            docs: Vec::new(),
            free_docs: Vec::new(),
            term_ids: HashMap::new(),
            postings: Vec::new(),
            free_terms: Vec::new(),
            total_len: 0,
        }
    }

    /// The number of indexed documents.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The number of a term, numbering it if it is new.
    fn term_id(&mut self, term: String) -> u32 {
        if let Some(id) = self.term_ids.get(&term) {
            return *id;
        }
        let id = allocate(&mut self.free_terms, self.postings.len());
        let posting = Posting {
            term: term.clone(),
            docs: SlotMap::default(),
        };
        match self.postings.get_mut(id as usize) {
            Some(slot) => *slot = posting,
            None => self.postings.push(posting),
        }
        self.term_ids.insert(term, id);
        id
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
        let slot = allocate(&mut self.free_docs, self.docs.len());
        let mut terms = Vec::with_capacity(tf.len());
        for (term, n) in tf {
            let id = self.term_id(term);
            if let Some(posting) = self.postings.get_mut(id as usize) {
                posting.docs.insert(slot, (n, len));
            }
            terms.push(id);
        }
        self.total_len += u64::from(len);
        let doc = Doc {
            key: key.clone(),
            len,
            terms: terms.into_boxed_slice(),
        };
        match self.docs.get_mut(slot as usize) {
            Some(d) => *d = Some(doc),
            None => self.docs.push(Some(doc)),
        }
        self.slots.insert(key, slot);
    }

    /// Removes `key`; a missing key is ignored.
    pub fn remove(&mut self, key: &K) {
        let Some(slot) = self.slots.remove(key) else {
            return;
        };
        let Some(doc) = self.docs.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        self.free_docs.push(slot);
        self.total_len -= u64::from(doc.len);
        for id in doc.terms {
            if let Some(posting) = self.postings.get_mut(id as usize) {
                posting.docs.remove(&slot);
                if posting.docs.is_empty() {
                    self.term_ids.remove(&posting.term);
                    posting.term = String::new();
                    posting.docs = SlotMap::default();
                    self.free_terms.push(id);
                }
            }
        }
    }

    /// Scores every document containing at least one of the (already analysed, distinct)
    /// query terms.
    ///
    /// The result is unordered; callers filter it and take the top hits.
    pub fn score(&self, query_terms: &[String]) -> HashMap<K, f32> {
        self.score_refs(query_terms)
            .into_iter()
            .map(|(key, score)| (key.clone(), score))
            .collect()
    }

    /// As [`Bm25Index::score`], borrowing the keys, in no particular order.
    pub fn score_refs(&self, query_terms: &[String]) -> Vec<(&K, f32)> {
        if self.slots.is_empty() {
            return Vec::new();
        }
        let n = self.slots.len() as f32;
        let avg_len = (self.total_len as f32 / n).max(1.0);
        let postings: Vec<&Posting> = query_terms
            .iter()
            .filter_map(|t| self.term_ids.get(t))
            .filter_map(|id| self.postings.get(*id as usize))
            .collect();
        let bound: usize = postings.iter().map(|p| p.docs.len()).sum();
        let mut scores: SlotMap<f32> =
            SlotMap::with_capacity_and_hasher(bound, BuildHasherDefault::default());
        for posting in postings {
            let idf = idf(n, posting.docs.len() as f32);
            for (slot, &(tf, len)) in &posting.docs {
                let s = self.params.term_score(idf, tf as f32, len as f32, avg_len);
                *scores.entry(*slot).or_default() += s;
            }
        }
        scores
            .into_iter()
            .filter_map(|(slot, score)| {
                let doc = self.docs.get(slot as usize)?.as_ref()?;
                Some((&doc.key, score))
            })
            .collect()
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

    /// Reads `docs` (each a list of (term index, tf) and a length) in rounds and returns the
    /// top k, and how many rounds it took.
    fn top_k_in_rounds(
        docs: &[(Vec<(usize, f32)>, f32)],
        terms: usize,
        k: usize,
    ) -> (Vec<(f32, usize)>, usize) {
        let params = Bm25Params::default();
        let n = docs.len() as f32;
        let avg = docs.iter().map(|d| d.1).sum::<f32>() / n;
        let df: Vec<f32> = (0..terms)
            .map(|t| {
                docs.iter()
                    .filter(|d| d.0.iter().any(|(i, _)| *i == t))
                    .count() as f32
            })
            .collect();
        let idf: Vec<f32> = df.iter().map(|d| idf(n, *d)).collect();
        let score = |d: &(Vec<(usize, f32)>, f32)| -> f32 {
            d.0.iter()
                .map(|(t, tf)| params.term_score(idf[*t], *tf, d.1, avg))
                .sum()
        };
        let mut rounds = TermRounds::new(params, &idf, &df, n);
        let mut seen: HashMap<usize, f32> = HashMap::new();
        let mut kth = None;
        let mut count = 0;
        while let Some(read) = rounds.next_terms(kth) {
            count += 1;
            for (i, d) in docs.iter().enumerate() {
                if d.0.iter().any(|(t, _)| read.contains(t)) {
                    seen.insert(i, score(d));
                }
            }
            let mut best: Vec<f32> = seen.values().copied().collect();
            best.sort_by(|a, b| b.total_cmp(a));
            kth = best.get(k - 1).copied();
        }
        let mut top: Vec<(f32, usize)> = seen.into_iter().map(|(i, s)| (s, i)).collect();
        top.sort_by(crate::ranking::vector::best_first);
        top.truncate(k);
        let mut all: Vec<(f32, usize)> = docs
            .iter()
            .enumerate()
            .filter(|(_, d)| !d.0.is_empty())
            .map(|(i, d)| (score(d), i))
            .collect();
        all.sort_by(crate::ranking::vector::best_first);
        all.truncate(k);
        assert_eq!(top, all, "rounds must give the full read's top {k}");
        (top, count)
    }

    #[test]
    fn rounds_give_the_full_answer_and_skip_common_terms() {
        // 200 documents: term 0 common (every document), term 1 in 40, term 2 in 5, term 3
        // in 3, with term frequencies and lengths that vary.
        let docs: Vec<(Vec<(usize, f32)>, f32)> = (0..200usize)
            .map(|i| {
                let mut t = vec![(0, 1.0 + (i % 3) as f32)];
                if i % 5 == 0 {
                    t.push((1, 1.0 + (i % 2) as f32));
                }
                if i % 40 == 0 {
                    t.push((2, 2.0));
                }
                if i % 67 == 1 {
                    t.push((3, 1.0));
                }
                (t, 5.0 + (i % 11) as f32)
            })
            .collect();
        let (_, rounds) = top_k_in_rounds(&docs, 4, 3);
        // Round 1 reads terms 2 and 3 (8 documents); their top 3 already beat terms 0 and 1.
        assert_eq!(rounds, 1);
        // Asking for more than the rare terms hold takes further rounds, same answer.
        let (top, rounds) = top_k_in_rounds(&docs, 4, 20);
        assert_eq!(top.len(), 20);
        assert!(rounds > 1);
        // Every document matches only common terms: one round reads the rarest, then the rest.
        let flat: Vec<(Vec<(usize, f32)>, f32)> =
            (0..50usize).map(|i| (vec![(i % 2, 1.0)], 4.0)).collect();
        let (top, _) = top_k_in_rounds(&flat, 2, 10);
        assert_eq!(top.len(), 10);
    }

    #[test]
    fn length_normalisation_runs_from_short_texts_to_documents() {
        assert_eq!(length_normalisation(1.0), B_SHORT);
        assert_eq!(length_normalisation(SHORT_LEN), B_SHORT);
        assert_eq!(length_normalisation(LONG_LEN), B_LONG);
        assert_eq!(length_normalisation(10_000.0), B_LONG);
        let mid = length_normalisation((SHORT_LEN + LONG_LEN) / 2.0);
        assert!((mid - (B_SHORT + B_LONG) / 2.0).abs() < 1e-6, "{mid}");
        assert_eq!(length_normalisation(f32::NAN), B_LONG);
        let fixed = Bm25Params {
            k1: 1.2,
            b: Some(0.5),
        };
        assert_eq!(fixed.b_at(1.0), 0.5);
        assert_eq!(Bm25Params::default().b_at(1.0), B_SHORT);
    }

    #[test]
    fn rounds_end_at_once_without_terms() {
        let mut rounds = TermRounds::new(Bm25Params::default(), &[], &[], 10.0);
        assert_eq!(rounds.next_terms(None), None);
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
        assert!(idx.term_ids.is_empty());
        assert_eq!(idx.total_len, 0);
        // Freed numbers are reused: the tables do not grow with churn.
        idx.insert(4, "alpha beta gamma");
        assert!(idx.docs.len() <= 3 && idx.postings.len() <= 4);
    }
}

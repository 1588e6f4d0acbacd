//! Text analysis for keyword search: split on anything that is not a letter or digit,
//! lower-case, drop English stopwords, stem with the Snowball English stemmer.
//!
//! Query text is never parsed as syntax: `%`, `_`, `*`, quotes and operators are separators.

use std::collections::HashSet;
use std::sync::OnceLock;

use rust_stemmers::{Algorithm, Stemmer};

use crate::limits::MAX_QUERY_TERMS;

/// English stopwords (the classic NLTK list without the contraction fragments).
pub const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "against",
    "all",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "below",
    "between",
    "both",
    "but",
    "by",
    "can",
    "did",
    "do",
    "does",
    "doing",
    "don",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "herself",
    "him",
    "himself",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "me",
    "more",
    "most",
    "my",
    "myself",
    "no",
    "nor",
    "not",
    "now",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "ours",
    "ourselves",
    "out",
    "over",
    "own",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "theirs",
    "them",
    "themselves",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "you",
    "your",
    "yours",
    "yourself",
    "yourselves",
];

fn stopwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| STOPWORDS.iter().copied().collect())
}

fn stemmer() -> &'static Stemmer {
    static STEMMER: OnceLock<Stemmer> = OnceLock::new();
    STEMMER.get_or_init(|| Stemmer::create(Algorithm::English))
}

/// The longest word kept whole, in characters; a longer run of letters and digits (a hash, a
/// base64 blob, a 1 MiB "word") is cut to its first this many, so that analysing a content and
/// embedding it with character trigrams stay linear and small.
pub const MAX_TERM_CHARS: usize = 64;

/// Lower-cased words of `text` that are not stopwords, in order, unstemmed (each at most
/// [`MAX_TERM_CHARS`] characters).
///
/// Backends with their own stemming (SQLite FTS5 porter, Postgres `english`) build their
/// queries from these words, each quoted as a literal.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| match w.char_indices().nth(MAX_TERM_CHARS) {
            Some((end, _)) => &w[..end],
            None => w,
        })
        .map(str::to_lowercase)
        .filter(|w| !stopwords().contains(w.as_str()))
}

/// The index terms of `text`: [`words`], stemmed.
pub fn terms(text: &str) -> impl Iterator<Item = String> + '_ {
    words(text).map(|w| stemmer().stem(&w).into_owned())
}

/// The distinct query words of `text`, at most [`MAX_QUERY_TERMS`] (the rest are ignored).
pub fn query_words(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    words(text)
        .filter(|w| seen.insert(w.clone()))
        .take(MAX_QUERY_TERMS)
        .collect()
}

/// The distinct stemmed query terms of `text`, at most [`MAX_QUERY_TERMS`].
pub fn query_terms(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    terms(text)
        .filter(|t| seen.insert(t.clone()))
        .take(MAX_QUERY_TERMS)
        .collect()
}

/// The analysed terms of a content as one string, space-separated and padded (`" t1 t2 t2 "`):
/// stored beside an item by backends that rank with memlayer's BM25 outside the process, so a
/// query reads term frequencies and the length without analysing the content again.
pub fn terms_document(content: &str) -> String {
    let mut doc = String::from(" ");
    for term in terms(content) {
        doc.push_str(&term);
        doc.push(' ');
    }
    doc
}

/// The frequencies of `wanted` terms in a [`terms_document`], and its length in terms.
pub fn term_counts(document: &str, wanted: &[&str]) -> (Vec<f32>, f32) {
    let mut tf = vec![0f32; wanted.len()];
    let mut len = 0f32;
    for token in document.split_whitespace() {
        len += 1.0;
        if let Some(i) = wanted.iter().position(|w| *w == token) {
            tf[i] += 1.0;
        }
    }
    (tf, len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercases_stems_and_drops_stopwords() {
        let t: Vec<_> = terms("The Cats were RUNNING over the fences").collect();
        assert_eq!(t, ["cat", "run", "fenc"]);
    }

    #[test]
    fn syntax_is_a_separator() {
        assert_eq!(
            query_words("100% _x_ *star* \"NEAR(\" col:v"),
            ["100", "x", "star", "near", "col", "v"]
        );
        assert!(query_words("%_*()'\"").is_empty());
    }

    #[test]
    fn cuts_unbroken_words() {
        let huge = "a".repeat(1 << 20);
        let t: Vec<_> = words(&huge).collect();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].chars().count(), MAX_TERM_CHARS);
        let accents = "é".repeat(100);
        assert_eq!(
            words(&accents).next().map(|w| w.chars().count()),
            Some(MAX_TERM_CHARS)
        );
    }

    #[test]
    fn keeps_cjk_accents_and_caps_terms() {
        assert_eq!(query_words("東京 café"), ["東京", "café"]);
        let long: String = (0..500).map(|i| format!("w{i} ")).collect();
        assert_eq!(query_terms(&long).len(), MAX_QUERY_TERMS);
    }
}

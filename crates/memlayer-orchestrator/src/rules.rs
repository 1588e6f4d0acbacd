//! A rule-based extractor that needs no LLM: first-person statements in human messages
//! ("my name is", "I live in", "I work at", "I like", "I prefer", "I'm allergic to", "my
//! favourite X is") become user-profile statements with a subject, predicate and object, so a
//! changed answer supersedes the old one.

use async_trait::async_trait;
use memlayer_store::Result;
use memlayer_store::types::{Kind, MemoryItem};

use crate::extraction::Extractor;
use crate::long_term::{ExtractionType, NewMemory, Triple};

/// The rule-based extractor.
#[derive(Clone, Copy, Debug, Default)]
pub struct RuleExtractor;

/// (lowercase cue, predicate, how the content reads).
const RULES: &[(&str, &str, &str)] = &[
    ("my name is ", "name", "The user's name is {}"),
    ("call me ", "name", "The user's name is {}"),
    ("i live in ", "lives_in", "The user lives in {}"),
    ("i moved to ", "lives_in", "The user lives in {}"),
    ("i'm based in ", "lives_in", "The user lives in {}"),
    ("i am based in ", "lives_in", "The user lives in {}"),
    ("i work at ", "works_at", "The user works at {}"),
    ("i work for ", "works_at", "The user works at {}"),
    ("i prefer ", "prefers", "The user prefers {}"),
    (
        "i'm allergic to ",
        "allergic_to",
        "The user is allergic to {}",
    ),
    (
        "i am allergic to ",
        "allergic_to",
        "The user is allergic to {}",
    ),
    ("i love ", "likes", "The user likes {}"),
    ("i like ", "likes", "The user likes {}"),
];

const ENDS_OBJECT: &[&str] = &[
    "last",
    "now",
    "since",
    "because",
    "today",
    "yesterday",
    "recently",
    "these",
    "this",
    "for",
    "from",
    "until",
    "when",
    "which",
    "who",
    "as",
    "so",
    "too",
    "also",
    "though",
];

/// The words of a statement's object: up to the end of the clause, at most eight words.
fn object_after(rest: &str) -> Option<String> {
    let clause = rest
        .split(['.', ',', '!', '?', ';', '\n'])
        .next()?
        .split(" and ")
        .next()?
        .split(" but ")
        .next()?;
    // Adverbials end the object: "Paris last week", "Berlin now".
    let words: Vec<&str> = clause
        .split_whitespace()
        .take_while(|w| !ENDS_OBJECT.contains(&w.to_lowercase().as_str()))
        .take(8)
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// The statements of one text.
pub fn statements(text: &str) -> Vec<NewMemory> {
    let lower = text.to_lowercase();
    let mut out = Vec::new();
    // Cues are ASCII, so byte offsets in the lowercase text match the original's whenever the
    // text before them lowercases to the same length; otherwise the lowercase text is used.
    let same_len = lower.len() == text.len();
    for (cue, predicate, template) in RULES {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(cue) {
            let start = from + pos;
            from = start + cue.len();
            let at_word_start = start == 0
                || !lower[..start]
                    .chars()
                    .next_back()
                    .is_some_and(char::is_alphanumeric);
            if !at_word_start {
                continue;
            }
            let source = if same_len { text } else { lower.as_str() };
            let Some(object) = source.get(start + cue.len()..).and_then(object_after) else {
                continue;
            };
            out.push(
                NewMemory::new(ExtractionType::UserProfile, template.replace("{}", &object))
                    .with_triple(Triple::new("user", *predicate, object))
                    .with_confidence(0.7),
            );
        }
    }
    // "my favourite X is Y"
    for cue in ["my favourite ", "my favorite "] {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(cue) {
            let start = from + pos + cue.len();
            from = start;
            let Some((what, rest)) = lower[start..].split_once(" is ") else {
                continue;
            };
            let what = what.trim();
            if what.is_empty() || what.split_whitespace().count() > 3 {
                continue;
            }
            let Some(object) = object_after(rest) else {
                continue;
            };
            out.push(
                NewMemory::new(
                    ExtractionType::UserProfile,
                    format!("The user's favourite {what} is {object}"),
                )
                .with_triple(Triple::new(
                    "user",
                    format!("favourite_{}", what.replace(' ', "_")),
                    object,
                ))
                .with_confidence(0.7),
            );
        }
    }
    out
}

#[async_trait]
impl Extractor for RuleExtractor {
    fn name(&self) -> &str {
        "rules"
    }

    async fn extract(&self, messages: &[MemoryItem]) -> Result<Vec<NewMemory>> {
        Ok(messages
            .iter()
            .filter(|m| m.kind == Kind::Human)
            .flat_map(|m| statements(&m.content))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(text: &str) -> Vec<(String, String)> {
        statements(text)
            .into_iter()
            .filter_map(|m| m.triple.map(|t| (t.predicate, t.object)))
            .collect()
    }

    #[test]
    fn first_person_statements_become_triples() {
        assert_eq!(
            objects("Hi! My name is Ada Lovelace, and I live in London. I like tea and cake."),
            [
                ("name".into(), "Ada Lovelace".into()),
                ("lives_in".into(), "London".into()),
                ("likes".into(), "tea".into()),
            ]
        );
        assert_eq!(
            objects("my favourite colour is deep green"),
            [("favourite_colour".into(), "deep green".into())]
        );
    }

    #[test]
    fn cues_inside_words_and_empty_objects_are_ignored() {
        assert!(objects("Tim like this").is_empty());
        assert!(objects("I live in .").is_empty());
        assert!(objects("what do you think?").is_empty());
    }
}

//! Conversational context in hybrid ranking: a message is lifted by the relevance of the
//! messages next to it, because the evidence for a question about a conversation is often a
//! reply whose words are in the turn before it (`docs/decisions/0008-conversation-recall.md`).
//!
//! The neighbours are named by the items themselves: a message stored by the orchestrator
//! carries the id of the message it follows in `metadata.extra["follows"]`. Items without that
//! link (documents, facts) are ranked exactly as before.

use std::collections::HashMap;

use memlayer_types::MemoryItem;

use super::fusion::Fused;

/// The `metadata.extra` key holding the id of the message an item follows in its conversation.
pub const FOLLOWS: &str = "follows";

/// The id of the message `item` follows, if it names one.
pub fn follows(item: &MemoryItem) -> Option<&str> {
    item.metadata.extra.get(FOLLOWS)?.as_str()
}

/// Adds to each fused result `weight` times the better score of its two neighbours in the
/// pool (the message it follows, and the message that follows it), then re-sorts by score,
/// ties by id. Results whose item is unknown keep their score.
pub fn lift(fused: &mut [Fused], items: &HashMap<String, MemoryItem>, weight: f32) {
    if weight <= 0.0 || fused.is_empty() {
        return;
    }
    let score: HashMap<&str, f32> = fused.iter().map(|f| (f.id.as_str(), f.score)).collect();
    let mut best: HashMap<String, f32> = HashMap::new();
    for f in fused.iter() {
        let Some(prev) = items.get(&f.id).and_then(follows) else {
            continue;
        };
        let Some(&prev_score) = score.get(prev) else {
            continue;
        };
        // The link runs both ways: each of the pair is lifted by the other.
        for (id, other) in [(f.id.as_str(), prev_score), (prev, f.score)] {
            let slot = best.entry(id.to_owned()).or_insert(0.0);
            *slot = slot.max(other);
        }
    }
    if best.is_empty() {
        return;
    }
    for f in fused.iter_mut() {
        if let Some(b) = best.get(&f.id) {
            f.score += weight * b;
        }
    }
    fused.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use memlayer_types::Kind;

    fn fused(id: &str, score: f32) -> Fused {
        Fused {
            id: id.into(),
            score,
            keyword_score: None,
            vector_score: None,
        }
    }

    fn item(id: &str, follows: Option<&str>) -> (String, MemoryItem) {
        let mut item = MemoryItem::new("ns", Kind::Human, "x").with_id(id);
        if let Some(p) = follows {
            item = item.with_extra(FOLLOWS, p);
        }
        (id.to_owned(), item)
    }

    #[test]
    fn a_reply_is_lifted_by_the_question_before_it() {
        // b answers a; c is unrelated but scores a little better than b alone.
        let mut pool = vec![fused("a", 1.0), fused("c", 0.5), fused("b", 0.4)];
        let items = HashMap::from([item("a", None), item("b", Some("a")), item("c", None)]);
        lift(&mut pool, &items, 0.5);
        let order: Vec<&str> = pool.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(order, ["a", "b", "c"]);
        assert!((pool[0].score - 1.2).abs() < 1e-6, "a gets half of b's 0.4");
        assert!((pool[1].score - 0.9).abs() < 1e-6, "b gets half of a's 1.0");
    }

    #[test]
    fn items_without_links_keep_their_order_and_scores() {
        let mut pool = vec![fused("x", 0.9), fused("y", 0.3)];
        let items = HashMap::from([item("x", None), item("y", None)]);
        lift(&mut pool, &items, 0.5);
        assert_eq!(pool[0].score, 0.9);
        assert_eq!(pool[1].score, 0.3);
    }

    #[test]
    fn zero_weight_changes_nothing() {
        let mut pool = vec![fused("a", 0.2), fused("b", 0.1)];
        let items = HashMap::from([item("a", None), item("b", Some("a"))]);
        lift(&mut pool, &items, 0.0);
        assert_eq!(pool[0].score, 0.2);
    }
}

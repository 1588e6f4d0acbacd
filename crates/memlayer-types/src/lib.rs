#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod item;
mod timestamp;

pub use item::{Embedding, Kind, MemoryItem, Metadata, Status, Tier};
pub use timestamp::Timestamp;

/// A new item id: a UUID v7, so generated ids sort by creation time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_round_trips_custom_strings() {
        for s in [
            "system",
            "human",
            "ai",
            "tool",
            "fact",
            "summary",
            "my-kind",
            "Ünïcode",
        ] {
            assert_eq!(Kind::parse(s).as_str(), s);
        }
        assert_eq!(Kind::parse("human"), Kind::Human);
    }

    #[test]
    fn status_transitions_follow_the_contract() {
        use Status::*;
        assert!(Draft.can_become(Accepted));
        assert!(Draft.can_become(Discard));
        assert!(Accepted.can_become(Discard));
        assert!(!Accepted.can_become(Draft));
        assert!(!Discard.can_become(Accepted));
        assert!(!Discard.can_become(Draft));
    }

    #[test]
    fn item_json_round_trips() {
        let item = MemoryItem::new("ns", Kind::Ai, "hello")
            .with_user("alice")
            .with_tag("t")
            .with_extra("n", 10)
            .with_tool_calls(vec![serde_json::json!({"id": "c1", "name": "f"})])
            .with_embedding("m", vec![0.5, 0.25]);
        let json = serde_json::to_string(&item).unwrap();
        let back: MemoryItem = serde_json::from_str(&json).unwrap();
        assert_eq!(back, item);
    }
}

//! Small builders and assertions shared by the scenarios.

use std::fmt::Debug;

use memlayer_store::types::{Kind, MemoryItem, Tier, Timestamp};
use memlayer_store::{ErrorKind, Result, SearchResults};

/// The vector dimension used by the scenarios.
pub const DIM: usize = 8;
/// The embedding model id used by the scenarios.
pub const MODEL: &str = "conformance-model";

/// A fixed point about ten days ago, whole seconds, from which scenarios lay out creation
/// times. It is computed once per process, so a scenario that builds data and filters at
/// different moments always sees the same instants.
pub fn t0() -> Timestamp {
    static T0: std::sync::OnceLock<Timestamp> = std::sync::OnceLock::new();
    *T0.get_or_init(|| {
        let now = Timestamp::now().as_millis();
        Timestamp::from_millis((now / 1000) * 1000 - 10 * 24 * 3600 * 1000)
    })
}

/// `t0()` plus `secs` seconds.
pub fn at(secs: i64) -> Timestamp {
    Timestamp::from_millis(t0().as_millis() + secs * 1000)
}

/// A semantic fact (never expires) with a given id and content, created at `at(0)`.
pub fn fact(ns: &str, id: &str, content: &str) -> MemoryItem {
    MemoryItem::new(ns, Kind::Fact, content)
        .with_id(id)
        .with_tier(Tier::Semantic)
        .with_created_at(at(0))
}

/// A unit vector along axis `i` (mod `DIM`).
pub fn axis(i: usize) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    v[i % DIM] = 1.0;
    v
}

/// A normalised vector close to `axis(i)`, tilted towards `axis(j)`.
pub fn near(i: usize, j: usize, tilt: f32) -> Vec<f32> {
    let mut v = axis(i);
    v[j % DIM] += tilt;
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

/// The ids of the hits, in order.
pub fn hit_ids(results: &SearchResults) -> Vec<String> {
    results.hits.iter().map(|h| h.item.id.clone()).collect()
}

/// The ids of items, in order.
pub fn item_ids(items: &[MemoryItem]) -> Vec<String> {
    items.iter().map(|i| i.id.clone()).collect()
}

/// Asserts `r` failed with `kind`, and returns the error message.
#[track_caller]
pub fn expect_err<T: Debug>(r: Result<T>, kind: ErrorKind) -> String {
    match r {
        Ok(v) => panic!("expected {kind:?}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.kind(), kind, "wrong error kind: {e}");
            e.to_string()
        }
    }
}

//! Filters in every mode: composition, selectivity, owner moves, bounded items and metadata
//! (contract 15 and 16).

use std::collections::BTreeSet;

use memlayer_store::types::{Kind, MemoryItem, Status, Timestamp};
use memlayer_store::{
    Capabilities, ClearRequest, CountOptions, Filter, ListRequest, MemoryStore, MetaOp,
    SearchRequest,
};
use serde_json::json;

use crate::{Ctx, MODEL, at, axis, fact, hit_ids, item_ids, near};

async fn filter_dataset(ctx: &Ctx) {
    let s = &ctx.store;
    let base = |id: &str, words: &str, secs: i64| {
        fact(&ctx.ns, id, &format!("apple {words}")).with_created_at(at(secs))
    };
    let items = vec![
        MemoryItem {
            kind: Kind::Human,
            ..base("i0", "banana", 0)
                .with_user("alice")
                .with_session("s1")
                .with_tag("a")
                .with_tag("b")
                .with_extra("n", 5)
                .with_extra("color", "red")
                .with_embedding(MODEL, axis(0))
        },
        MemoryItem {
            kind: Kind::Ai,
            ..base("i1", "cherry", 1)
                .with_user("alice")
                .with_session("s2")
                .with_tag("a")
                .with_extra("n", 15)
                .with_extra("color", "blue")
                .with_embedding(MODEL, near(0, 1, 0.3))
        },
        base("i2", "durian", 2)
            .with_user("bob")
            .with_session("s1")
            .with_tag("b")
            .with_extra("n", 10)
            .with_status(Status::Draft)
            .with_embedding(MODEL, axis(1)),
        base("i3", "elder", 3)
            .with_agent("x")
            .with_task("t9")
            .with_extra("color", "red")
            .with_embedding(MODEL, axis(2)),
        base("i4", "fig", 50)
            .with_user("alice")
            .with_tag("a")
            .with_tag("b")
            .with_extra("n", 100)
            .with_status(Status::Discard)
            .with_embedding(MODEL, near(0, 2, 0.5)),
        base("i5", "grape", 5)
            .with_user("alice")
            .with_expires_at(Timestamp::from_millis(
                Timestamp::now().as_millis() - 60_000,
            ))
            .with_embedding(MODEL, axis(0)),
        base("i6", "honey", 6)
            .with_user("alice")
            .with_embedding(MODEL, axis(0)),
        base("i7", "ice", 7)
            .with_user("alice")
            .with_tag("gone")
            .with_embedding(MODEL, axis(0)),
    ];
    s.upsert_many(items).await.unwrap();
    s.supersede(&ctx.ns, "i6", "i0").await.unwrap();
    s.clear(&ctx.ns, &ClearRequest::matching(Filter::new().tag("gone")))
        .await
        .unwrap();
    s.reinforce(&ctx.ns, &["i1".to_owned()], at(20))
        .await
        .unwrap();
}

/// "apple" (and the vector `axis(0)`) in recent mode and every search mode the store offers.
pub(super) fn apple_in_every_mode(caps: &Capabilities) -> Vec<SearchRequest> {
    let mut modes = vec![SearchRequest::recent()];
    if caps.keyword_search {
        modes.push(SearchRequest::keyword("apple"));
    }
    if caps.vector_search {
        modes.push(SearchRequest::vector(axis(0)));
    }
    if caps.hybrid_search {
        modes.push(SearchRequest::hybrid("apple").with_vector(axis(0)));
    }
    modes
}

/// The ids `filter` finds for "apple" in every mode the store has (up to 10, in the mode's
/// order), then in `list`: each labelled with where it came from.
async fn found_everywhere(
    s: &dyn MemoryStore,
    ns: &str,
    caps: &Capabilities,
    filter: &Filter,
) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for req in apple_in_every_mode(caps) {
        let mode = req.mode;
        let req = req.with_filter(filter.clone()).with_limit(10);
        let got = hit_ids(&s.search(ns, &req).await.unwrap());
        out.push((format!("mode {mode:?}"), got));
    }
    let listed = s
        .list(
            ns,
            &ListRequest::new()
                .with_filter(filter.clone())
                .with_limit(10),
        )
        .await
        .unwrap();
    out.push(("list".to_owned(), item_ids(&listed.items)));
    out
}

/// 15. Every filter field composes with every mode.
pub async fn search_filters_compose_in_every_mode(ctx: Ctx) {
    filter_dataset(&ctx).await;
    let s = &ctx.store;
    let far_future = Timestamp::from_millis(i64::MAX / 4);
    let cases: Vec<(&str, Filter, &[&str])> = vec![
        ("none", Filter::new(), &["i0", "i1", "i2", "i3", "i4"]),
        ("user", Filter::new().user("alice"), &["i0", "i1", "i4"]),
        ("no user", Filter::new().no_user(), &["i3"]),
        ("session", Filter::new().session("s1"), &["i0", "i2"]),
        ("task", Filter::new().task("t9"), &["i3"]),
        ("agent", Filter::new().agent("x"), &["i3"]),
        ("kind", Filter::new().kind(Kind::Fact), &["i2", "i3", "i4"]),
        (
            "kinds",
            Filter::new().kind(Kind::Human).kind(Kind::Ai),
            &["i0", "i1"],
        ),
        ("status", Filter::new().status(Status::Draft), &["i2"]),
        (
            "statuses",
            Filter::new().status(Status::Draft).status(Status::Discard),
            &["i2", "i4"],
        ),
        ("tag", Filter::new().tag("a"), &["i0", "i1", "i4"]),
        ("tags", Filter::new().tag("a").tag("b"), &["i0", "i4"]),
        (
            "meta gt",
            Filter::new().meta("n", MetaOp::Gt, 9),
            &["i1", "i2", "i4"],
        ),
        ("meta eq", Filter::new().meta_eq("n", 10), &["i2"]),
        (
            "meta str",
            Filter::new().meta_eq("color", "red"),
            &["i0", "i3"],
        ),
        (
            "meta ne",
            Filter::new().meta_ne("color", "red"),
            &["i1", "i2", "i4"],
        ),
        (
            "meta lte",
            Filter::new().meta("n", MetaOp::Lte, 10),
            &["i0", "i2"],
        ),
        (
            "exclude ids",
            Filter::new().exclude_id("i0").exclude_id("i3"),
            &["i1", "i2", "i4"],
        ),
        (
            "created",
            Filter::new().created_between(Some(at(1)), Some(at(3))),
            &["i1", "i2", "i3"],
        ),
        (
            "updated",
            Filter::new().updated_between(Some(far_future), None),
            &[],
        ),
        (
            "accessed",
            Filter::new().accessed_between(Some(at(10)), Some(at(30))),
            &["i1"],
        ),
        (
            "expired",
            Filter::new().include_expired(true),
            &["i0", "i1", "i2", "i3", "i4", "i5"],
        ),
        (
            "superseded",
            Filter::new().include_superseded(true),
            &["i0", "i1", "i2", "i3", "i4", "i6"],
        ),
        (
            "deleted",
            Filter::new().include_deleted(true),
            &["i0", "i1", "i2", "i3", "i4", "i7"],
        ),
        (
            "combined",
            Filter::new()
                .user("alice")
                .tag("a")
                .meta("n", MetaOp::Gt, 9),
            &["i1", "i4"],
        ),
    ];
    let caps = s.capabilities();
    for (name, filter, expected) in cases {
        let expected: BTreeSet<String> = expected.iter().map(|s| s.to_string()).collect();
        for req in apple_in_every_mode(&caps) {
            let mode = req.mode;
            let req = req.with_filter(filter.clone()).with_limit(100);
            let got: BTreeSet<String> = hit_ids(&s.search(&ctx.ns, &req).await.unwrap())
                .into_iter()
                .collect();
            assert_eq!(got, expected, "filter {name} in mode {mode:?}");
        }
        let listed = s
            .list(
                &ctx.ns,
                &ListRequest::new()
                    .with_filter(filter.clone())
                    .with_limit(100),
            )
            .await
            .unwrap();
        let got: BTreeSet<String> = item_ids(&listed.items).into_iter().collect();
        assert_eq!(got, expected, "filter {name} in list");
    }
}

/// 15. A selective filter still returns limit hits when that many match.
pub async fn search_selective_filter_fills_limit(ctx: Ctx) {
    let s = &ctx.store;
    let mut batch = Vec::new();
    for i in 0..300 {
        batch.push(
            fact(&ctx.ns, &format!("bob{i:03}"), "apple apple apple orchard")
                .with_user("bob")
                .with_created_at(at(100 + i))
                .with_embedding(MODEL, axis(0)),
        );
    }
    for i in 0..12 {
        batch.push(
            fact(
                &ctx.ns,
                &format!("alice{i:02}"),
                &format!("an apple pie recipe number {i}"),
            )
            .with_user("alice")
            .with_created_at(at(i))
            .with_embedding(MODEL, near(0, 1 + i as usize % 6, 0.8)),
        );
    }
    s.upsert_many(batch).await.unwrap();
    for limit in [5usize, 10, 12] {
        for req in [
            SearchRequest::recent(),
            SearchRequest::keyword("apple"),
            SearchRequest::vector(axis(0)),
            SearchRequest::hybrid("apple").with_vector(axis(0)),
        ] {
            let mode = req.mode;
            let req = req
                .with_filter(Filter::new().user("alice"))
                .with_limit(limit)
                .with_pool_depth(5);
            let hits = s.search(&ctx.ns, &req).await.unwrap();
            assert_eq!(hits.hits.len(), limit, "mode {mode:?} limit {limit}");
            assert!(
                hits.hits
                    .iter()
                    .all(|h| h.item.metadata.user_id.as_deref() == Some("alice"))
            );
        }
    }
}

/// 15. An upsert that changes an item's user, session, task or agent moves it between the filters naming them; a deleted item leaves them.
pub async fn search_owner_change_moves_item(ctx: Ctx) {
    let s = &ctx.store;
    let owned = |id: &str, user: &str, session: &str| {
        fact(&ctx.ns, id, "apple orchard notes")
            .with_user(user)
            .with_session(session)
            .with_task(format!("task-{user}"))
            .with_agent(format!("agent-{user}"))
            .with_embedding(MODEL, axis(0))
    };
    s.upsert_many(vec![owned("m", "ann", "s1"), owned("o", "ann", "s1")])
        .await
        .unwrap();
    s.upsert(owned("m", "ben", "s2")).await.unwrap();
    s.delete(&ctx.ns, "o").await.unwrap();
    let caps = s.capabilities();
    let cases: Vec<(&str, Filter, &[&str])> = vec![
        ("old user", Filter::new().user("ann"), &[]),
        ("new user", Filter::new().user("ben"), &["m"]),
        ("old session", Filter::new().session("s1"), &[]),
        ("new session", Filter::new().session("s2"), &["m"]),
        ("old task", Filter::new().task("task-ann"), &[]),
        ("new task", Filter::new().task("task-ben"), &["m"]),
        ("old agent", Filter::new().agent("agent-ann"), &[]),
        ("new agent", Filter::new().agent("agent-ben"), &["m"]),
        (
            "new user, old session",
            Filter::new().user("ben").session("s1"),
            &[],
        ),
    ];
    for (name, filter, expected) in cases {
        for (place, got) in found_everywhere(s.as_ref(), &ctx.ns, &caps, &filter).await {
            assert_eq!(got, expected, "filter {name} in {place}");
        }
    }
}

/// 15. Items with a future expiry or a validity interval are found beside plain ones, and an expired one never, in every mode, under owner and kind filters and in list and count, also after an upsert moves an item from one group to the other.
pub async fn search_bounded_items_beside_plain_ones(ctx: Ctx) {
    let s = &ctx.store;
    let now = Timestamp::now().as_millis();
    let hour = 3_600_000;
    let ann = |id: &str| {
        fact(&ctx.ns, id, "apple orchard notes")
            .with_user("ann")
            .with_embedding(MODEL, axis(0))
    };
    let expiring = |id: &str| ann(id).with_expires_at(Timestamp::from_millis(now + hour));
    let items = vec![
        ann("plain"),
        expiring("expiring"),
        // Expired: no filter here admits it, whatever keys a backend selects it by.
        ann("expired").with_expires_at(Timestamp::from_millis(now - hour)),
        MemoryItem {
            valid_from: Some(Timestamp::from_millis(now - hour)),
            valid_to: Some(Timestamp::from_millis(now + hour)),
            ..ann("bounded")
        },
        MemoryItem {
            valid_from: Some(Timestamp::from_millis(now + hour)),
            ..ann("later")
        },
        fact(&ctx.ns, "ben", "apple orchard notes")
            .with_user("ben")
            .with_embedding(MODEL, axis(0)),
    ];
    s.upsert_many(items).await.unwrap();
    let caps = s.capabilities();
    for stage in ["written", "swapped"] {
        if stage == "swapped" {
            // The plain item gets an expiry and the expiring one loses it.
            s.upsert_many(vec![expiring("plain"), ann("expiring")])
                .await
                .unwrap();
        }
        let cases: Vec<(&str, Filter, &[&str])> = vec![
            (
                "none",
                Filter::new(),
                &["ben", "bounded", "expiring", "later", "plain"],
            ),
            (
                "user",
                Filter::new().user("ann"),
                &["bounded", "expiring", "later", "plain"],
            ),
            (
                "kind",
                Filter::new().kind(Kind::Fact),
                &["ben", "bounded", "expiring", "later", "plain"],
            ),
            (
                "as of now",
                Filter::new().user("ann").as_of(Timestamp::now()),
                &["bounded", "expiring", "plain"],
            ),
        ];
        for (name, filter, expected) in cases {
            for (place, mut got) in found_everywhere(s.as_ref(), &ctx.ns, &caps, &filter).await {
                got.sort();
                assert_eq!(got, expected, "{stage}: filter {name} in {place}");
            }
        }
        // `count` counts every item not deleted, the expired one too.
        let n = s.count(&ctx.ns, CountOptions::default()).await.unwrap();
        assert_eq!(n, 6, "{stage}: count");
    }
}

/// 16. Unknown metadata keys and keys with dots, quotes or SQL in them are handled safely, never interpolated.
pub async fn search_metadata_keys_are_safe(ctx: Ctx) {
    let s = &ctx.store;
    let keys = [
        "a.b",
        "it's",
        "\"quoted\"",
        "x'); DROP TABLE items; --",
        "$.path",
        "[0]",
        "%",
        "_",
        "back\\slash",
        "{curly}",
        "@tag:{x}",
        "ключ",
    ];
    for (i, key) in keys.iter().enumerate() {
        s.upsert(fact(&ctx.ns, &format!("k{i}"), "x").with_extra(*key, json!(i)))
            .await
            .unwrap();
    }
    for (i, key) in keys.iter().enumerate() {
        let page = s
            .list(
                &ctx.ns,
                &ListRequest::new()
                    .with_filter(Filter::new().meta_eq(*key, i))
                    .with_limit(50),
            )
            .await
            .unwrap();
        assert_eq!(item_ids(&page.items), [format!("k{i}")], "key {key:?}");
        let got = s.get(&ctx.ns, &format!("k{i}")).await.unwrap();
        assert_eq!(got.metadata.extra.get(*key), Some(&json!(i)));
    }
    let unknown = s
        .list(
            &ctx.ns,
            &ListRequest::new().with_filter(Filter::new().meta_eq("no.such'key", 1)),
        )
        .await
        .unwrap();
    assert!(unknown.items.is_empty());
    let ne = s
        .list(
            &ctx.ns,
            &ListRequest::new()
                .with_filter(Filter::new().meta_ne("no.such'key", 1))
                .with_limit(50),
        )
        .await
        .unwrap();
    assert_eq!(ne.items.len(), keys.len());
    assert_eq!(
        s.count(&ctx.ns, CountOptions::all()).await.unwrap(),
        keys.len() as u64
    );
}

/// Metadata numbers compare as numbers, never as text, and a string never equals a number.
pub async fn search_metadata_is_typed(ctx: Ctx) {
    let s = &ctx.store;
    let values = [
        ("nine", json!(9)),
        ("ten", json!(10)),
        ("hundred", json!(100)),
        ("text10", json!("10")),
        ("float10", json!(10.0)),
        ("neg", json!(-2.5)),
        ("yes", json!(true)),
    ];
    for (id, v) in &values {
        s.upsert(fact(&ctx.ns, id, "x").with_extra("n", v.clone()))
            .await
            .unwrap();
    }
    let cases: Vec<(Filter, &[&str])> = vec![
        (
            Filter::new().meta("n", MetaOp::Gt, 9),
            &["float10", "hundred", "ten"],
        ),
        (
            Filter::new().meta("n", MetaOp::Gte, 10),
            &["float10", "hundred", "ten"],
        ),
        (Filter::new().meta("n", MetaOp::Lt, 10), &["neg", "nine"]),
        (
            Filter::new().meta("n", MetaOp::Lte, json!(9.5)),
            &["neg", "nine"],
        ),
        (Filter::new().meta_eq("n", 10), &["float10", "ten"]),
        (Filter::new().meta_eq("n", "10"), &["text10"]),
        (Filter::new().meta_eq("n", true), &["yes"]),
        (Filter::new().meta("n", MetaOp::Gt, "1"), &["text10"]),
        (
            Filter::new()
                .meta("n", MetaOp::Gt, 0)
                .meta("n", MetaOp::Lt, 50),
            &["float10", "nine", "ten"],
        ),
    ];
    for (filter, want) in cases {
        let page = s
            .list(
                &ctx.ns,
                &ListRequest::new()
                    .with_filter(filter.clone())
                    .with_limit(50),
            )
            .await
            .unwrap();
        let got: BTreeSet<String> = item_ids(&page.items).into_iter().collect();
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, want, "{:?}", filter.metadata);
    }
}

use std::collections::BTreeSet;

use memlayer_store::types::{Kind, MemoryItem, Status, Timestamp};
use memlayer_store::{
    Capabilities, ClearRequest, CountOptions, Filter, ListRequest, MemoryStore, MetaOp, Order,
    RankedBy, SearchMode, SearchRequest, SortKey,
};
use serde_json::json;

use crate::{Ctx, MODEL, at, axis, fact, hit_ids, item_ids, near};

/// 12. recent mode returns live items newest first, capped by limit (default 10).
pub async fn search_recent_newest_first(ctx: Ctx) {
    let s = &ctx.store;
    for i in 0..12 {
        s.upsert(fact(&ctx.ns, &format!("i{i:02}"), "x").with_created_at(at(i)))
            .await
            .unwrap();
    }
    let all = s.search(&ctx.ns, &SearchRequest::recent()).await.unwrap();
    let expected: Vec<String> = (2..12).rev().map(|i| format!("i{i:02}")).collect();
    assert_eq!(hit_ids(&all), expected, "default limit 10, newest first");
    assert!(all.hits.iter().all(|h| h.ranked_by == RankedBy::Recency));
    let three = s
        .search(&ctx.ns, &SearchRequest::recent().with_limit(3))
        .await
        .unwrap();
    assert_eq!(hit_ids(&three), ["i11", "i10", "i09"]);
}

/// 12. Cursor pages never repeat or skip an item, even while new items are inserted.
pub async fn search_recent_cursor_is_stable(ctx: Ctx) {
    let s = &ctx.store;
    let mut expected = Vec::new();
    for i in 0..20 {
        // Pairs share a creation time, so the id tie-break is exercised.
        let id = format!("i{i:02}");
        s.upsert(fact(&ctx.ns, &id, "x").with_created_at(at(i / 2)))
            .await
            .unwrap();
        expected.push(id);
    }
    expected.reverse();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut inserted = 0;
    loop {
        let mut req = SearchRequest::recent().with_limit(7);
        if let Some(c) = &cursor {
            req = req.with_cursor(c.clone());
        }
        let page = s.search(&ctx.ns, &req).await.unwrap();
        seen.extend(hit_ids(&page));
        // New items arrive between pages; they are newer and must not disturb the walk.
        inserted += 1;
        s.upsert(
            fact(&ctx.ns, &format!("new{inserted}"), "x").with_created_at(at(1000 + inserted)),
        )
        .await
        .unwrap();
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(inserted < 10, "cursor never ended");
    }
    assert_eq!(seen, expected);
}

/// 12. Offset pages of every mode partition the ranking without repeats.
pub async fn search_offset_pages(ctx: Ctx) {
    let s = &ctx.store;
    for i in 0..12 {
        let words = "apple ".repeat(1 + i % 4);
        s.upsert(
            fact(&ctx.ns, &format!("i{i:02}"), &format!("{words} filler {i}"))
                .with_created_at(at(i as i64))
                .with_embedding(MODEL, near(0, 1 + i % 5, 0.1 * i as f32)),
        )
        .await
        .unwrap();
    }
    for base in apple_in_every_mode(&s.capabilities()) {
        let full = s
            .search(&ctx.ns, &base.clone().with_limit(12))
            .await
            .unwrap();
        let mut paged = Vec::new();
        for p in 0..4 {
            let page = s
                .search(&ctx.ns, &base.clone().with_limit(3).with_offset(p * 3))
                .await
                .unwrap();
            paged.extend(hit_ids(&page));
        }
        assert_eq!(paged, hit_ids(&full), "mode {:?}", base.mode);
        assert_eq!(full.hits.len(), 12);
    }
}

/// 13. Keyword search is case-insensitive and matches word forms (cats finds cat).
pub async fn search_keyword_case_and_word_forms(ctx: Ctx) {
    let s = &ctx.store;
    s.upsert(fact(&ctx.ns, "cat", "The CAT sat on the mat"))
        .await
        .unwrap();
    s.upsert(fact(&ctx.ns, "dogs", "Dogs bark at night"))
        .await
        .unwrap();
    s.upsert(fact(&ctx.ns, "run", "She was running late"))
        .await
        .unwrap();
    for (query, want) in [
        ("cats", "cat"),
        ("cAt", "cat"),
        ("dog", "dogs"),
        ("DOGS", "dogs"),
        ("runs", "run"),
        ("run", "run"),
    ] {
        let hits = s
            .search(&ctx.ns, &SearchRequest::keyword(query))
            .await
            .unwrap();
        assert_eq!(hit_ids(&hits), [want], "query {query:?}");
        let hit = &hits.hits[0];
        assert_eq!(hit.ranked_by, RankedBy::Keyword);
        assert!(hit.keyword_score.is_some_and(|k| k > 0.0));
    }
}

/// 13. Keyword search ranks by BM25: rarer terms and denser matches rank higher.
pub async fn search_keyword_ranks_by_bm25(ctx: Ctx) {
    let s = &ctx.store;
    s.upsert(fact(&ctx.ns, "dense", "rust rust rust memory"))
        .await
        .unwrap();
    s.upsert(fact(
        &ctx.ns,
        "sparse",
        "rust memory layer described with many other words that pad its length a lot",
    ))
    .await
    .unwrap();
    s.upsert(fact(&ctx.ns, "rare", "zebra crossing"))
        .await
        .unwrap();
    s.upsert(fact(&ctx.ns, "none", "python snakes"))
        .await
        .unwrap();
    let hits = s
        .search(&ctx.ns, &SearchRequest::keyword("rust"))
        .await
        .unwrap();
    assert_eq!(hit_ids(&hits), ["dense", "sparse"]);
    let scores: Vec<f32> = hits.hits.iter().map(|h| h.score).collect();
    assert!(scores[0] > scores[1], "{scores:?}");
    let hits = s
        .search(&ctx.ns, &SearchRequest::keyword("memory zebra"))
        .await
        .unwrap();
    assert_eq!(hit_ids(&hits)[0], "rare", "the rarer term wins");
    assert_eq!(hits.hits.len(), 3);
}

/// 13. A keyword search's hits at any limit are the head of its full ranking, with the same scores, also when most items hold the query's common terms and under an owner filter.
pub async fn search_keyword_top_k_is_the_ranking_head(ctx: Ctx) {
    let s = &ctx.store;
    // 48 items: "alpha" in all (1-4 times), "beta" in every third, "delta" three times in
    // every third, "gamma" in two long ones, which a short item holding only commoner terms
    // outscores; half of them belong to alice, some of them expire later.
    let items: Vec<MemoryItem> = (0..48usize)
        .map(|i| {
            let mut words = vec!["alpha"; 1 + i % 4];
            match i % 3 {
                0 => words.extend(std::iter::repeat_n("beta", 1 + i % 2)),
                1 => words.extend(["delta"; 3]),
                _ => {}
            }
            let mut padding = i % 5;
            if i == 8 || i == 30 {
                words.push("gamma");
                padding += 16;
            }
            words.extend(std::iter::repeat_n("padding", padding));
            let mut item = fact(&ctx.ns, &format!("k{i:02}"), &words.join(" "));
            if i % 2 == 0 {
                item = item.with_user("alice");
            }
            if i % 4 == 1 {
                item = item.with_expires_at(at(1_000_000_000));
            }
            item
        })
        .collect();
    s.upsert_many(items).await.unwrap();
    for (query, filter) in [
        ("alpha beta gamma", Filter::new()),
        ("alpha beta", Filter::new()),
        ("gamma beta delta", Filter::new()),
        ("gamma delta", Filter::new().user("alice")),
        ("alpha beta gamma", Filter::new().user("alice")),
    ] {
        let full = s
            .search(
                &ctx.ns,
                &SearchRequest::keyword(query)
                    .with_filter(filter.clone())
                    .with_limit(100),
            )
            .await
            .unwrap();
        assert!(!full.hits.is_empty(), "{query}");
        for limit in [1, 2, 3, 5, 10, 17, full.hits.len()] {
            let head = s
                .search(
                    &ctx.ns,
                    &SearchRequest::keyword(query)
                        .with_filter(filter.clone())
                        .with_limit(limit),
                )
                .await
                .unwrap();
            let want: Vec<String> = hit_ids(&full).into_iter().take(limit).collect();
            assert_eq!(hit_ids(&head), want, "{query} at limit {limit}");
            for (h, f) in head.hits.iter().zip(&full.hits) {
                assert!(
                    (h.score - f.score).abs() <= 1e-5 * f.score.abs().max(1.0),
                    "{query} at limit {limit}: {} scored {} and {}",
                    h.item.id,
                    h.score,
                    f.score
                );
            }
        }
    }
}

/// 13. Keyword search never matches on %, _, * or other syntax: they are literal.
pub async fn search_keyword_syntax_is_literal(ctx: Ctx) {
    let s = &ctx.store;
    s.upsert(fact(&ctx.ns, "pct", "I am 100% sure"))
        .await
        .unwrap();
    s.upsert(fact(&ctx.ns, "snake", "snake_case_name here"))
        .await
        .unwrap();
    s.upsert(fact(&ctx.ns, "star", "a*b is a product"))
        .await
        .unwrap();
    s.upsert(fact(&ctx.ns, "plain", "plain words only"))
        .await
        .unwrap();
    for query in [
        "%",
        "_",
        "*",
        "%%",
        "_%_",
        "\"*\"",
        "' OR 1=1 --",
        "()",
        "\\",
    ] {
        let hits = s
            .search(&ctx.ns, &SearchRequest::keyword(query))
            .await
            .unwrap();
        assert!(
            hits.hits.is_empty(),
            "{query:?} matched {:?}",
            hit_ids(&hits)
        );
    }
    for (query, want) in [
        ("sure%", "pct"),
        ("plai*", ""),
        ("pla_n", ""),
        ("plain*", "plain"),
    ] {
        let hits = s
            .search(&ctx.ns, &SearchRequest::keyword(query))
            .await
            .unwrap();
        let ids = hit_ids(&hits);
        if want.is_empty() {
            assert!(
                ids.is_empty(),
                "{query:?} must not act as a pattern: {ids:?}"
            );
        } else {
            assert_eq!(ids, [want], "{query:?}");
        }
    }
}

/// 14. Hostile keyword input never errors and never alters data; a plain query afterwards still works.
pub async fn search_keyword_hostile_input(ctx: Ctx) {
    let s = &ctx.store;
    s.upsert(fact(&ctx.ns, "a", "a perfectly ordinary sentence"))
        .await
        .unwrap();
    s.upsert(fact(
        &ctx.ns,
        "q",
        "quotes \" and ' and NEAR( inside content",
    ))
    .await
    .unwrap();
    s.upsert(fact(
        &ctx.ns,
        "cjk",
        "東京 は 大きい 都市 café naïve 🚀 rocket",
    ))
    .await
    .unwrap();
    let huge = "x".repeat(100 * 1024);
    let many_words: String = (0..20_000).map(|i| format!("w{i} ")).collect();
    let hostile = [
        "\"",
        "\"\"\"",
        "'",
        "NEAR(",
        "NEAR(a b, 2)",
        "col:v AND x*",
        "content:ordinary",
        "'); DROP TABLE items; --",
        "\"); DELETE FROM items; --",
        "((((",
        "]]]",
        "{\"$ne\": 1}",
        "a OR b NOT c AND",
        "^ordinary",
        "ordinary*",
        "@content:{x}",
        "-ordinary",
        "~ordinary",
        "\u{0}",
        "東京",
        "café",
        "🚀",
        huge.as_str(),
        many_words.as_str(),
        "",
        "   ",
    ];
    let caps = s.capabilities();
    for q in hostile {
        let r = s.search(&ctx.ns, &SearchRequest::keyword(q)).await;
        assert!(
            r.is_ok(),
            "keyword {:?} errored: {:?}",
            q.chars().take(40).collect::<String>(),
            r.err()
        );
        if caps.hybrid_search {
            let r = s.search(&ctx.ns, &SearchRequest::hybrid(q)).await;
            assert!(r.is_ok(), "hybrid errored: {:?}", r.err());
        }
    }
    assert_eq!(s.count(&ctx.ns, CountOptions::all()).await.unwrap(), 3);
    let hits = s
        .search(&ctx.ns, &SearchRequest::keyword("ordinary"))
        .await
        .unwrap();
    assert_eq!(hit_ids(&hits), ["a"]);
    let hits = s
        .search(&ctx.ns, &SearchRequest::keyword("東京"))
        .await
        .unwrap();
    assert_eq!(hit_ids(&hits), ["cjk"]);
    let hits = s
        .search(&ctx.ns, &SearchRequest::keyword("rocket"))
        .await
        .unwrap();
    assert_eq!(hit_ids(&hits), ["cjk"]);
    let hits = s
        .search(&ctx.ns, &SearchRequest::keyword("near quotes"))
        .await
        .unwrap();
    assert_eq!(hit_ids(&hits), ["q"]);
}

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
fn apple_in_every_mode(caps: &Capabilities) -> Vec<SearchRequest> {
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

/// list sorts by every key in both directions, breaks ties by id, and cursor pages cover every item once.
pub async fn list_sorts_and_pages(ctx: Ctx) {
    let s = &ctx.store;
    let mut ids = Vec::new();
    for i in 0..13i64 {
        let id = format!("i{i:02}");
        s.upsert(
            fact(&ctx.ns, &id, "x")
                .with_created_at(at(i / 3))
                .with_importance([0.1, 0.5, 0.9][i as usize % 3]),
        )
        .await
        .unwrap();
        ids.push(id);
    }
    for (n, id) in ids.iter().enumerate().take(6) {
        let times = 1 + n % 2;
        for k in 0..times {
            s.reinforce(
                &ctx.ns,
                std::slice::from_ref(id),
                at(100 + (n * 2 + k) as i64 % 5),
            )
            .await
            .unwrap();
        }
    }
    let mut items = Vec::new();
    for id in &ids {
        items.push(s.get(&ctx.ns, id).await.unwrap());
    }
    for key in [
        SortKey::Created,
        SortKey::Updated,
        SortKey::Accessed,
        SortKey::AccessCount,
        SortKey::Importance,
    ] {
        for order in [Order::Asc, Order::Desc] {
            let mut expected = items.clone();
            expected.sort_by(|a, b| {
                let o = key
                    .value_of(a)
                    .cmp_to(&key.value_of(b))
                    .then_with(|| a.id.cmp(&b.id));
                if order == Order::Desc { o.reverse() } else { o }
            });
            let mut got = Vec::new();
            let mut req = ListRequest::new().sorted(key, order).with_limit(4);
            loop {
                let page = s.list(&ctx.ns, &req).await.unwrap();
                assert!(page.items.len() <= 4);
                got.extend(item_ids(&page.items));
                match page.next_cursor {
                    Some(c) => req = req.with_cursor(c),
                    None => break,
                }
            }
            assert_eq!(got, item_ids(&expected), "sort {key:?} {order:?}");
        }
    }
    let _ = SearchMode::Recent;
}

//! Recent mode, offset and cursor pages, and `list`'s sorting (contract 12 and `list`).

use memlayer_store::{ListRequest, Order, RankedBy, SearchMode, SearchRequest, SortKey};

use super::filters::apple_in_every_mode;
use crate::{Ctx, MODEL, at, fact, hit_ids, item_ids, near};

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

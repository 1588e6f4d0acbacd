use memlayer_store::{ClearRequest, CountOptions, ErrorKind, Filter, SearchRequest};

use crate::{Ctx, expect_err, fact, hit_ids};

/// 8. clear(filter) soft-deletes the matching live items and returns exactly their number; search and get no longer see them.
pub async fn clear_soft_deletes_exact_count(ctx: Ctx) {
    let s = &ctx.store;
    for i in 0..150 {
        let user = if i % 3 == 0 { "alice" } else { "bob" };
        s.upsert(fact(&ctx.ns, &format!("i{i:03}"), &format!("note number {i}")).with_user(user))
            .await
            .unwrap();
    }
    let n = s
        .clear(
            &ctx.ns,
            &ClearRequest::matching(Filter::new().user("alice")),
        )
        .await
        .unwrap();
    assert_eq!(n, 50, "exactly alice's 50 items, never a page of them");
    let again = s
        .clear(
            &ctx.ns,
            &ClearRequest::matching(Filter::new().user("alice")),
        )
        .await
        .unwrap();
    assert_eq!(again, 0, "already-cleared items are not counted twice");
    expect_err(s.get(&ctx.ns, "i000").await, ErrorKind::NotFound);
    s.get(&ctx.ns, "i001").await.unwrap();
    let hits = s
        .search(
            &ctx.ns,
            &SearchRequest::keyword("note")
                .with_filter(Filter::new().user("alice"))
                .with_limit(100),
        )
        .await
        .unwrap();
    assert!(
        hits.hits.is_empty(),
        "cleared items still found: {:?}",
        hit_ids(&hits)
    );
    let recent = s
        .search(&ctx.ns, &SearchRequest::recent().with_limit(200))
        .await
        .unwrap();
    assert_eq!(recent.hits.len(), 100);
}

/// 9. A clear whose filter selects everything is InvalidInput unless the explicit all flag is set.
pub async fn clear_refuses_empty_filter(ctx: Ctx) {
    let s = &ctx.store;
    for i in 0..5 {
        s.upsert(fact(&ctx.ns, &format!("i{i}"), "x"))
            .await
            .unwrap();
    }
    let msg = expect_err(
        s.clear(&ctx.ns, &ClearRequest::matching(Filter::new()))
            .await,
        ErrorKind::InvalidInput,
    );
    assert!(
        msg.contains("all"),
        "the error should point at the all flag: {msg}"
    );
    expect_err(
        s.clear(
            &ctx.ns,
            &ClearRequest::matching(Filter::new().include_expired(true).exclude_id("i0")),
        )
        .await,
        ErrorKind::InvalidInput,
    );
    assert_eq!(s.count(&ctx.ns, CountOptions::live()).await.unwrap(), 5);
    assert_eq!(
        s.clear(&ctx.ns, &ClearRequest::everything()).await.unwrap(),
        5
    );
    assert_eq!(s.count(&ctx.ns, CountOptions::live()).await.unwrap(), 0);
}

/// 10. count() counts live items; count(include_deleted) counts every id written and not hard-deleted.
pub async fn count_live_and_deleted(ctx: Ctx) {
    let s = &ctx.store;
    assert_eq!(s.count(&ctx.ns, CountOptions::live()).await.unwrap(), 0);
    for i in 0..10 {
        let item = fact(&ctx.ns, &format!("i{i}"), "x");
        let item = if i < 4 { item.with_tag("old") } else { item };
        s.upsert(item).await.unwrap();
    }
    s.upsert(fact(&ctx.ns, "i9", "rewritten")).await.unwrap();
    s.clear(&ctx.ns, &ClearRequest::matching(Filter::new().tag("old")))
        .await
        .unwrap();
    s.delete(&ctx.ns, "i8").await.unwrap();
    assert_eq!(s.count(&ctx.ns, CountOptions::live()).await.unwrap(), 5);
    assert_eq!(s.count(&ctx.ns, CountOptions::all()).await.unwrap(), 9);
    assert_eq!(
        s.count(&ctx.other_ns("none"), CountOptions::all())
            .await
            .unwrap(),
        0
    );
}

/// 11. Re-upserting a soft-deleted id revives it.
pub async fn clear_then_upsert_revives(ctx: Ctx) {
    let s = &ctx.store;
    s.upsert(fact(&ctx.ns, "a", "phoenix").with_tag("x"))
        .await
        .unwrap();
    s.clear(&ctx.ns, &ClearRequest::matching(Filter::new().tag("x")))
        .await
        .unwrap();
    expect_err(s.get(&ctx.ns, "a").await, ErrorKind::NotFound);
    let revived = s.upsert(fact(&ctx.ns, "a", "phoenix rises")).await.unwrap();
    assert!(!revived.deleted);
    assert_eq!(revived.version, 2);
    assert_eq!(s.get(&ctx.ns, "a").await.unwrap().content, "phoenix rises");
    let hits = s
        .search(&ctx.ns, &SearchRequest::keyword("phoenix"))
        .await
        .unwrap();
    assert_eq!(hit_ids(&hits), ["a"]);
    assert_eq!(s.count(&ctx.ns, CountOptions::live()).await.unwrap(), 1);
}

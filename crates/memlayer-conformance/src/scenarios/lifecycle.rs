use std::time::Duration;

use memlayer_store::types::{Tier, Timestamp};
use memlayer_store::{ErrorKind, Filter, ListRequest, MemoryStoreExt, SearchRequest};

use crate::{Ctx, expect_err, fact, hit_ids, item_ids};

fn now_plus(secs: i64) -> Timestamp {
    Timestamp::from_millis(Timestamp::now().as_millis() + secs * 1000)
}

/// 27. Expired items are hidden by default and shown with include_expired; now overrides the clock.
pub async fn lifecycle_expired_hidden(ctx: Ctx) {
    let s = &ctx.store;
    s.upsert(fact(&ctx.ns, "past", "expiring words").with_expires_at(now_plus(-60)))
        .await
        .unwrap();
    s.upsert(fact(&ctx.ns, "soon", "expiring words").with_expires_at(now_plus(3600)))
        .await
        .unwrap();
    s.upsert(fact(&ctx.ns, "never", "expiring words"))
        .await
        .unwrap();
    let working = s
        .upsert(fact(&ctx.ns, "working", "expiring words").with_tier(Tier::Working))
        .await
        .unwrap();
    let ttl = Tier::Working.default_ttl().unwrap();
    let expires = working.expires_at.unwrap();
    let lag = expires.duration_since(Timestamp::now().saturating_add(ttl));
    assert!(
        lag < Duration::from_secs(60),
        "working tier expires about 72 h from now"
    );
    let ids = |r: memlayer_store::SearchResults| {
        let mut v = hit_ids(&r);
        v.sort();
        v
    };
    for req in [SearchRequest::recent(), SearchRequest::keyword("expiring")] {
        let default = s.search(&ctx.ns, &req).await.unwrap();
        assert_eq!(ids(default), ["never", "soon", "working"]);
        let all = s
            .search(
                &ctx.ns,
                &req.clone().with_filter(Filter::new().include_expired(true)),
            )
            .await
            .unwrap();
        assert_eq!(ids(all), ["never", "past", "soon", "working"]);
        let later = s
            .search(
                &ctx.ns,
                &req.clone().with_filter(Filter::new().at(now_plus(7200))),
            )
            .await
            .unwrap();
        assert_eq!(ids(later), ["never", "working"]);
        let much_later = s
            .search(
                &ctx.ns,
                &req.clone()
                    .with_filter(Filter::new().at(expires.saturating_add(Duration::from_secs(1)))),
            )
            .await
            .unwrap();
        assert_eq!(ids(much_later), ["never"]);
        let earlier = s
            .search(
                &ctx.ns,
                &req.clone().with_filter(Filter::new().at(now_plus(-3600))),
            )
            .await
            .unwrap();
        assert_eq!(ids(earlier), ["never", "past", "soon", "working"]);
    }
    // get is a direct read by id: it returns expired items (so that sweeping can inspect them).
    assert_eq!(s.get(&ctx.ns, "past").await.unwrap().id, "past");
}

/// 28. delete-if-expired-before deletes only if still expired at the cutoff; NotFound otherwise.
pub async fn lifecycle_delete_if_expired_before(ctx: Ctx) {
    let s = &ctx.store;
    let t = now_plus(-600);
    s.upsert(fact(&ctx.ns, "stale", "x").with_expires_at(t))
        .await
        .unwrap();
    s.upsert(
        fact(&ctx.ns, "revived", "x")
            .with_tier(Tier::Working)
            .with_expires_at(t),
    )
    .await
    .unwrap();
    s.upsert(fact(&ctx.ns, "fresh", "x").with_expires_at(now_plus(3600)))
        .await
        .unwrap();
    let expired = s.list_expired(Timestamp::now(), 1000).await.unwrap();
    let mine: Vec<&str> = expired
        .iter()
        .filter(|e| e.namespace == ctx.ns)
        .map(|e| e.id.as_str())
        .collect();
    assert_eq!(mine.len(), 2);
    assert!(mine.contains(&"stale") && mine.contains(&"revived"));
    // Between listing and deleting, the sweeper's race: one item gets reinforced.
    s.reinforce(&ctx.ns, &["revived".to_owned()], Timestamp::now())
        .await
        .unwrap();
    let cutoff = Timestamp::now();
    s.delete_if_expired_before(&ctx.ns, "stale", cutoff)
        .await
        .unwrap();
    expect_err(
        s.delete_if_expired_before(&ctx.ns, "revived", cutoff).await,
        ErrorKind::NotFound,
    );
    expect_err(
        s.delete_if_expired_before(&ctx.ns, "fresh", cutoff).await,
        ErrorKind::NotFound,
    );
    expect_err(
        s.delete_if_expired_before(&ctx.ns, "stale", cutoff).await,
        ErrorKind::NotFound,
    );
    expect_err(
        s.delete_if_expired_before(&ctx.other_ns("x"), "fresh", now_plus(7200))
            .await,
        ErrorKind::NotFound,
    );
    expect_err(s.get(&ctx.ns, "stale").await, ErrorKind::NotFound);
    s.get(&ctx.ns, "revived").await.unwrap();
    s.get(&ctx.ns, "fresh").await.unwrap();
}

/// 29. Reinforce adds 1 to access_count, sets last_accessed_at, slides only expiring items, ignores missing ids.
pub async fn lifecycle_reinforce(ctx: Ctx) {
    let s = &ctx.store;
    let working = s
        .upsert(fact(&ctx.ns, "w", "x").with_tier(Tier::Working))
        .await
        .unwrap();
    let forever = s.upsert(fact(&ctx.ns, "f", "x")).await.unwrap();
    assert_eq!(forever.expires_at, None);
    let at = now_plus(3600);
    let ids = ["w", "f", "missing", "w"].map(String::from);
    let n = s.reinforce(&ctx.ns, &ids, at).await.unwrap();
    assert_eq!(n, 2, "missing ids are ignored and duplicates count once");
    let w = s.get(&ctx.ns, "w").await.unwrap();
    assert_eq!(w.access_count, 1);
    assert_eq!(w.last_accessed_at, Some(at));
    let ttl = Tier::Working.default_ttl().unwrap();
    assert_eq!(w.expires_at, Some(at.saturating_add(ttl)));
    assert!(w.expires_at > working.expires_at);
    assert_eq!(
        w.version, working.version,
        "reinforce is not a write of content"
    );
    let f = s.get(&ctx.ns, "f").await.unwrap();
    assert_eq!((f.access_count, f.expires_at), (1, None));
    assert_eq!(f.last_accessed_at, Some(at));
    s.reinforce(&ctx.ns, &["w".to_owned()], at).await.unwrap();
    assert_eq!(s.get(&ctx.ns, "w").await.unwrap().access_count, 2);
    assert_eq!(
        s.reinforce(&ctx.other_ns("x"), &["w".to_owned()], at)
            .await
            .unwrap(),
        0
    );
    assert_eq!(s.get(&ctx.ns, "w").await.unwrap().access_count, 2);
}

/// Decay scales the scores of idle items towards a floor, atomically, without a version bump.
pub async fn lifecycle_decay(ctx: Ctx) {
    let s = &ctx.store;
    let idle = s
        .upsert(
            fact(&ctx.ns, "idle", "x")
                .with_created_at(crate::at(0))
                .with_importance(0.8)
                .with_confidence(0.9),
        )
        .await
        .unwrap();
    s.upsert(
        fact(&ctx.ns, "low", "x")
            .with_created_at(crate::at(0))
            .with_importance(0.1)
            .with_confidence(0.3),
    )
    .await
    .unwrap();
    s.upsert(
        fact(&ctx.ns, "fresh", "x")
            .with_created_at(crate::at(0))
            .with_importance(0.8),
    )
    .await
    .unwrap();
    s.reinforce(&ctx.ns, &["fresh".to_owned()], crate::at(600))
        .await
        .unwrap();
    s.upsert(fact(&ctx.ns, "young", "x").with_created_at(crate::at(900)))
        .await
        .unwrap();
    s.upsert(fact(&ctx.ns, "gone", "x").with_tag("bye"))
        .await
        .unwrap();
    let cleared = s
        .clear(
            &ctx.ns,
            &memlayer_store::ClearRequest::matching(Filter::new().tag("bye")),
        )
        .await
        .unwrap();
    assert_eq!(cleared, 1);
    let other = ctx.other_ns("decay");
    s.upsert(fact(&other, "elsewhere", "x").with_created_at(crate::at(0)))
        .await
        .unwrap();
    // Idle before at(300): idle and low (fresh was accessed later, young created later).
    let n = s.decay(&ctx.ns, crate::at(300), 0.5, 0.2).await.unwrap();
    assert_eq!(n, 2, "idle (both scores) and low (confidence only) change");
    let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
    let i = s.get(&ctx.ns, "idle").await.unwrap();
    assert!(
        close(i.importance, 0.4) && close(i.confidence, 0.45),
        "{i:?}"
    );
    assert_eq!(i.version, idle.version, "decay is bookkeeping, not a write");
    assert_eq!(i.updated_at, idle.updated_at);
    let l = s.get(&ctx.ns, "low").await.unwrap();
    assert!(close(l.importance, 0.1), "below the floor stays: {l:?}");
    assert!(close(l.confidence, 0.2), "never below the floor: {l:?}");
    for (untouched, importance) in [("fresh", 0.8), ("young", 0.5)] {
        let u = s.get(&ctx.ns, untouched).await.unwrap();
        assert!(
            close(u.importance, importance) && close(u.confidence, 1.0),
            "{u:?}"
        );
    }
    let deleted = s
        .list_all(&ctx.ns, Filter::new().include_deleted(true).tag("bye"))
        .await
        .unwrap();
    assert_eq!(deleted.len(), 1);
    assert!(
        close(deleted[0].confidence, 1.0),
        "soft-deleted items are left"
    );
    let e = s.get(&other, "elsewhere").await.unwrap();
    assert!(close(e.confidence, 1.0), "another namespace is untouched");
    // Again: idle halves once more, low is at its floors.
    assert_eq!(s.decay(&ctx.ns, crate::at(300), 0.5, 0.2).await.unwrap(), 1);
    let i = s.get(&ctx.ns, "idle").await.unwrap();
    assert!(
        close(i.importance, 0.2) && close(i.confidence, 0.225),
        "{i:?}"
    );
    // Bad arguments name the field and change nothing.
    let msg = expect_err(
        s.decay(&ctx.ns, crate::at(300), 1.5, 0.2).await,
        ErrorKind::InvalidInput,
    );
    assert!(msg.contains("factor"), "{msg}");
    let msg = expect_err(
        s.decay(&ctx.ns, crate::at(300), 0.5, f32::NAN).await,
        ErrorKind::InvalidInput,
    );
    assert!(msg.contains("floor"), "{msg}");
    assert!(close(s.get(&ctx.ns, "idle").await.unwrap().importance, 0.2));
}

/// 30. Supersede hides the item and stamps valid_to; as_of before shows it; restore undoes both; predecessors lists replaced ids.
pub async fn lifecycle_supersede_and_time_travel(ctx: Ctx) {
    let s = &ctx.store;
    s.upsert(fact(&ctx.ns, "v1", "lives in Paris"))
        .await
        .unwrap();
    s.upsert(fact(&ctx.ns, "v2", "lives in Berlin"))
        .await
        .unwrap();
    s.upsert(fact(&ctx.ns, "v3", "lives in Rome"))
        .await
        .unwrap();
    let before = Timestamp::now();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let old = s.supersede(&ctx.ns, "v1", "v3").await.unwrap();
    s.supersede(&ctx.ns, "v2", "v3").await.unwrap();
    assert_eq!(old.superseded_by.as_deref(), Some("v3"));
    let stamped = old.valid_to.expect("valid_to stamped");
    assert!(stamped > before);
    expect_err(
        s.supersede(&ctx.ns, "v3", "nope").await,
        ErrorKind::NotFound,
    );
    expect_err(
        s.supersede(&ctx.ns, "nope", "v3").await,
        ErrorKind::NotFound,
    );
    expect_err(
        s.supersede(&ctx.ns, "v3", "v3").await,
        ErrorKind::InvalidInput,
    );
    let live = s
        .search(&ctx.ns, &SearchRequest::keyword("lives"))
        .await
        .unwrap();
    assert_eq!(hit_ids(&live), ["v3"]);
    let listed = s.list(&ctx.ns, &ListRequest::new()).await.unwrap();
    assert_eq!(item_ids(&listed.items), ["v3"]);
    let past = s
        .search(
            &ctx.ns,
            &SearchRequest::keyword("paris").with_filter(Filter::new().as_of(before)),
        )
        .await
        .unwrap();
    assert_eq!(hit_ids(&past), ["v1"]);
    let after = s
        .search(
            &ctx.ns,
            &SearchRequest::keyword("paris").with_filter(Filter::new().as_of(stamped)),
        )
        .await
        .unwrap();
    assert!(after.hits.is_empty(), "valid_to is exclusive");
    let with_superseded = s
        .search(
            &ctx.ns,
            &SearchRequest::keyword("lives").with_filter(Filter::new().include_superseded(true)),
        )
        .await
        .unwrap();
    assert_eq!(with_superseded.hits.len(), 3);
    let preds = s.predecessors(&ctx.ns, "v3").await.unwrap();
    let mut pred_ids = item_ids(&preds);
    pred_ids.sort();
    assert_eq!(pred_ids, ["v1", "v2"]);
    assert!(s.predecessors(&ctx.ns, "v1").await.unwrap().is_empty());
    let restored = s.restore(&ctx.ns, "v1").await.unwrap();
    assert_eq!((restored.superseded_by, restored.valid_to), (None, None));
    let live = s
        .search(&ctx.ns, &SearchRequest::keyword("paris"))
        .await
        .unwrap();
    assert_eq!(hit_ids(&live), ["v1"]);
    assert_eq!(
        item_ids(&s.predecessors(&ctx.ns, "v3").await.unwrap()),
        ["v2"]
    );
    expect_err(s.restore(&ctx.ns, "nope").await, ErrorKind::NotFound);
}

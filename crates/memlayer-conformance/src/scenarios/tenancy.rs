use std::collections::BTreeSet;

use memlayer_store::{
    ClearRequest, CountOptions, ErrorKind, Filter, MemoryStoreExt, SearchRequest,
};

use crate::{Ctx, MODEL, axis, expect_err, fact, hit_ids, item_ids};

/// 25. A search scoped to alice never returns bob's items; items with no user are invisible to named users and vice versa.
pub async fn tenancy_users_never_mix(ctx: Ctx) {
    let s = &ctx.store;
    for (id, user) in [
        ("a1", Some("alice")),
        ("a2", Some("alice")),
        ("b1", Some("bob")),
        ("n1", None),
    ] {
        let item = fact(&ctx.ns, id, "shared secret words").with_embedding(MODEL, axis(0));
        let item = match user {
            Some(u) => item.with_user(u),
            None => item,
        };
        s.upsert(item).await.unwrap();
    }
    // A user id that looks like a pattern must not widen the match.
    s.upsert(
        fact(&ctx.ns, "pct", "shared secret words")
            .with_user("%")
            .with_embedding(MODEL, axis(0)),
    )
    .await
    .unwrap();
    let modes = [
        SearchRequest::recent(),
        SearchRequest::keyword("secret"),
        SearchRequest::vector(axis(0)),
        SearchRequest::hybrid("secret").with_vector(axis(0)),
    ];
    let scopes: [(Filter, &[&str]); 4] = [
        (Filter::new().user("alice"), &["a1", "a2"]),
        (Filter::new().user("bob"), &["b1"]),
        (Filter::new().user("%"), &["pct"]),
        (Filter::new().no_user(), &["n1"]),
    ];
    for (filter, want) in scopes {
        for req in &modes {
            let got: BTreeSet<String> = hit_ids(
                &s.search(
                    &ctx.ns,
                    &req.clone().with_filter(filter.clone()).with_limit(50),
                )
                .await
                .unwrap(),
            )
            .into_iter()
            .collect();
            let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
            assert_eq!(got, want, "{:?} in {:?}", filter.user, req.mode);
        }
    }
}

/// 26. Namespace delete returns the number deleted and leaves siblings untouched; an unknown namespace returns 0.
pub async fn namespace_delete_counts(ctx: Ctx) {
    let s = &ctx.store;
    let doomed = ctx.other_ns("doomed");
    let sibling = ctx.other_ns("doomed-sibling");
    for i in 0..7 {
        s.upsert(fact(&doomed, &format!("d{i}"), "x"))
            .await
            .unwrap();
    }
    for i in 0..3 {
        s.upsert(fact(&sibling, &format!("s{i}"), "x"))
            .await
            .unwrap();
    }
    s.delete(&doomed, "d6").await.unwrap();
    s.upsert(fact(&doomed, "d5", "x").with_tag("t"))
        .await
        .unwrap();
    assert_eq!(s.delete_namespace(&doomed).await.unwrap(), 6);
    assert_eq!(s.count(&doomed, CountOptions::all()).await.unwrap(), 0);
    assert_eq!(s.count(&sibling, CountOptions::all()).await.unwrap(), 3);
    assert_eq!(
        s.delete_namespace(&ctx.other_ns("never-existed"))
            .await
            .unwrap(),
        0
    );
    assert_eq!(s.delete_namespace(&doomed).await.unwrap(), 0);
    expect_err(s.get(&doomed, "d0").await, ErrorKind::NotFound);
    // The ids are free again after their namespace is gone.
    s.upsert(fact(&sibling, "d0", "reused id")).await.unwrap();
}

/// 26. list namespaces lists each once; reassign moves only listed ids present in the source, vectors included.
pub async fn namespace_list_and_reassign(ctx: Ctx) {
    let s = &ctx.store;
    let from = ctx.other_ns("from");
    let to = ctx.other_ns("to");
    let third = ctx.other_ns("third");
    for i in 0..4 {
        s.upsert(fact(&from, &format!("f{i}"), "movable words").with_embedding(MODEL, axis(i)))
            .await
            .unwrap();
    }
    s.upsert(fact(&third, "t0", "x")).await.unwrap();
    let listed = s.list_namespaces().await.unwrap();
    for ns in [&from, &third] {
        assert_eq!(
            listed.iter().filter(|n| *n == ns).count(),
            1,
            "{ns} listed once"
        );
    }
    assert!(!listed.contains(&to));
    let ids = ["f0", "f1", "t0", "missing"].map(String::from);
    assert_eq!(s.reassign(&ids, &from, &to).await.unwrap(), 2);
    assert_eq!(s.count(&from, CountOptions::all()).await.unwrap(), 2);
    assert_eq!(s.count(&to, CountOptions::all()).await.unwrap(), 2);
    s.get(&third, "t0").await.unwrap();
    expect_err(s.get(&from, "f0").await, ErrorKind::NotFound);
    let moved = s.get(&to, "f0").await.unwrap();
    assert_eq!(moved.namespace, to);
    let hits = s
        .search(&to, &SearchRequest::vector(axis(0)))
        .await
        .unwrap();
    assert_eq!(hit_ids(&hits)[0], "f0", "the vector moved with the item");
    let hits = s
        .search(&from, &SearchRequest::vector(axis(0)))
        .await
        .unwrap();
    assert!(!hit_ids(&hits).contains(&"f0".to_owned()));
    let kw = s
        .search(&to, &SearchRequest::keyword("movable"))
        .await
        .unwrap();
    assert_eq!(kw.hits.len(), 2);
    let listed = s.list_namespaces().await.unwrap();
    assert_eq!(listed.iter().filter(|n| **n == to).count(), 1);
    let mut sorted = listed.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(listed, sorted, "sorted, each once");
}

/// The outcome of one call, reduced to what a caller can observe of it.
fn observed<T: std::fmt::Debug>(r: memlayer_store::Result<T>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(e) => format!("err {:?}", e.kind()),
    }
}

/// 26a. No answer in one namespace depends on what another holds: write, get, delete, supersede, restore, predecessors, reinforce, expiry and reassign treat another namespace's ids exactly as free ones.
pub async fn tenancy_no_cross_namespace_oracle(ctx: Ctx) {
    let s = &ctx.store;
    let other = ctx.other_ns("other");
    let third = ctx.other_ns("third");
    // The other tenant holds `held` (replaced by `newer`) and an expired `old`.
    s.upsert(fact(&other, "held", "the user likes green tea").with_embedding(MODEL, axis(0)))
        .await
        .unwrap();
    s.upsert(fact(&other, "newer", "the user likes black tea"))
        .await
        .unwrap();
    s.supersede(&other, "held", "newer").await.unwrap();
    s.upsert(fact(&other, "old", "expired words").with_expires_at(crate::at(1)))
        .await
        .unwrap();
    s.reinforce(&other, &["newer".to_owned()], crate::at(2))
        .await
        .unwrap();
    // Every item of the other namespace, whatever its state.
    let everything = || {
        Filter::new()
            .include_deleted(true)
            .include_superseded(true)
            .include_expired(true)
    };
    let before = s.list_all(&other, everything()).await.unwrap();
    // Every probe in this namespace answers the same for the other tenant's ids as for ids
    // that exist nowhere.
    let cutoff = crate::at(3);
    for (held, newer, old) in [("held", "newer", "old"), ("free1", "free2", "free3")] {
        let ids = [held.to_owned(), newer.to_owned(), old.to_owned()];
        let answers = vec![
            observed(s.get(&ctx.ns, held).await),
            observed(s.delete(&ctx.ns, old).await),
            observed(s.supersede(&ctx.ns, newer, held).await),
            observed(s.restore(&ctx.ns, held).await),
            observed(s.predecessors(&ctx.ns, newer).await),
            observed(s.reinforce(&ctx.ns, &ids, crate::at(4)).await),
            observed(s.delete_if_expired_before(&ctx.ns, old, cutoff).await),
            observed(s.reassign(&ids, &ctx.ns, &third).await),
            observed(s.count(&ctx.ns, CountOptions::all()).await),
        ];
        assert_eq!(
            answers,
            [
                "err NotFound",
                "err NotFound",
                "err NotFound",
                "err NotFound",
                "ok []",
                "ok 0",
                "err NotFound",
                "ok 0",
                "ok 0"
            ],
            "probes of {ids:?}"
        );
        // Writing the id here makes a new item (version 1), never a conflict or an update.
        let written = s
            .upsert(fact(&ctx.ns, held, "mine").with_embedding(MODEL, axis(0)))
            .await
            .unwrap();
        assert_eq!(written.version, 1, "{held} is new in this namespace");
        let batch = s
            .upsert_many(vec![
                fact(&ctx.ns, newer, "mine too"),
                fact(&ctx.ns, old, "and this"),
            ])
            .await
            .unwrap();
        assert_eq!((batch[0].version, batch[1].version), (1, 1));
        s.supersede(&ctx.ns, held, newer).await.unwrap();
        assert_eq!(
            item_ids(&s.predecessors(&ctx.ns, newer).await.unwrap()),
            [held]
        );
        s.restore(&ctx.ns, held).await.unwrap();
        assert_eq!(s.reinforce(&ctx.ns, &ids, crate::at(4)).await.unwrap(), 3);
        assert_eq!(
            s.clear(&ctx.ns, &ClearRequest::everything()).await.unwrap(),
            3
        );
        assert_eq!(s.delete_namespace(&ctx.ns).await.unwrap(), 3);
    }
    // Moving an id into a namespace that holds it already is a Conflict the caller sees (it
    // owns both), and moves nothing.
    s.upsert(fact(&ctx.ns, "x", "source x")).await.unwrap();
    s.upsert(fact(&ctx.ns, "y", "source y")).await.unwrap();
    s.upsert(fact(&third, "x", "target x")).await.unwrap();
    let ids = ["x".to_owned(), "y".to_owned()];
    expect_err(s.reassign(&ids, &ctx.ns, &third).await, ErrorKind::Conflict);
    assert_eq!(s.count(&ctx.ns, CountOptions::all()).await.unwrap(), 2);
    assert_eq!(s.get(&third, "x").await.unwrap().content, "target x");
    expect_err(s.get(&third, "y").await, ErrorKind::NotFound);
    // And the other tenant's items are exactly as they were.
    let after = s.list_all(&other, everything()).await.unwrap();
    assert_eq!(after, before, "the other namespace is untouched");
    let hits = s
        .search(
            &other,
            &SearchRequest::vector(axis(0)).with_filter(Filter::new().include_superseded(true)),
        )
        .await
        .unwrap();
    assert_eq!(hit_ids(&hits), ["held"], "its vector is its own");
}

use std::collections::BTreeSet;

use memlayer_store::{CountOptions, ErrorKind, Filter, SearchRequest};

use crate::{Ctx, MODEL, axis, expect_err, fact, hit_ids};

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

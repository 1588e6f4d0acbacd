use memlayer_store::{ClearRequest, ErrorKind, Filter, RankedBy, SearchRequest};

use crate::{Ctx, DIM, MODEL, axis, expect_err, fact, hit_ids, near};

/// 17. The exact vector ranks first, the near one second; no hit from another namespace or user.
pub async fn vector_exact_then_near(ctx: Ctx) {
    let s = &ctx.store;
    let other = ctx.other_ns("other");
    s.upsert(
        fact(&ctx.ns, "exact", "x")
            .with_user("alice")
            .with_embedding(MODEL, axis(3)),
    )
    .await
    .unwrap();
    s.upsert(
        fact(&ctx.ns, "near", "x")
            .with_user("alice")
            .with_embedding(MODEL, near(3, 4, 0.2)),
    )
    .await
    .unwrap();
    s.upsert(
        fact(&ctx.ns, "far", "x")
            .with_user("alice")
            .with_embedding(MODEL, near(4, 3, 0.1)),
    )
    .await
    .unwrap();
    s.upsert(
        fact(&ctx.ns, "bobs", "x")
            .with_user("bob")
            .with_embedding(MODEL, axis(3)),
    )
    .await
    .unwrap();
    s.upsert(
        fact(&other, "elsewhere", "x")
            .with_user("alice")
            .with_embedding(MODEL, axis(3)),
    )
    .await
    .unwrap();
    let hits = s
        .search(
            &ctx.ns,
            &SearchRequest::vector(axis(3)).with_filter(Filter::new().user("alice")),
        )
        .await
        .unwrap();
    assert_eq!(hit_ids(&hits), ["exact", "near", "far"]);
    let first = &hits.hits[0];
    assert!(
        (first.score - 1.0).abs() < 1e-4,
        "exact cosine is 1, got {}",
        first.score
    );
    assert_eq!(first.vector_score, Some(first.score));
    assert_eq!(first.keyword_score, None);
    assert_eq!(first.ranked_by, RankedBy::Vector);
    assert!(hits.hits[1].score > hits.hits[2].score);
    let all = s
        .search(&ctx.ns, &SearchRequest::vector(axis(3)).with_limit(10))
        .await
        .unwrap();
    assert!(!hit_ids(&all).contains(&"elsewhere".to_owned()));
    assert_eq!(all.hits.len(), 4);
}

/// 17. A namespace's vector search fills limit from its own items when another namespace holds many nearer vectors.
///
/// A store whose index spans namespaces must not let them crowd the answer out, and a filter
/// over the crowded namespace holds too.
pub async fn vector_crowded_by_other_namespace(ctx: Ctx) {
    let s = &ctx.store;
    let crowd = ctx.other_ns("crowd");
    let many: Vec<_> = (0..120)
        .map(|i| {
            fact(&crowd, &format!("c{i:03}"), "x")
                .with_user(if i % 2 == 0 { "alice" } else { "bob" })
                .with_embedding(MODEL, near(0, 1 + i % 3, 0.01))
        })
        .collect();
    s.upsert_many(many).await.unwrap();
    let own: Vec<_> = (0..6)
        .map(|i| {
            fact(&ctx.ns, &format!("own{i}"), "x")
                .with_user("alice")
                .with_embedding(MODEL, near(0, 4 + i % 4, 0.3 + 0.1 * i as f32))
        })
        .collect();
    s.upsert_many(own).await.unwrap();
    let hits = s
        .search(&ctx.ns, &SearchRequest::vector(axis(0)).with_limit(6))
        .await
        .unwrap();
    assert_eq!(
        hit_ids(&hits),
        ["own0", "own1", "own2", "own3", "own4", "own5"],
        "the namespace's own items, nearest first"
    );
    let crowded = s
        .search(
            &crowd,
            &SearchRequest::vector(axis(0))
                .with_filter(Filter::new().user("bob"))
                .with_limit(10),
        )
        .await
        .unwrap();
    assert_eq!(crowded.hits.len(), 10);
    assert!(
        crowded
            .hits
            .iter()
            .all(|h| h.item.metadata.user_id.as_deref() == Some("bob") && h.item.namespace == crowd)
    );
}

/// 18. Cosine with a zero vector is 0, never NaN; NaN or infinite components are InvalidInput.
pub async fn vector_zero_and_non_finite(ctx: Ctx) {
    let s = &ctx.store;
    s.upsert(fact(&ctx.ns, "zero", "x").with_embedding(MODEL, vec![0.0; DIM]))
        .await
        .unwrap();
    s.upsert(fact(&ctx.ns, "unit", "x").with_embedding(MODEL, axis(0)))
        .await
        .unwrap();
    let hits = s
        .search(&ctx.ns, &SearchRequest::vector(axis(0)))
        .await
        .unwrap();
    assert_eq!(hit_ids(&hits), ["unit", "zero"]);
    assert_eq!(hits.hits[1].score, 0.0);
    let by_zero = s
        .search(&ctx.ns, &SearchRequest::vector(vec![0.0; DIM]))
        .await
        .unwrap();
    assert_eq!(by_zero.hits.len(), 2);
    assert!(
        by_zero.hits.iter().all(|h| h.score == 0.0),
        "zero query scores 0, never NaN"
    );
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut v = axis(0);
        v[2] = bad;
        let msg = expect_err(
            s.upsert(fact(&ctx.ns, "bad", "x").with_embedding(MODEL, v.clone()))
                .await,
            ErrorKind::InvalidInput,
        );
        assert!(msg.contains("component 2"), "{msg}");
        expect_err(
            s.search(&ctx.ns, &SearchRequest::vector(v)).await,
            ErrorKind::InvalidInput,
        );
    }
    expect_err(s.get(&ctx.ns, "bad").await, ErrorKind::NotFound);
}

/// A store pins model and dimension on first use; another dimension is InvalidInput naming both numbers.
pub async fn vector_dimension_is_pinned(ctx: Ctx) {
    let s = &ctx.store;
    assert_eq!(s.embedding_pin().await.unwrap(), None);
    s.upsert(fact(&ctx.ns, "a", "x").with_embedding(MODEL, axis(0)))
        .await
        .unwrap();
    let pin = s.embedding_pin().await.unwrap().unwrap();
    assert_eq!((pin.model.as_str(), pin.dim), (MODEL, DIM));
    let msg = expect_err(
        s.upsert(fact(&ctx.ns, "b", "x").with_embedding(MODEL, vec![1.0; DIM + 3]))
            .await,
        ErrorKind::InvalidInput,
    );
    assert!(
        msg.contains(&DIM.to_string()) && msg.contains(&(DIM + 3).to_string()),
        "{msg}"
    );
    let msg = expect_err(
        s.upsert(fact(&ctx.ns, "c", "x").with_embedding("another-model", axis(1)))
            .await,
        ErrorKind::InvalidInput,
    );
    assert!(msg.contains("another-model"), "{msg}");
    let msg = expect_err(
        s.search(&ctx.ns, &SearchRequest::vector(vec![1.0; DIM - 1]))
            .await,
        ErrorKind::InvalidInput,
    );
    assert!(msg.contains(&(DIM - 1).to_string()), "{msg}");
    expect_err(
        s.search(
            &ctx.ns,
            &SearchRequest::new(memlayer_store::SearchMode::Vector),
        )
        .await,
        ErrorKind::InvalidInput,
    );
}

/// 19. A vectorless item is keyword-searchable but never a vector hit; re-upserting with a vector makes it one; without removes it.
pub async fn vector_vectorless_and_stale(ctx: Ctx) {
    let s = &ctx.store;
    s.upsert(fact(&ctx.ns, "with", "quantum physics").with_embedding(MODEL, axis(1)))
        .await
        .unwrap();
    s.upsert(fact(&ctx.ns, "without", "quantum chemistry"))
        .await
        .unwrap();
    let kw = s
        .search(&ctx.ns, &SearchRequest::keyword("quantum"))
        .await
        .unwrap();
    assert_eq!(kw.hits.len(), 2);
    let vec = s
        .search(&ctx.ns, &SearchRequest::vector(axis(0)))
        .await
        .unwrap();
    assert_eq!(hit_ids(&vec), ["with"]);
    s.upsert(fact(&ctx.ns, "without", "quantum chemistry").with_embedding(MODEL, axis(0)))
        .await
        .unwrap();
    let vec = s
        .search(&ctx.ns, &SearchRequest::vector(axis(0)))
        .await
        .unwrap();
    assert_eq!(hit_ids(&vec), ["without", "with"]);
    s.upsert(fact(&ctx.ns, "with", "quantum physics"))
        .await
        .unwrap();
    let vec = s
        .search(&ctx.ns, &SearchRequest::vector(axis(1)))
        .await
        .unwrap();
    assert_eq!(hit_ids(&vec), ["without"], "the stale vector must be gone");
    assert_eq!(s.get(&ctx.ns, "with").await.unwrap().embedding, None);
}

/// 20. After delete, clear or namespace delete, vector search no longer returns the removed items.
pub async fn vector_removed_items_vanish(ctx: Ctx) {
    let s = &ctx.store;
    let doomed = ctx.other_ns("doomed");
    for (id, tag) in [("keep", "k"), ("deleted", "k"), ("cleared", "c")] {
        s.upsert(
            fact(&ctx.ns, id, "x")
                .with_tag(tag)
                .with_embedding(MODEL, axis(0)),
        )
        .await
        .unwrap();
    }
    s.upsert(fact(&doomed, "gone-with-ns", "x").with_embedding(MODEL, axis(0)))
        .await
        .unwrap();
    s.delete(&ctx.ns, "deleted").await.unwrap();
    s.clear(&ctx.ns, &ClearRequest::matching(Filter::new().tag("c")))
        .await
        .unwrap();
    assert_eq!(s.delete_namespace(&doomed).await.unwrap(), 1);
    let hits = s
        .search(&ctx.ns, &SearchRequest::vector(axis(0)).with_limit(10))
        .await
        .unwrap();
    assert_eq!(hit_ids(&hits), ["keep"]);
    let hits = s
        .search(&doomed, &SearchRequest::vector(axis(0)).with_limit(10))
        .await
        .unwrap();
    assert!(hits.hits.is_empty());
    // Recreating the namespace and the id must not resurrect the old vector.
    s.upsert(fact(&doomed, "gone-with-ns", "x")).await.unwrap();
    let hits = s
        .search(&doomed, &SearchRequest::vector(axis(0)).with_limit(10))
        .await
        .unwrap();
    assert!(hits.hits.is_empty());
}

/// Reads made before the store pins its model keep working once it has: pinning must not
/// break what a backend prepared or cached for the unpinned layout.
pub async fn vector_reads_across_the_pin(ctx: Ctx) {
    let s = &ctx.store;
    s.upsert(fact(&ctx.ns, "plain", "before the pin").with_extra("k", 1))
        .await
        .expect("upsert without a vector");
    let by_meta = SearchRequest::recent().with_filter(Filter::new().meta_eq("k", 1));
    // Several rounds, so every pooled connection a backend hands out has run these reads.
    for _ in 0..6 {
        assert_eq!(s.get(&ctx.ns, "plain").await.expect("get").embedding, None);
        let hits = s
            .search(&ctx.ns, &by_meta)
            .await
            .expect("search before the pin");
        assert_eq!(hit_ids(&hits), ["plain"]);
    }
    s.upsert(
        fact(&ctx.ns, "vec", "after the pin")
            .with_extra("k", 1)
            .with_embedding(MODEL, axis(2)),
    )
    .await
    .expect("the first upsert with a vector pins the model");
    for _ in 0..6 {
        let got = s.get(&ctx.ns, "vec").await.expect("get after the pin");
        assert_eq!(got.embedding.map(|e| e.vector), Some(axis(2)));
        let hits = s
            .search(&ctx.ns, &by_meta)
            .await
            .expect("search after the pin");
        assert_eq!(hit_ids(&hits), ["vec", "plain"]);
        let hits = s
            .search(&ctx.ns, &SearchRequest::vector(axis(2)).with_limit(5))
            .await
            .expect("vector search after the pin");
        assert_eq!(hit_ids(&hits), ["vec"]);
    }
}

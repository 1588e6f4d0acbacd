use memlayer_store::{Fusion, RankedBy, SearchRequest};

use crate::{Ctx, MODEL, at, axis, fact, hit_ids, near};

/// 21. Hybrid returns a final score and fills both per-signal scores when both signals hit.
pub async fn hybrid_fills_both_scores(ctx: Ctx) {
    let s = &ctx.store;
    s.upsert(fact(&ctx.ns, "both", "espresso machine descaling").with_embedding(MODEL, axis(0)))
        .await
        .unwrap();
    s.upsert(fact(&ctx.ns, "kw", "espresso beans").with_embedding(MODEL, axis(5)))
        .await
        .unwrap();
    s.upsert(fact(&ctx.ns, "vec", "tea leaves").with_embedding(MODEL, near(0, 1, 0.2)))
        .await
        .unwrap();
    let hits = s
        .search(
            &ctx.ns,
            &SearchRequest::hybrid("espresso descaling").with_vector(axis(0)),
        )
        .await
        .unwrap();
    assert_eq!(hit_ids(&hits)[0], "both");
    let top = &hits.hits[0];
    assert_eq!(top.ranked_by, RankedBy::Hybrid);
    assert!(top.keyword_score.is_some_and(|k| k > 0.0));
    assert!(top.vector_score.is_some_and(|v| (v - 1.0).abs() < 1e-4));
    assert!(top.score.is_finite() && top.score > 0.0);
    assert!(hits.hits.iter().all(|h| h.score.is_finite()));
    assert!(
        hits.hits.windows(2).all(|w| w[0].score >= w[1].score),
        "best first"
    );
}

/// 22. A lexically matching older item outranks a non-matching newer one.
pub async fn hybrid_lexical_older_beats_newer(ctx: Ctx) {
    let s = &ctx.store;
    s.upsert(fact(&ctx.ns, "old", "the user is allergic to peanuts").with_created_at(at(1)))
        .await
        .unwrap();
    for i in 0..5 {
        s.upsert(
            fact(
                &ctx.ns,
                &format!("new{i}"),
                "the user likes hiking in spring",
            )
            .with_created_at(at(100 + i)),
        )
        .await
        .unwrap();
    }
    let hits = s
        .search(&ctx.ns, &SearchRequest::hybrid("peanut allergy"))
        .await
        .unwrap();
    assert_eq!(hit_ids(&hits)[0], "old");
    assert_ne!(hits.hits[0].ranked_by, RankedBy::Recency);
}

/// 23. An empty or signal-less hybrid query falls back to recency and says so in the scores.
pub async fn hybrid_no_signal_is_recency(ctx: Ctx) {
    let s = &ctx.store;
    for i in 0..4 {
        s.upsert(fact(&ctx.ns, &format!("i{i}"), "plain content").with_created_at(at(i)))
            .await
            .unwrap();
    }
    for req in [
        SearchRequest::hybrid(""),
        SearchRequest::hybrid("   "),
        SearchRequest::hybrid("the and of"),
        SearchRequest::hybrid("xylophone"),
        SearchRequest::hybrid("%_*"),
        SearchRequest::new(memlayer_store::SearchMode::Hybrid),
    ] {
        let hits = s.search(&ctx.ns, &req.clone().with_limit(3)).await.unwrap();
        assert_eq!(hit_ids(&hits), ["i3", "i2", "i1"], "{:?}", req.query);
        for h in &hits.hits {
            assert_eq!(h.ranked_by, RankedBy::Recency);
            assert_eq!((h.keyword_score, h.vector_score), (None, None));
        }
    }
}

/// 24. Fusion is deterministic: the same data and query give the same order, ties broken by id.
pub async fn hybrid_fusion_is_deterministic(ctx: Ctx) {
    let s = &ctx.store;
    // Identical content and vectors: every score ties, so only the id can order them.
    for id in ["d", "b", "e", "a", "c"] {
        s.upsert(fact(&ctx.ns, id, "identical twin text").with_embedding(MODEL, axis(2)))
            .await
            .unwrap();
    }
    s.upsert(fact(&ctx.ns, "z", "twin").with_embedding(MODEL, near(2, 3, 2.0)))
        .await
        .unwrap();
    for fusion in [
        Fusion::Convex {
            keyword_weight: 0.5,
        },
        Fusion::Convex {
            keyword_weight: 0.9,
        },
        Fusion::Rrf { k: 60.0 },
    ] {
        let req = SearchRequest::hybrid("identical twin")
            .with_vector(axis(2))
            .with_fusion(fusion)
            .with_limit(10);
        let first = s.search(&ctx.ns, &req).await.unwrap();
        let ids = hit_ids(&first);
        assert_eq!(&ids[..5], ["a", "b", "c", "d", "e"], "{fusion:?}");
        assert_eq!(ids[5], "z");
        for _ in 0..3 {
            assert_eq!(s.search(&ctx.ns, &req).await.unwrap(), first, "{fusion:?}");
        }
    }
}

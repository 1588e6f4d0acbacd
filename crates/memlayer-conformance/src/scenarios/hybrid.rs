use memlayer_store::ranking::context::FOLLOWS;
use memlayer_store::{ErrorKind, Fusion, RankedBy, SearchRequest};

use crate::{Ctx, MODEL, at, axis, expect_err, fact, hit_ids, near};

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

/// The three items of the conversation scenarios: a question `q`, its reply `r` (linked to
/// `q` by `follows`, no keyword in common with the query, the nearest vector) and an unlinked
/// `y` that matches one query term.
async fn conversation(ctx: &Ctx) {
    let s = &ctx.store;
    s.upsert(
        fact(&ctx.ns, "q", "did you enjoy the pottery class")
            .with_embedding(MODEL, near(1, 0, 0.3)),
    )
    .await
    .unwrap();
    s.upsert(
        fact(&ctx.ns, "r", "it was wonderful")
            .with_extra(FOLLOWS, "q")
            .with_embedding(MODEL, near(0, 3, 0.1)),
    )
    .await
    .unwrap();
    s.upsert(fact(&ctx.ns, "y", "pottery").with_embedding(MODEL, near(2, 0, 0.2)))
        .await
        .unwrap();
}

/// 24a. In hybrid search a message is lifted by the fused score of the message it follows or
/// that follows it; context weight 0 ranks without links; the weight is checked.
pub async fn hybrid_context_lifts_replies(ctx: Ctx) {
    let s = &ctx.store;
    conversation(&ctx).await;
    let req = SearchRequest::hybrid("pottery class")
        .with_vector(axis(0))
        .with_fusion(Fusion::Rrf { k: 60.0 });
    let plain = s
        .search(&ctx.ns, &req.clone().with_context_weight(0.0))
        .await
        .unwrap();
    assert_eq!(hit_ids(&plain), ["q", "y", "r"]);
    let lifted = s
        .search(&ctx.ns, &req.clone().with_context_weight(0.5))
        .await
        .unwrap();
    assert_eq!(hit_ids(&lifted), ["q", "r", "y"]);
    let score = |r: &memlayer_store::SearchResults, id: &str| {
        r.hits.iter().find(|h| h.item.id == id).map(|h| h.score)
    };
    let (q, r) = (score(&plain, "q").unwrap(), score(&plain, "r").unwrap());
    assert!((score(&lifted, "r").unwrap() - (r + 0.5 * q)).abs() < 1e-6);
    assert!((score(&lifted, "q").unwrap() - (q + 0.5 * r)).abs() < 1e-6);
    assert_eq!(
        score(&lifted, "y"),
        score(&plain, "y"),
        "unlinked items keep their score"
    );
    for bad in [-0.1, 1.5, f32::NAN] {
        let msg = expect_err(
            s.search(&ctx.ns, &req.clone().with_context_weight(bad))
                .await,
            ErrorKind::InvalidInput,
        );
        assert!(msg.contains("context_weight"), "{msg}");
    }
}

/// 24b. A relevance floor leaves out hits scoring below it, in the mode's own score; a floor
/// that is not a finite number is InvalidInput naming `min_score`.
pub async fn search_relevance_floor(ctx: Ctx) {
    let s = &ctx.store;
    conversation(&ctx).await;
    let vector = SearchRequest::vector(axis(0));
    let all = s.search(&ctx.ns, &vector).await.unwrap();
    assert_eq!(hit_ids(&all), ["r", "q", "y"]);
    let floor = |min: f32| vector.clone().with_min_score(min);
    assert_eq!(
        hit_ids(&s.search(&ctx.ns, &floor(0.25)).await.unwrap()),
        ["r", "q"]
    );
    assert_eq!(
        hit_ids(&s.search(&ctx.ns, &floor(0.5)).await.unwrap()),
        ["r"]
    );
    let hybrid = SearchRequest::hybrid("pottery class").with_vector(axis(0));
    let fused = s.search(&ctx.ns, &hybrid).await.unwrap();
    let second = fused.hits[1].score;
    let cut = s
        .search(&ctx.ns, &hybrid.clone().with_min_score(second))
        .await
        .unwrap();
    assert_eq!(hit_ids(&cut), hit_ids(&fused)[..2]);
    let msg = expect_err(
        s.search(&ctx.ns, &floor(f32::NAN)).await,
        ErrorKind::InvalidInput,
    );
    assert!(msg.contains("min_score"), "{msg}");
}

/// 24c. Hybrid leaves out a hit no signal speaks for (fused score 0): the vector leg's least
/// similar item, which the keyword leg did not find, does not pad the answer.
pub async fn hybrid_leaves_out_unsupported_hits(ctx: Ctx) {
    let s = &ctx.store;
    s.upsert(fact(&ctx.ns, "diet", "Alice is vegetarian").with_embedding(MODEL, axis(0)))
        .await
        .unwrap();
    s.upsert(fact(&ctx.ns, "near", "lunch at noon").with_embedding(MODEL, near(0, 1, 1.0)))
        .await
        .unwrap();
    s.upsert(fact(&ctx.ns, "office", "The office is in Lyon").with_embedding(MODEL, axis(4)))
        .await
        .unwrap();
    let vector = s
        .search(&ctx.ns, &SearchRequest::vector(axis(0)))
        .await
        .unwrap();
    assert_eq!(
        hit_ids(&vector),
        ["diet", "near", "office"],
        "vector ranks all"
    );
    let hybrid = s
        .search(
            &ctx.ns,
            &SearchRequest::hybrid("what does alice eat").with_vector(axis(0)),
        )
        .await
        .unwrap();
    assert_eq!(hit_ids(&hybrid), ["diet", "near"]);
    assert!(hybrid.hits.iter().all(|h| h.score > 0.0), "{hybrid:?}");
}

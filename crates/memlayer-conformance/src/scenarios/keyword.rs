//! Keyword search: word forms, BM25 ranking, the ranking's head, literal syntax and hostile
//! input (contract 13 and 14).

use memlayer_store::types::MemoryItem;
use memlayer_store::{CountOptions, Filter, RankedBy, SearchRequest};

use crate::{Ctx, at, fact, hit_ids};

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

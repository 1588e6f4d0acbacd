use memlayer_store::types::{Kind, MemoryItem, Status, Tier, Timestamp};
use memlayer_store::{CountOptions, ErrorKind, SearchRequest};
use serde_json::json;

use crate::{Ctx, MODEL, at, axis, expect_err, fact, hit_ids};

/// 1. Upsert then get returns identical content, kind, kind fields, status, metadata, tags, tier and timestamps.
pub async fn crud_roundtrip(ctx: Ctx) {
    let s = &ctx.store;
    let ai = MemoryItem::new(&ctx.ns, Kind::Ai, "Let me look that up.")
        .with_id("ai-1")
        .with_user("alice")
        .with_session("s1")
        .with_task("t1")
        .with_agent("planner")
        .with_tag("conversation")
        .with_tag("tools")
        .with_extra("n", 10)
        .with_extra("ratio", 0.25)
        .with_extra("flag", true)
        .with_extra("nested", json!({"a": [1, "two", null]}))
        .with_extra("unicode ключ", "значение ✓")
        .with_tool_calls(vec![
            json!({"id": "call-1", "name": "search", "arguments": {"q": "weather"}}),
            json!({"id": "call-2", "name": "calc", "arguments": "1+1"}),
        ])
        .with_tier(Tier::Episodic)
        .with_status(Status::Draft)
        .with_importance(0.75)
        .with_confidence(0.5)
        .with_created_at(at(5))
        .with_embedding(MODEL, axis(1));
    let tool = MemoryItem::new(&ctx.ns, Kind::Tool, "{\"temp\": 21}")
        .with_id("tool-1")
        .with_tool_result("call-1", "search", false)
        .with_expires_at(at(100_000))
        .with_created_at(at(6));
    let custom = MemoryItem::new(&ctx.ns, Kind::Custom("Plan-Step ✓".into()), "step one")
        .with_id("custom-1")
        .with_tier(Tier::Procedural);
    let mut validity = fact(&ctx.ns, "fact-1", "Paris is in France");
    validity.valid_from = Some(at(1));
    validity.valid_to = Some(Timestamp::from_millis(i64::MAX / 2));
    for input in [ai, tool, custom, validity] {
        let stored = s.upsert(input.clone()).await.unwrap();
        let got = s.get(&ctx.ns, &input.id).await.unwrap();
        assert_eq!(got, stored, "get must return exactly what upsert stored");
        assert_eq!(got.content, input.content);
        assert_eq!(got.kind, input.kind);
        assert_eq!(got.tool_calls, input.tool_calls);
        assert_eq!(got.tool_call_id, input.tool_call_id);
        assert_eq!(got.tool_name, input.tool_name);
        assert_eq!(got.is_error, input.is_error);
        assert_eq!(got.status, input.status);
        assert_eq!(got.metadata, input.metadata);
        assert_eq!(got.tags, input.tags);
        assert_eq!(got.tier, input.tier);
        assert_eq!(got.importance, input.importance);
        assert_eq!(got.confidence, input.confidence);
        assert_eq!(got.created_at, input.created_at);
        assert_eq!(got.valid_from, input.valid_from);
        assert_eq!(got.valid_to, input.valid_to);
        assert_eq!(got.embedding, input.embedding);
        assert_eq!(got.version, 1);
        assert!(!got.deleted);
        match input.expires_at {
            Some(e) => assert_eq!(got.expires_at, Some(e)),
            None => match input.tier.default_ttl() {
                Some(_) => assert!(got.expires_at.is_some_and(|e| e > Timestamp::now())),
                None => assert_eq!(got.expires_at, None),
            },
        }
    }
}

/// 2. Get of a missing id, or of an id in another namespace, is NotFound.
pub async fn crud_missing_is_not_found(ctx: Ctx) {
    let s = &ctx.store;
    expect_err(s.get(&ctx.ns, "nope").await, ErrorKind::NotFound);
    s.upsert(fact(&ctx.ns, "a", "alpha")).await.unwrap();
    expect_err(s.get(&ctx.other_ns("b"), "a").await, ErrorKind::NotFound);
    assert_eq!(s.get(&ctx.ns, "a").await.unwrap().content, "alpha");
}

/// 3. Upserting an existing id replaces it in place: one row, count unchanged, one vector hit.
pub async fn crud_upsert_replaces_in_place(ctx: Ctx) {
    let s = &ctx.store;
    s.upsert(fact(&ctx.ns, "a", "first text").with_embedding(MODEL, axis(0)))
        .await
        .unwrap();
    s.upsert(fact(&ctx.ns, "b", "other").with_embedding(MODEL, axis(3)))
        .await
        .unwrap();
    s.upsert(fact(&ctx.ns, "a", "second text").with_embedding(MODEL, axis(0)))
        .await
        .unwrap();
    assert_eq!(s.count(&ctx.ns, CountOptions::live()).await.unwrap(), 2);
    assert_eq!(s.count(&ctx.ns, CountOptions::all()).await.unwrap(), 2);
    let hits = s
        .search(&ctx.ns, &SearchRequest::vector(axis(0)).with_limit(10))
        .await
        .unwrap();
    let ids = hit_ids(&hits);
    assert_eq!(
        ids.iter().filter(|i| *i == "a").count(),
        1,
        "one vector hit for a: {ids:?}"
    );
    assert_eq!(ids[0], "a");
    assert_eq!(s.get(&ctx.ns, "a").await.unwrap().content, "second text");
}

/// 3. A batch that names an id twice, or an id already stored, applies its items in order: as many upserts one after another.
pub async fn crud_batch_repeats_an_id(ctx: Ctx) {
    let s = &ctx.store;
    s.upsert(fact(&ctx.ns, "a", "stored")).await.unwrap();
    let out = s
        .upsert_many(vec![
            fact(&ctx.ns, "a", "first rewrite"),
            fact(&ctx.ns, "b", "new"),
            fact(&ctx.ns, "a", "second rewrite"),
            fact(&ctx.ns, "b", "new again"),
        ])
        .await
        .unwrap();
    let seen: Vec<(&str, &str, u64)> = out
        .iter()
        .map(|i| (i.id.as_str(), i.content.as_str(), i.version))
        .collect();
    assert_eq!(
        seen,
        [
            ("a", "first rewrite", 2),
            ("b", "new", 1),
            ("a", "second rewrite", 3),
            ("b", "new again", 2),
        ]
    );
    assert_eq!(out[0].created_at, out[2].created_at);
    let a = s.get(&ctx.ns, "a").await.unwrap();
    assert_eq!((a.content.as_str(), a.version), ("second rewrite", 3));
    let b = s.get(&ctx.ns, "b").await.unwrap();
    assert_eq!((b.content.as_str(), b.version), ("new again", 2));
    assert_eq!(s.count(&ctx.ns, CountOptions::all()).await.unwrap(), 2);
}

/// 4. Version is 1 after insert and grows by exactly 1 per upsert; created_at is kept even if the caller sends another; updated_at advances.
pub async fn crud_version_and_created_at(ctx: Ctx) {
    let s = &ctx.store;
    let first = s.upsert(fact(&ctx.ns, "a", "v1")).await.unwrap();
    assert_eq!(first.version, 1);
    let mut last = first.clone();
    for n in 2..=5u64 {
        let next = s
            .upsert(fact(&ctx.ns, "a", &format!("v{n}")).with_created_at(at(999)))
            .await
            .unwrap();
        assert_eq!(next.version, n);
        assert_eq!(
            next.created_at, first.created_at,
            "created_at must never change"
        );
        assert!(next.updated_at > last.updated_at, "updated_at must advance");
        last = next;
    }
    let got = s.get(&ctx.ns, "a").await.unwrap();
    assert_eq!(got.version, 5);
    assert_eq!(got.created_at, first.created_at);
}

/// 5. The same id written in two namespaces is two items: each namespace's writes, reads, versions, searches and deletes see only its own.
pub async fn crud_same_id_in_two_namespaces(ctx: Ctx) {
    let s = &ctx.store;
    let b = ctx.other_ns("b");
    let a1 = s
        .upsert(fact(&ctx.ns, "shared", "owned by tenant alpha").with_embedding(MODEL, axis(0)))
        .await
        .unwrap();
    let b1 = s
        .upsert(fact(&b, "shared", "owned by tenant beta").with_embedding(MODEL, axis(1)))
        .await
        .unwrap();
    assert_eq!(
        (a1.version, b1.version),
        (1, 1),
        "each namespace's item is new"
    );
    let b2 = s
        .upsert_many(vec![
            fact(&b, "fresh", "beta only"),
            fact(&b, "shared", "owned by tenant beta, again").with_embedding(MODEL, axis(1)),
        ])
        .await
        .unwrap();
    assert_eq!(b2[1].version, 2, "the batch updated beta's own item");
    let a = s.get(&ctx.ns, "shared").await.unwrap();
    assert_eq!(
        (a.content.as_str(), a.version),
        ("owned by tenant alpha", 1)
    );
    let b_item = s.get(&b, "shared").await.unwrap();
    assert_eq!(b_item.content, "owned by tenant beta, again");
    assert_eq!(s.count(&ctx.ns, CountOptions::all()).await.unwrap(), 1);
    assert_eq!(s.count(&b, CountOptions::all()).await.unwrap(), 2);
    for (ns, axis_i, content) in [
        (&ctx.ns, 0, "owned by tenant alpha"),
        (&b, 1, "owned by tenant beta, again"),
    ] {
        for request in [
            SearchRequest::keyword("owned tenant"),
            SearchRequest::vector(axis(axis_i)),
            SearchRequest::hybrid("owned tenant").with_vector(axis(axis_i)),
            SearchRequest::recent(),
        ] {
            let found = s.search(ns, &request).await.unwrap();
            let shared: Vec<_> = found
                .hits
                .iter()
                .filter(|h| h.item.id == "shared")
                .collect();
            assert_eq!(
                shared.len(),
                1,
                "{ns}: one hit for its own item ({request:?})"
            );
            assert_eq!(shared[0].item.content, content, "{ns}: its own content");
            assert_eq!(&shared[0].item.namespace, ns);
        }
    }
    s.delete(&b, "shared").await.unwrap();
    expect_err(s.get(&b, "shared").await, ErrorKind::NotFound);
    let a = s.get(&ctx.ns, "shared").await.unwrap();
    assert_eq!(
        (a.content.as_str(), a.version),
        ("owned by tenant alpha", 1)
    );
    let hits = s
        .search(&ctx.ns, &SearchRequest::vector(axis(0)))
        .await
        .unwrap();
    assert_eq!(
        hit_ids(&hits),
        ["shared"],
        "alpha's vector survived beta's delete"
    );
    // Re-creating beta's id starts a new item at version 1, whatever alpha holds.
    let again = s.upsert(fact(&b, "shared", "beta anew")).await.unwrap();
    assert_eq!(again.version, 1);
}

/// 6. Delete then get is NotFound; a second delete is NotFound.
pub async fn crud_delete_twice_is_not_found(ctx: Ctx) {
    let s = &ctx.store;
    s.upsert(fact(&ctx.ns, "a", "alpha")).await.unwrap();
    s.upsert(fact(&ctx.ns, "b", "beta")).await.unwrap();
    expect_err(s.delete(&ctx.other_ns("x"), "a").await, ErrorKind::NotFound);
    s.delete(&ctx.ns, "a").await.unwrap();
    expect_err(s.get(&ctx.ns, "a").await, ErrorKind::NotFound);
    expect_err(s.delete(&ctx.ns, "a").await, ErrorKind::NotFound);
    assert_eq!(s.count(&ctx.ns, CountOptions::all()).await.unwrap(), 1);
}

/// 7. File and server stores keep items, vectors and the model pin across close and reopen; a closed store answers Unavailable.
pub async fn crud_persists_across_reopen(ctx: Ctx) {
    let s = ctx.store.clone();
    let a = s
        .upsert(fact(&ctx.ns, "a", "persistent alpha").with_embedding(MODEL, axis(2)))
        .await
        .unwrap();
    let b = s
        .upsert(fact(&ctx.ns, "b", "persistent beta"))
        .await
        .unwrap();
    s.close().await.unwrap();
    expect_err(s.get(&ctx.ns, "a").await, ErrorKind::Unavailable);
    if !s.capabilities().persistent {
        return;
    }
    drop(s);
    let reopened = ctx.harness.open().await.expect("reopen");
    assert_eq!(reopened.get(&ctx.ns, "a").await.unwrap(), a);
    assert_eq!(reopened.get(&ctx.ns, "b").await.unwrap(), b);
    let pin = reopened.embedding_pin().await.unwrap().expect("a pin");
    assert_eq!((pin.model.as_str(), pin.dim), (MODEL, axis(0).len()));
    let hits = reopened
        .search(&ctx.ns, &SearchRequest::vector(axis(2)))
        .await
        .unwrap();
    assert_eq!(hit_ids(&hits), ["a"]);
    let kw = reopened
        .search(&ctx.ns, &SearchRequest::keyword("beta"))
        .await
        .unwrap();
    assert_eq!(hit_ids(&kw), ["b"]);
    reopened.close().await.unwrap();
}

/// Bad input is InvalidInput naming the field and the limit, and never alters stored data.
pub async fn crud_invalid_input_names_field(ctx: Ctx) {
    let s = &ctx.store;
    let good = s.upsert(fact(&ctx.ns, "a", "original")).await.unwrap();
    let cases: Vec<(MemoryItem, &str)> = vec![
        (fact(&ctx.ns, "a", "   "), "content"),
        (fact(&ctx.ns, "a", "x").with_importance(2.0), "importance"),
        (
            fact(&ctx.ns, "a", "x").with_confidence(f32::NAN),
            "confidence",
        ),
        (fact(&ctx.ns, "", "x"), "id"),
        (fact("", "a", "x"), "namespace"),
        (fact(&ctx.ns, &"i".repeat(300), "x"), "256"),
        (fact(&ctx.ns, "a", &"c".repeat((1 << 20) + 1)), "content"),
        (fact(&ctx.ns, "a", "x").with_tag(""), "tags"),
    ];
    for (item, needle) in cases {
        let msg = expect_err(s.upsert(item).await, ErrorKind::InvalidInput);
        assert!(msg.contains(needle), "error {msg:?} should name {needle:?}");
    }
    let msg = expect_err(
        s.search(&ctx.ns, &SearchRequest::recent().with_limit(0))
            .await,
        ErrorKind::InvalidInput,
    );
    assert!(msg.contains("limit"), "{msg}");
    let msg = expect_err(
        s.search(&ctx.ns, &SearchRequest::recent().with_cursor("garbage"))
            .await,
        ErrorKind::InvalidInput,
    );
    assert!(msg.contains("cursor"), "{msg}");
    assert_eq!(s.get(&ctx.ns, "a").await.unwrap(), good);
}

/// Only draft->accepted, draft->discard and accepted->discard are legal status moves; others are InvalidInput.
pub async fn crud_status_transitions(ctx: Ctx) {
    let s = &ctx.store;
    let draft = |id: &str, st: Status| fact(&ctx.ns, id, "x").with_status(st);
    s.upsert(draft("d", Status::Draft)).await.unwrap();
    s.upsert(draft("d", Status::Accepted)).await.unwrap();
    expect_err(
        s.upsert(draft("d", Status::Draft)).await,
        ErrorKind::InvalidInput,
    );
    s.upsert(draft("d", Status::Discard)).await.unwrap();
    expect_err(
        s.upsert(draft("d", Status::Accepted)).await,
        ErrorKind::InvalidInput,
    );
    expect_err(
        s.upsert(draft("d", Status::Draft)).await,
        ErrorKind::InvalidInput,
    );
    s.upsert(draft("e", Status::Draft)).await.unwrap();
    s.upsert(draft("e", Status::Discard)).await.unwrap();
    let d = s.get(&ctx.ns, "d").await.unwrap();
    assert_eq!((d.status, d.version), (Status::Discard, 3));
}

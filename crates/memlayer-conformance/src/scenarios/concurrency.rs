use memlayer_store::types::MemoryItem;
use memlayer_store::{CountOptions, ErrorKind, SearchRequest};

use crate::{Ctx, MODEL, axis, expect_err, fact};

/// 31. 8 tasks x 25 mixed operations finish with no error but NotFound on racing deletes, and final counts are exact.
pub async fn concurrency_mixed_operations(ctx: Ctx) {
    let s = ctx.store.clone();
    for i in 0..5 {
        s.upsert(fact(&ctx.ns, &format!("shared{i}"), "contested words"))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for t in 0..8usize {
        let s = s.clone();
        let ns = ctx.ns.clone();
        tasks.push(tokio::spawn(async move {
            let mut shared_deleted = 0u64;
            let mut own_live = 0u64;
            for i in 0..25usize {
                let id = format!("t{t}-{i}");
                match i % 5 {
                    0 | 1 => {
                        let item = fact(&ns, &id, &format!("task {t} op {i} words"))
                            .with_embedding(MODEL, axis(t + i));
                        s.upsert(item).await.unwrap();
                        own_live += 1;
                    }
                    2 => {
                        let prev = format!("t{t}-{}", i - 1);
                        assert_eq!(s.get(&ns, &prev).await.unwrap().id, prev);
                        s.search(&ns, &SearchRequest::hybrid("words").with_vector(axis(t)))
                            .await
                            .unwrap();
                    }
                    3 => {
                        let prev = format!("t{t}-{}", i - 3);
                        s.delete(&ns, &prev).await.unwrap();
                        own_live -= 1;
                    }
                    _ => match s.delete(&ns, &format!("shared{}", (i / 5 + t) % 5)).await {
                        Ok(()) => shared_deleted += 1,
                        Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound, "{e}"),
                    },
                }
            }
            (own_live, shared_deleted)
        }));
    }
    let mut own = 0;
    let mut shared_deleted = 0;
    for t in tasks {
        let (o, d) = t.await.unwrap();
        own += o;
        shared_deleted += d;
    }
    assert_eq!(own, 8 * 5, "each task keeps 10 upserts minus 5 deletes");
    let shared_left = s.count(&ctx.ns, CountOptions::all()).await.unwrap() - own;
    assert_eq!(
        shared_left + shared_deleted,
        5,
        "each shared id deleted at most once"
    );
    assert_eq!(
        s.count(&ctx.ns, CountOptions::live()).await.unwrap(),
        own + shared_left
    );
}

/// 32. 16 concurrent upserts of one id end with version 17 (Conflicts retried), never a silent loss.
pub async fn concurrency_same_id_no_lost_update(ctx: Ctx) {
    let s = ctx.store.clone();
    s.upsert(fact(&ctx.ns, "hot", "v0")).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let s = s.clone();
        let ns = ctx.ns.clone();
        tasks.push(tokio::spawn(async move {
            let mut attempts = 0;
            loop {
                attempts += 1;
                match s.upsert(fact(&ns, "hot", &format!("writer {t}"))).await {
                    Ok(stored) => return stored.version,
                    Err(e) if e.kind() == ErrorKind::Conflict && attempts < 100 => {
                        tokio::task::yield_now().await;
                    }
                    Err(e) => panic!("upsert failed: {e}"),
                }
            }
        }));
    }
    let mut versions = Vec::new();
    for t in tasks {
        versions.push(t.await.unwrap());
    }
    versions.sort_unstable();
    assert_eq!(
        versions,
        (2..=17).collect::<Vec<u64>>(),
        "every write got its own version"
    );
    assert_eq!(s.get(&ctx.ns, "hot").await.unwrap().version, 17);
}

/// 33. A batch upsert containing one invalid item stores none of the batch.
pub async fn batch_with_invalid_item_stores_none(ctx: Ctx) {
    let s = &ctx.store;
    s.upsert(fact(&ctx.ns, "existing", "before")).await.unwrap();
    let mut batch: Vec<MemoryItem> = (0..20)
        .map(|i| fact(&ctx.ns, &format!("b{i}"), "batch words").with_embedding(MODEL, axis(i)))
        .collect();
    batch.push(fact(&ctx.ns, "existing", "after"));
    batch.push(fact(&ctx.ns, "bad", "x").with_importance(7.0));
    expect_err(s.upsert_many(batch.clone()).await, ErrorKind::InvalidInput);
    // A wrong dimension late in the batch: the pin check must roll back the earlier rows too.
    let mut wrong_dim = batch[..21].to_vec();
    wrong_dim.push(fact(&ctx.ns, "dim", "x").with_embedding(MODEL, vec![1.0; 3]));
    expect_err(s.upsert_many(wrong_dim).await, ErrorKind::InvalidInput);
    assert_eq!(s.count(&ctx.ns, CountOptions::all()).await.unwrap(), 1);
    assert_eq!(s.get(&ctx.ns, "existing").await.unwrap().content, "before");
    assert_eq!(s.get(&ctx.ns, "existing").await.unwrap().version, 1);
    let hits = s
        .search(&ctx.ns, &SearchRequest::keyword("batch"))
        .await
        .unwrap();
    assert!(hits.hits.is_empty());
    // The same batch without the bad item goes in whole.
    batch.pop();
    let stored = s.upsert_many(batch).await.unwrap();
    assert_eq!(stored.len(), 21);
    assert_eq!(s.count(&ctx.ns, CountOptions::live()).await.unwrap(), 21);
    assert_eq!(s.get(&ctx.ns, "existing").await.unwrap().version, 2);
}

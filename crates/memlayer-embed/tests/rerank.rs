//! The rerank stage: the `/rerank` HTTP client against a local server speaking the common
//! JSON shape, and the candle cross-encoder on a tiny model generated here. No real
//! cross-encoder can be fetched on these machines, so quality is not measured by these tests;
//! they prove the plumbing (`docs/decisions/0008-conversation-recall.md`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

#[cfg(feature = "openai")]
use std::net::SocketAddr;

#[cfg(feature = "openai")]
use axum::Json;
#[cfg(feature = "openai")]
use axum::routing::post;
#[cfg(feature = "openai")]
use memlayer_embed::{HttpReranker, HttpRerankerConfig};
#[cfg(feature = "openai")]
use memlayer_embed::{Reranker, rerank};
#[cfg(feature = "openai")]
use memlayer_store::types::{Kind, MemoryItem};
#[cfg(feature = "openai")]
use memlayer_store::{ErrorKind, MemoryStore, SearchRequest};
#[cfg(feature = "openai")]
use serde_json::{Value, json};

#[cfg(feature = "openai")]
/// Scores each document by the query words it contains, answering in reverse index order
/// with `top_n` respected, as real endpoints sort by score and may reorder.
async fn fake_rerank(Json(body): Json<Value>) -> Json<Value> {
    let query = body["query"].as_str().unwrap_or_default().to_lowercase();
    let words: Vec<&str> = query.split_whitespace().collect();
    let docs = body["documents"].as_array().cloned().unwrap_or_default();
    let mut results: Vec<Value> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let d = d.as_str().unwrap_or_default().to_lowercase();
            let s = words.iter().filter(|w| d.contains(*w)).count() as f64;
            json!({"index": i, "relevance_score": s})
        })
        .collect();
    results.reverse();
    Json(json!({"model": body["model"], "results": results}))
}

#[cfg(feature = "openai")]
async fn server(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[cfg(feature = "openai")]
#[tokio::test]
async fn http_reranker_reorders_a_real_search() {
    let addr = server(axum::Router::new().route("/rerank", post(fake_rerank))).await;
    let reranker = HttpReranker::new(HttpRerankerConfig::new(
        format!("http://{addr}/rerank"),
        "fake-reranker",
    ))
    .unwrap();
    let store = memlayer_store_memory::InMemoryStore::new();
    for (id, text) in [
        ("a", "the office is in lyon"),
        ("b", "alice moved the office to berlin in may"),
        ("c", "berlin is cold in may"),
    ] {
        store
            .upsert(MemoryItem::new("ns", Kind::Fact, text).with_id(id))
            .await
            .unwrap();
    }
    let query = "office berlin may";
    let found = store
        .search("ns", &SearchRequest::keyword("office"))
        .await
        .unwrap();
    assert_eq!(
        found.reranked_by, None,
        "plain search says it was not reranked"
    );
    let out = rerank(&reranker, query, found, 10).await.unwrap();
    let ids: Vec<&str> = out.hits.iter().map(|h| h.item.id.as_str()).collect();
    assert_eq!(ids, ["b", "a"]);
    assert_eq!(out.hits[0].score, 3.0);
    assert!(
        out.hits[0].keyword_score.is_some(),
        "retrieval's scores stay"
    );
    assert_eq!(out.reranked_by.as_deref(), Some("fake-reranker"));
}

#[cfg(feature = "openai")]
#[tokio::test]
async fn http_reranker_errors_are_typed() {
    let app = axum::Router::new()
        .route(
            "/down",
            post(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "busy") }),
        )
        .route(
            "/short",
            post(|| async { Json(json!({"results": [{"index": 0, "relevance_score": 1.0}]})) }),
        )
        .route(
            "/wild",
            post(|| async { Json(json!({"results": [{"index": 7, "relevance_score": 1.0}]})) }),
        );
    let addr = server(app).await;
    let docs = vec!["x".to_owned(), "y".to_owned()];
    let client = |path: &str| {
        HttpReranker::new(HttpRerankerConfig::new(format!("http://{addr}{path}"), "m")).unwrap()
    };
    let e = client("/down").score("q", &docs).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    let e = client("/short").score("q", &docs).await.unwrap_err();
    assert!(e.to_string().contains("no score for document 1"), "{e}");
    let e = client("/wild").score("q", &docs).await.unwrap_err();
    assert!(e.to_string().contains("index 7 is out of range"), "{e}");
}

#[cfg(feature = "local-minilm")]
mod cross_encoder {
    use candle_core::{DType, Device};
    use candle_nn::{VarBuilder, VarMap, linear};
    use candle_transformers::models::bert::{BertModel, Config};
    use memlayer_embed::CrossEncoder;
    use memlayer_embed::{Reranker, rerank};
    use memlayer_store::types::{Kind, MemoryItem};
    use memlayer_store::{ErrorKind, MemoryStore, SearchRequest};
    use serde_json::json;

    const WORDS: [&str; 12] = [
        "tea", "coffee", "office", "berlin", "lyon", "alice", "bob", "is", "in", "the", "may",
        "cold",
    ];

    /// Writes a two-layer BERT cross-encoder with random weights, its config and a word-level
    /// tokenizer into `dir`, named as the hub's checkpoints name them.
    fn tiny_model(dir: &std::path::Path, with_classifier: bool) {
        let mut vocab = serde_json::Map::new();
        for (i, t) in ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
            .iter()
            .chain(WORDS.iter())
            .enumerate()
        {
            vocab.insert((*t).to_owned(), json!(i));
        }
        let special = |id: usize, t: &str| json!({"id": id, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true});
        let tok = |t: &str, ty: u32| json!({"SpecialToken": {"id": t, "type_id": ty}});
        let seq = |s: &str, ty: u32| json!({"Sequence": {"id": s, "type_id": ty}});
        let tokenizer = json!({
            "version": "1.0", "truncation": null, "padding": null,
            "added_tokens": [special(0, "[PAD]"), special(1, "[UNK]"), special(2, "[CLS]"), special(3, "[SEP]")],
            "normalizer": {"type": "Lowercase"},
            "pre_tokenizer": {"type": "Whitespace"},
            "post_processor": {"type": "TemplateProcessing",
                "single": [tok("[CLS]", 0), seq("A", 0), tok("[SEP]", 0)],
                "pair": [tok("[CLS]", 0), seq("A", 0), tok("[SEP]", 0), seq("B", 1), tok("[SEP]", 1)],
                "special_tokens": {
                    "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                    "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
            "decoder": null,
            "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
        });
        std::fs::write(dir.join("tokenizer.json"), tokenizer.to_string()).unwrap();
        let config = json!({
            "vocab_size": 4 + WORDS.len(), "hidden_size": 16, "num_hidden_layers": 2,
            "num_attention_heads": 2, "intermediate_size": 32, "hidden_act": "gelu",
            "hidden_dropout_prob": 0.0, "max_position_embeddings": 64, "type_vocab_size": 2,
            "initializer_range": 0.02, "layer_norm_eps": 1e-12, "pad_token_id": 0,
            "position_embedding_type": "absolute", "use_cache": false,
            "classifier_dropout": null, "model_type": "bert"
        });
        std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
        let parsed: Config = serde_json::from_value(config).unwrap();
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        BertModel::load(vb.pp("bert"), &parsed).unwrap();
        linear(16, 16, vb.pp("bert.pooler.dense")).unwrap();
        if with_classifier {
            linear(16, 1, vb.pp("classifier")).unwrap();
        }
        // Random init is small; widen the head so that scores differ visibly.
        if with_classifier {
            let data = varmap.data().lock().unwrap();
            let w = data.get("classifier.weight").unwrap();
            w.set(&(w.as_tensor() * 50.0).unwrap()).unwrap();
        }
        varmap.save(dir.join("model.safetensors")).unwrap();
    }

    #[tokio::test]
    async fn scores_are_per_pair_whatever_the_batch() {
        let dir = tempfile::tempdir().unwrap();
        tiny_model(dir.path(), true);
        let ce = CrossEncoder::load(dir.path(), "tiny-cross-encoder").unwrap();
        let short = "alice is in berlin".to_owned();
        let long = "bob is in the office in lyon in may and the tea is cold".to_owned();
        let alone = ce
            .score("where is alice", std::slice::from_ref(&short))
            .await
            .unwrap();
        let batch = ce
            .score("where is alice", &[long.clone(), short.clone(), long])
            .await
            .unwrap();
        assert_eq!(batch.len(), 3);
        assert!(batch.iter().all(|s| s.is_finite()));
        // Padding must not change a pair's score: the short pair is padded in the batch.
        assert!((alone[0] - batch[1]).abs() < 1e-4, "{alone:?} vs {batch:?}");
        assert!((batch[0] - batch[2]).abs() < 1e-5);
        assert!(
            (batch[0] - batch[1]).abs() > 1e-4,
            "different pairs score differently"
        );
        // As a stage over a search.
        let store = memlayer_store_memory::InMemoryStore::new();
        for (id, text) in [
            ("s", short.as_str()),
            (
                "l",
                "bob is in the office in lyon in may and the tea is cold",
            ),
        ] {
            store
                .upsert(MemoryItem::new("ns", Kind::Fact, text).with_id(id))
                .await
                .unwrap();
        }
        let found = store
            .search("ns", &SearchRequest::keyword("alice office"))
            .await
            .unwrap();
        let out = rerank(&ce, "where is alice", found, 10).await.unwrap();
        assert_eq!(out.reranked_by.as_deref(), Some("tiny-cross-encoder"));
        let expected = if batch[1] > batch[0] { "s" } else { "l" };
        assert_eq!(out.hits[0].item.id, expected);
    }

    #[test]
    fn a_model_without_a_classifier_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        tiny_model(dir.path(), false);
        let e = CrossEncoder::load(dir.path(), "x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
        assert!(e.to_string().contains("classifier"), "{e}");
        let e = CrossEncoder::load(dir.path().join("nowhere"), "x").unwrap_err();
        assert!(e.to_string().contains("has no model.safetensors"), "{e}");
    }
}

//! The OpenAI-compatible client against a local HTTP server: batching, retries on 429 and 5xx,
//! timeouts and malformed answers.
#![cfg(feature = "openai")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use memlayer_embed::{Embedder, OpenAiConfig, OpenAiEmbedder};
use memlayer_store::ErrorKind;
use serde_json::{Value, json};

#[derive(Clone)]
struct Script {
    calls: Arc<AtomicUsize>,
    mode: &'static str,
}

fn vector_for(text: &str) -> Vec<f32> {
    vec![text.len() as f32, 1.0, 0.0]
}

async fn handler(State(s): State<Script>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let n = s.calls.fetch_add(1, Ordering::SeqCst);
    let inputs: Vec<String> = body["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let ok = |inputs: &[String]| {
        // Answer out of order with explicit indexes, as real servers may.
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .rev()
            .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": vector_for(t)}))
            .collect();
        Json(json!({"object": "list", "data": data, "model": body["model"]})).into_response()
    };
    match s.mode {
        "ok" => {
            assert_eq!(headers.get("authorization").unwrap(), "Bearer sk-test");
            assert_eq!(body["model"], "test-embed");
            ok(&inputs)
        }
        "429-then-ok" if n < 2 => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            "slow down",
        )
            .into_response(),
        "503-then-ok" if n < 1 => (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response(),
        "429-then-ok" | "503-then-ok" => ok(&inputs),
        "always-500" => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        "bad-request" => {
            (StatusCode::BAD_REQUEST, "{\"error\": \"input too long\"}").into_response()
        }
        "not-json" => (StatusCode::OK, "<html>proxy error</html>").into_response(),
        "short" => {
            Json(json!({"data": [{"index": 0, "embedding": [1.0, 2.0, 3.0]}]})).into_response()
        }
        "wrong-dim" => {
            let data: Vec<Value> = inputs
                .iter()
                .enumerate()
                .map(|(i, _)| json!({"index": i, "embedding": [1.0, 2.0]}))
                .collect();
            Json(json!({"data": data})).into_response()
        }
        "slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            ok(&inputs)
        }
        other => panic!("unknown mode {other}"),
    }
}

async fn serve(mode: &'static str) -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route("/v1/embeddings", post(handler))
        .with_state(Script {
            calls: calls.clone(),
            mode,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), calls)
}

fn client(base: &str) -> OpenAiEmbedder {
    OpenAiEmbedder::new(
        OpenAiConfig::new(base, "test-embed", 3)
            .api_key("sk-test")
            .batch_size(2)
            .retries(3, Duration::from_millis(10))
            .timeout(Duration::from_millis(500)),
    )
    .unwrap()
}

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| "x".repeat(i + 1)).collect()
}

#[tokio::test]
async fn batches_in_order() {
    let (base, calls) = serve("ok").await;
    let e = client(&base);
    assert_eq!((e.model_id(), e.dimension()), ("openai:test-embed", 3));
    let out = e.embed(&texts(5)).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3, "5 texts in batches of 2");
    for (i, v) in out.iter().enumerate() {
        assert_eq!(v, &vector_for(&"x".repeat(i + 1)));
    }
}

#[tokio::test]
async fn retries_429_and_5xx_then_succeeds() {
    for mode in ["429-then-ok", "503-then-ok"] {
        let (base, calls) = serve(mode).await;
        let out = client(&base).embed(&texts(1)).await.unwrap();
        assert_eq!(out, vec![vector_for("x")]);
        assert!(calls.load(Ordering::SeqCst) >= 2, "{mode} retried");
    }
}

#[tokio::test]
async fn gives_up_after_retries_with_a_temporary_error() {
    let (base, calls) = serve("always-500").await;
    let err = client(&base).embed(&texts(1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(err.is_temporary());
    assert_eq!(calls.load(Ordering::SeqCst), 4, "1 try + 3 retries");
    assert!(err.to_string().contains("500"), "{err}");
}

#[tokio::test]
async fn bad_answers_are_clear_errors() {
    for (mode, kind, needle) in [
        ("bad-request", ErrorKind::InvalidInput, "400"),
        ("not-json", ErrorKind::Unexpected, "JSON"),
        ("short", ErrorKind::Unexpected, "1 vectors for 2 inputs"),
        (
            "wrong-dim",
            ErrorKind::Unexpected,
            "dimension 2, expected 3",
        ),
    ] {
        let (base, calls) = serve(mode).await;
        let err = client(&base).embed(&texts(2)).await.unwrap_err();
        assert_eq!(err.kind(), kind, "{mode}: {err}");
        assert!(err.to_string().contains(needle), "{mode}: {err}");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "{mode} is not retried");
    }
}

#[tokio::test]
async fn times_out() {
    let (base, _) = serve("slow").await;
    let e = OpenAiEmbedder::new(
        OpenAiConfig::new(&base, "test-embed", 3)
            .retries(0, Duration::from_millis(1))
            .timeout(Duration::from_millis(200)),
    )
    .unwrap();
    let err = e.embed(&texts(1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
}

#[tokio::test]
async fn unreachable_endpoint_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let e = OpenAiEmbedder::new(
        OpenAiConfig::new(format!("http://{addr}/v1"), "m", 3).retries(1, Duration::from_millis(1)),
    )
    .unwrap();
    let err = e.embed(&texts(1)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

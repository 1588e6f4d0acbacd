//! The local models against reference values. They need the model files that
//! `cargo xtask services up models` unpacks; `cargo xtask ci` sets the directories and requires
//! them (`MEMLAYER_REQUIRE_BACKENDS` contains `models`), so CI never skips these tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

#[allow(dead_code)]
fn model_dir(var: &str) -> Option<std::path::PathBuf> {
    memlayer_conformance::env_or_skip(var, "models").map(Into::into)
}

#[cfg(feature = "local-minilm")]
#[tokio::test]
async fn minilm_reproduces_reference_cosines() {
    use memlayer_embed::{Embedder, MiniLmEmbedder};
    use memlayer_store::ranking::vector::cosine;
    let Some(dir) = model_dir("MEMLAYER_MINILM_DIR") else {
        return;
    };
    let e = MiniLmEmbedder::load(dir).unwrap();
    assert_eq!(e.dimension(), 384);
    let texts: Vec<String> = [
        "The weather is lovely today.",
        "It's so sunny outside!",
        "He drove to the stadium.",
    ]
    .map(String::from)
    .to_vec();
    let v = e.embed(&texts).await.unwrap();
    let sunny = cosine(&v[0], &v[1]);
    let stadium = cosine(&v[0], &v[2]);
    assert!(
        (sunny - 0.6660).abs() < 1e-4,
        "cos(weather, sunny) = {sunny}"
    );
    assert!(
        (stadium - 0.1046).abs() < 1e-4,
        "cos(weather, stadium) = {stadium}"
    );
    for x in &v {
        assert!((x.iter().map(|a| a * a).sum::<f32>() - 1.0).abs() < 1e-4);
    }
    // Batch composition must not change a vector (padding never enters the mean).
    let alone = e.embed(&texts[..1]).await.unwrap();
    assert!(cosine(&alone[0], &v[0]) > 0.99999);
}

#[cfg(feature = "static")]
#[tokio::test]
async fn static_model_loads_and_ranks_sensibly() {
    use memlayer_embed::{Embedder, StaticEmbedder};
    use memlayer_store::ranking::vector::cosine;
    let Some(dir) = model_dir("MEMLAYER_STATIC_MODEL_DIR") else {
        return;
    };
    let e = StaticEmbedder::load(dir, None).unwrap();
    assert!(e.dimension() > 0);
    let texts: Vec<String> = [
        "a cat sat on the mat",
        "a kitten sat on a rug",
        "stock markets fell sharply",
    ]
    .map(String::from)
    .to_vec();
    let v = e.embed(&texts).await.unwrap();
    assert!(v.iter().all(|x| x.len() == e.dimension()));
    assert!(cosine(&v[0], &v[1]) > cosine(&v[0], &v[2]));
}

//! Settings pgvector would refuse are refused at connect, naming the field and its limit,
//! before any server is contacted (the URL below points at no server).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use memlayer_store::ErrorKind;
use memlayer_store_postgres::{PostgresConfig, PostgresStore};

const NOWHERE: &str = "postgres://nobody@127.0.0.1:1/none";

async fn refused(config: PostgresConfig) -> String {
    match PostgresStore::connect_with(config).await {
        Ok(_) => panic!("a bad setting was accepted"),
        Err(e) => {
            assert_eq!(e.kind(), ErrorKind::ConfigInvalid, "{e}");
            e.to_string()
        }
    }
}

#[tokio::test]
async fn hnsw_settings_outside_pgvector_limits_are_refused() {
    let base = || PostgresConfig::new(NOWHERE);
    let msg = refused(base().hnsw(200, 400)).await;
    assert!(
        msg.contains("hnsw_m is 200") && msg.contains("2 to 100"),
        "{msg}"
    );
    let msg = refused(base().hnsw(32, 40)).await;
    assert!(
        msg.contains("hnsw_ef_construction is 40") && msg.contains("twice hnsw_m (32)"),
        "{msg}"
    );
    let msg = refused(base().hnsw(16, 2000)).await;
    assert!(msg.contains("4 to 1000"), "{msg}");
    let msg = refused(base().ef_search(5000)).await;
    assert!(
        msg.contains("ef_search is 5000") && msg.contains("1 to 1000"),
        "{msg}"
    );
}

#[tokio::test]
async fn good_hnsw_settings_get_as_far_as_the_server() {
    // With valid settings the error is the missing server, not the configuration.
    let mut config = PostgresConfig::new(NOWHERE).hnsw(32, 200).ef_search(400);
    config.connect_timeout = std::time::Duration::from_millis(500);
    match PostgresStore::connect_with(config).await {
        Ok(_) => panic!("connected to nothing"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}"),
    }
}

#[test]
fn ef_search_grows_with_the_graph() {
    use memlayer_store_postgres::ef_search_at;
    assert_eq!(ef_search_at(0.0), 100);
    assert_eq!(
        ef_search_at(-1.0),
        100,
        "reltuples of a table never analysed"
    );
    assert_eq!(ef_search_at(f64::NAN), 100);
    assert_eq!(ef_search_at(10_000.0), 100);
    assert_eq!(ef_search_at(100_000.0), 100);
    assert_eq!(ef_search_at(300_000.0), 148);
    assert_eq!(ef_search_at(1_000_000.0), 200);
    assert_eq!(ef_search_at(50_000_000.0), 200);
    let mut last = 100;
    for n in (100_000..=1_000_000).step_by(50_000) {
        let ef = ef_search_at(n as f64);
        assert!(ef >= last, "{ef} at {n} after {last}");
        last = ef;
    }
}

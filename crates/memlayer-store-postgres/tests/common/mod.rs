//! Helpers shared by the Postgres integration tests.
#![allow(dead_code)] // each test binary uses its own part
#![allow(clippy::unwrap_used)] // test code

/// The variable's value; when it is unset the test is skipped, unless
/// `MEMLAYER_REQUIRE_BACKENDS` requires postgres, which makes that a failure.
pub fn env(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) => Some(v),
        Err(_) => {
            assert!(
                !memlayer_conformance::is_required("postgres"),
                "{var} is unset but postgres is required (cargo xtask services up postgres)"
            );
            eprintln!("skipping postgres: set {var} (cargo xtask services up postgres)");
            None
        }
    }
}

/// The server's URL (`MEMLAYER_POSTGRES_URL`), as [`env`].
pub fn url() -> Option<String> {
    env("MEMLAYER_POSTGRES_URL")
}

/// A plain connection to the server, beside the store's pool.
pub async fn sql(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

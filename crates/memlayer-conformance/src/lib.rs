#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
// A test library: assertions are how scenarios report failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::io::Write;
use std::sync::Arc;

use async_trait::async_trait;
use memlayer_store::DynStore;

pub mod faults;
mod fixtures;
pub mod scenarios;

pub use fixtures::*;
#[doc(hidden)]
pub use tokio;

/// Opens the store under test, as many times as a scenario asks (to test reopening).
#[async_trait]
pub trait Harness: Send + Sync + 'static {
    /// Opens (or reopens, at the same place) the store; `Err` says why it is unavailable.
    async fn open(&self) -> Result<DynStore, String>;

    /// Removes what the test left on a server after a passing scenario (a failing one keeps
    /// its data for inspection). The default leaves everything.
    async fn cleanup(&self) {}
}

/// A harness from an async closure.
pub struct FnHarness<F>(F);

impl<F> std::fmt::Debug for FnHarness<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FnHarness")
    }
}

impl<F, Fut> FnHarness<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<DynStore, String>> + Send,
{
    /// Wraps `f`.
    pub fn new(f: F) -> Self {
        FnHarness(f)
    }
}

#[async_trait]
impl<F, Fut> Harness for FnHarness<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<DynStore, String>> + Send,
{
    async fn open(&self) -> Result<DynStore, String> {
        (self.0)().await
    }
}

type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send>>;
type OpenScope = Box<dyn Fn(String, String) -> BoxFuture<Result<DynStore, String>> + Send + Sync>;
type DropScope = Box<dyn Fn(String, String) -> BoxFuture<()> + Send + Sync>;

/// The harness of a backend on a server named by an environment variable (Postgres, Redis,
/// Chroma): each test gets its own scope there (a schema, a key prefix, a collection prefix),
/// opened from the URL and the scope, and dropped after a passing test.
pub struct ServerHarness {
    var: &'static str,
    service: &'static str,
    scope: String,
    open: OpenScope,
    drop_scope: Option<DropScope>,
}

impl std::fmt::Debug for ServerHarness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHarness")
            .field("var", &self.var)
            .field("scope", &self.scope)
            .finish()
    }
}

impl ServerHarness {
    /// A harness reading the server's URL from `var` (set by `cargo xtask services up
    /// <service>`), opening the store at `scope` with `open(url, scope)`.
    pub fn new<F, Fut>(var: &'static str, service: &'static str, scope: String, open: F) -> Self
    where
        F: Fn(String, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<DynStore, String>> + Send + 'static,
    {
        ServerHarness {
            var,
            service,
            scope,
            open: Box::new(move |url, scope| Box::pin(open(url, scope))),
            drop_scope: None,
        }
    }

    /// Drops the scope after a passing test with `drop(url, scope)`.
    #[must_use]
    pub fn dropping<F, Fut>(mut self, drop: F) -> Self
    where
        F: Fn(String, String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.drop_scope = Some(Box::new(move |url, scope| Box::pin(drop(url, scope))));
        self
    }
}

#[async_trait]
impl Harness for ServerHarness {
    async fn open(&self) -> Result<DynStore, String> {
        let url = std::env::var(self.var).map_err(|_| {
            format!(
                "set {} (cargo xtask services up {})",
                self.var, self.service
            )
        })?;
        (self.open)(url, self.scope.clone()).await
    }

    async fn cleanup(&self) {
        if let (Ok(url), Some(drop_scope)) = (std::env::var(self.var), &self.drop_scope) {
            drop_scope(url, self.scope.clone()).await;
        }
    }
}

/// What a scenario gets: the store, a namespace no other test uses, and the harness.
#[derive(Clone)]
pub struct Ctx {
    /// The store under test.
    pub store: DynStore,
    /// This scenario's namespace.
    pub ns: String,
    /// The harness, to reopen the store.
    pub harness: Arc<dyn Harness>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("store", &self.store)
            .field("ns", &self.ns)
            .finish()
    }
}

impl Ctx {
    /// Another namespace private to this scenario.
    pub fn other_ns(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.ns)
    }
}

/// One scenario of the suite: its name, the capabilities it needs, and the contract it checks.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// The test name, `<area>_<case>`.
    pub name: &'static str,
    /// Capability flags that must be on (see `Capabilities::flags`).
    pub requires: &'static [&'static str],
    /// The contract sentence it checks.
    pub contract: &'static str,
}

/// Whether `MEMLAYER_REQUIRE_BACKENDS` names `backend` (or `all`).
pub fn is_required(backend: &str) -> bool {
    std::env::var("MEMLAYER_REQUIRE_BACKENDS").is_ok_and(|v| {
        v.split(|c: char| c == ',' || c.is_whitespace())
            .any(|b| b == backend || b == "all")
    })
}

/// The value of the environment variable `var`, which a test of `service` needs.
///
/// The one skip policy of the workspace's tests: when `var` is unset, a test may skip (and
/// says so on standard error, naming the variable and the command that provides it), unless
/// `MEMLAYER_REQUIRE_BACKENDS` names `service` or `all`, as CI's does; then it fails, so CI
/// never passes by skipping.
///
/// # Panics
/// When `var` is unset and `service` is required.
pub fn env_or_skip(var: &str, service: &str) -> Option<String> {
    if let Ok(value) = std::env::var(var) {
        return Some(value);
    }
    assert!(
        !is_required(service),
        "{var} is unset but {service} is required by MEMLAYER_REQUIRE_BACKENDS; \
         run `cargo xtask services up {service}` and export what it prints"
    );
    eprintln!("skipping: {var} is unset (`cargo xtask services up {service}` sets it)");
    None
}

fn record(backend: &str, scenario: &str, outcome: &str, why: &str) {
    if let Ok(path) = std::env::var("MEMLAYER_CONFORMANCE_LOG")
        && let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        // One write per record: appends of one write are atomic, so parallel tests never
        // interleave their lines.
        let line = format!("{backend}\t{scenario}\t{outcome}\t{why}\n");
        let _ = f.write_all(line.as_bytes());
    }
}

/// Runs one scenario on a fresh runtime; what the `suite!` tests call.
pub fn run<H, F, Fut>(
    backend: &'static str,
    scenario: &'static str,
    make: impl FnOnce() -> H,
    body: F,
) where
    H: Harness,
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let requires = scenarios::SCENARIOS
        .iter()
        .find(|s| s.name == scenario)
        .map_or(&[][..], |s| s.requires);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        let harness: Arc<dyn Harness> = Arc::new(make());
        let store = match harness.open().await {
            Ok(store) => store,
            Err(reason) => {
                if is_required(backend) {
                    panic!("{backend} is required by MEMLAYER_REQUIRE_BACKENDS but unavailable: {reason}");
                }
                eprintln!("skipping {backend}: {reason}");
                record(backend, scenario, "unavailable", &reason);
                return;
            }
        };
        let caps = store.capabilities();
        if let Some(off) = requires.iter().find(|c| !caps.has(c)) {
            eprintln!("SKIPPED {backend}::{scenario}: capability {off} is off");
            record(backend, scenario, "skipped", off);
            return;
        }
        let ns = format!("t-{scenario}-{}", uuid::Uuid::now_v7().simple());
        body(Ctx {
            store,
            ns,
            harness: harness.clone(),
        })
        .await;
        record(backend, scenario, "passed", "");
        harness.cleanup().await;
    });
}

/// Expands the whole scenario list into one `#[test]` per scenario inside `mod $backend`.
///
/// `$make` is called once per test and returns a [`Harness`].
#[macro_export]
macro_rules! suite {
    ($backend:ident, $make:expr) => {
        #[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $crate::__for_each_scenario!(tests $backend, $make);
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __emit_test {
    ($backend:ident, $make:expr, $name:ident) => {
        #[test]
        fn $name() {
            $crate::run(stringify!($backend), stringify!($name), $make, |ctx| {
                $crate::scenarios::$name(ctx)
            });
        }
    };
}

//! Who may touch which namespaces, and do what: static bearer tokens and the store's API keys,
//! both kept only as SHA-256 digests and compared in constant time (`docs/security.md`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use memlayer::{DynStore, MemoryItem, Timestamp};
use sha2::{Digest, Sha256};

use crate::ApiError;
use crate::keys::{self, Grant, KeyScope, Keys};

/// One configured token: the digest of its secret, the namespaces it may touch and a name
/// for metrics (`static-N`, by position, since a token line has no name).
#[derive(Clone)]
struct Token {
    digest: [u8; 32],
    /// `None` for every namespace (`*`).
    namespaces: Option<Vec<String>>,
    name: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The digest stays out of logs too: it is as good as the token against this server.
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("namespaces", &self.namespaces)
            .finish_non_exhaustive()
    }
}

/// Who may touch which namespaces.
#[derive(Clone, Debug, Default)]
pub enum Auth {
    /// No check at all: for local use, chosen explicitly (loopback, or `--no-auth`).
    #[default]
    Disabled,
    /// Bearer tokens and the namespaces each may touch.
    Tokens(Vec<TokenEntry>),
    /// API keys kept in the store (`memlayer keys`), and any static tokens beside them.
    Keys {
        /// Static tokens, checked first.
        tokens: Vec<TokenEntry>,
        /// The store's keys, read through a short cache.
        ring: Arc<KeyRing>,
    },
}

/// A configured bearer token (its secret is never kept, only its digest).
#[derive(Clone, Debug)]
pub struct TokenEntry(Token);

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The request's bearer secret: the `Authorization` scheme matches case-insensitively
/// (RFC 9110 section 11.1).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, secret) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| secret.trim())
        .filter(|s| !s.is_empty())
}

/// How long a server trusts what it read of a key: a revocation reaches every server within
/// this time (plus one store read), see `docs/security.md`.
pub const KEY_CACHE: Duration = Duration::from_secs(2);

/// How often a server records a key's use (`last_used_at`), at most.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Beyond this many cached key ids, the cache starts afresh, so made-up ids cannot grow it.
const CACHE_CAP: usize = 10_000;

/// The store's keys as a server checks them: each key read at most once per [`KEY_CACHE`].
pub struct KeyRing {
    keys: Keys,
    cache: Mutex<HashMap<String, (Instant, Option<MemoryItem>)>>,
    touched: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing").finish_non_exhaustive()
    }
}

impl KeyRing {
    fn new(keys: Keys) -> Self {
        KeyRing {
            keys,
            cache: Mutex::new(HashMap::new()),
            touched: Mutex::new(HashMap::new()),
        }
    }

    /// The cached read of key `id`, if fresh.
    fn cached(&self, id: &str) -> Option<Option<MemoryItem>> {
        let cache = self.cache.lock().ok()?;
        let (at, item) = cache.get(id)?;
        (at.elapsed() < KEY_CACHE).then(|| item.clone())
    }

    async fn fetch(&self, id: &str) -> Result<Option<MemoryItem>, ApiError> {
        let item = self.keys.item_by_id(id).await.map_err(ApiError::from)?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_CAP {
                cache.clear();
            }
            cache.insert(id.to_owned(), (Instant::now(), item.clone()));
        }
        Ok(item)
    }

    async fn grant(&self, token: &str) -> Result<Option<Grant>, ApiError> {
        let Some(id) = keys::token_id(token) else {
            return Ok(None);
        };
        let now = Timestamp::now();
        let grant = match self.cached(id) {
            Some(item) => match item.as_ref().and_then(|i| keys::granted(i, token, now)) {
                Some(grant) => Some(grant),
                // A secret the cached read does not know may be a rotation's new one, so it
                // is read again: a refusal is never stale, only an acceptance can be.
                None => self
                    .fetch(id)
                    .await?
                    .and_then(|i| keys::granted(&i, token, now)),
            },
            None => self
                .fetch(id)
                .await?
                .and_then(|i| keys::granted(&i, token, now)),
        };
        if grant.is_some() && self.due(id) {
            let keys = self.keys.clone();
            let id = id.to_owned();
            tokio::spawn(async move {
                if let Err(e) = keys.touch(&id, now).await {
                    tracing::warn!(key = %id, error = %e, "recording a key's use failed");
                }
            });
        }
        Ok(grant)
    }

    /// Whether key `id`'s use is due to be recorded (and notes that it is being).
    fn due(&self, id: &str) -> bool {
        let Ok(mut touched) = self.touched.lock() else {
            return false;
        };
        if touched.len() >= CACHE_CAP {
            touched.clear();
        }
        match touched.get(id) {
            Some(at) if at.elapsed() < TOUCH_EVERY => false,
            _ => {
                touched.insert(id.to_owned(), Instant::now());
                true
            }
        }
    }
}

impl Auth {
    /// Parses `token=ns1,ns2;token2=*` (entries may also be separated by new lines, so a
    /// tokens file holds one per line; `#` starts a comment line). A `*` token has the admin
    /// scope; the others may read and write their namespaces.
    ///
    /// # Errors
    /// A message naming the malformed or repeated entry (by position, never by its secret).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut tokens: Vec<TokenEntry> = Vec::new();
        let entries = spec
            .split([';', '\n'])
            .map(str::trim)
            .filter(|e| !e.is_empty() && !e.starts_with('#'));
        for (n, entry) in entries.enumerate() {
            let position = n + 1;
            let (secret, namespaces) = entry.split_once('=').ok_or_else(|| {
                format!("token entry {position} is not token=namespace,namespace...")
            })?;
            let secret = secret.trim();
            let namespaces: Vec<String> = namespaces
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect();
            if secret.is_empty() || namespaces.is_empty() {
                return Err(format!(
                    "token entry {position} needs a token and at least one namespace"
                ));
            }
            if secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "token entry {position}: a token must not contain spaces or control characters"
                ));
            }
            let digest = digest(secret);
            if tokens
                .iter()
                .any(|t| keys::constant_time_eq(&t.0.digest, &digest))
            {
                return Err(format!(
                    "token entry {position} repeats an earlier token; give each token once"
                ));
            }
            let all = namespaces.iter().any(|n| n == "*");
            tokens.push(TokenEntry(Token {
                digest,
                namespaces: (!all).then_some(namespaces),
                name: format!("static-{position}"),
            }));
        }
        if tokens.is_empty() {
            return Err("no tokens given".into());
        }
        Ok(Auth::Tokens(tokens))
    }

    /// This authentication with the API keys of `store` accepted too.
    pub fn with_keys(self, store: DynStore) -> Self {
        let tokens = match self {
            Auth::Disabled => Vec::new(),
            Auth::Tokens(tokens) | Auth::Keys { tokens, .. } => tokens,
        };
        Auth::Keys {
            tokens,
            ring: Arc::new(KeyRing::new(Keys::new(store))),
        }
    }

    /// Whether requests must carry a token.
    pub fn is_enabled(&self) -> bool {
        !matches!(self, Auth::Disabled)
    }

    fn static_grant(tokens: &[TokenEntry], presented: &str) -> Option<Grant> {
        let presented = digest(presented);
        // Every entry is compared, so the time taken says nothing of which matched.
        let mut found: Option<&Token> = None;
        for t in tokens {
            if keys::constant_time_eq(&t.0.digest, &presented) {
                found = Some(&t.0);
            }
        }
        found.map(|t| Grant {
            namespaces: t.namespaces.clone(),
            scope: if t.namespaces.is_none() {
                KeyScope::Admin
            } else {
                KeyScope::Write
            },
            key: Some(t.name.clone()),
        })
    }

    /// What the request's credential is granted.
    ///
    /// # Errors
    /// 401 when authentication is on and the request carries no token, or one that is
    /// unknown, revoked or expired; the store's errors while reading a key.
    pub(crate) async fn grant(&self, headers: &HeaderMap) -> Result<Grant, ApiError> {
        let (tokens, ring) = match self {
            Auth::Disabled => return Ok(Grant::everything()),
            Auth::Tokens(tokens) => (tokens.as_slice(), None),
            Auth::Keys { tokens, ring } => (tokens.as_slice(), Some(ring)),
        };
        let presented = bearer(headers).ok_or_else(ApiError::unauthorized)?;
        if let Some(grant) = Self::static_grant(tokens, presented) {
            return Ok(grant);
        }
        match ring {
            Some(ring) => ring
                .grant(presented)
                .await?
                .ok_or_else(ApiError::unauthorized),
            None => Err(ApiError::unauthorized()),
        }
    }
}

impl Grant {
    /// Checks this grant may touch `namespace`.
    ///
    /// # Errors
    /// 403 outside its namespaces (and for memlayer's own namespaces).
    pub fn check(&self, namespace: &str) -> Result<(), ApiError> {
        if self.admits(namespace) {
            Ok(())
        } else {
            Err(ApiError::forbidden(namespace))
        }
    }

    /// Checks this grant has at least `needed`.
    ///
    /// # Errors
    /// 403 naming the scope needed.
    pub fn check_scope(&self, needed: KeyScope) -> Result<(), ApiError> {
        if self.scope >= needed {
            Ok(())
        } else {
            Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this needs a key with the {} scope; this one has {}",
                    needed.as_str(),
                    self.scope.as_str()
                ),
            ))
        }
    }

    /// The namespaces of `all` this grant may see.
    pub fn visible(&self, all: Vec<String>) -> Vec<String> {
        all.into_iter().filter(|n| self.admits(n)).collect()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Grant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        // The authentication layer puts the grant on every request it lets through.
        parts
            .extensions
            .get::<Grant>()
            .cloned()
            .ok_or_else(ApiError::unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("authorization", value.parse().unwrap());
        h
    }

    fn grant(auth: &Auth, h: &HeaderMap) -> Result<Grant, ApiError> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(auth.grant(h))
    }

    #[test]
    fn scheme_is_case_insensitive_and_scopes_hold() {
        let auth = Auth::parse("alpha-secret=a,b;root=*").unwrap();
        for value in [
            "Bearer alpha-secret",
            "bearer alpha-secret",
            "BEARER  alpha-secret",
        ] {
            let g = grant(&auth, &headers(value)).unwrap();
            assert_eq!(
                g.namespaces,
                Some(vec!["a".to_owned(), "b".to_owned()]),
                "{value}"
            );
            assert_eq!(g.scope, KeyScope::Write);
            assert_eq!(g.key.as_deref(), Some("static-1"));
        }
        let root = grant(&auth, &headers("Bearer root")).unwrap();
        assert_eq!(
            (root.namespaces.clone(), root.scope),
            (None, KeyScope::Admin)
        );
        assert!(grant(&auth, &headers("Basic alpha-secret")).is_err());
        assert!(grant(&auth, &headers("Bearer alpha")).is_err());
        assert!(grant(&auth, &HeaderMap::new()).is_err());
        let alpha = grant(&auth, &headers("Bearer alpha-secret")).unwrap();
        assert!(alpha.check("c").is_err() && alpha.check("a").is_ok());
        assert!(alpha.check_scope(KeyScope::Admin).is_err());
        assert!(root.check_scope(KeyScope::Admin).is_ok());
        assert!(root.check(crate::keys::KEYS_NAMESPACE).is_err());
    }

    #[test]
    fn malformed_and_repeated_entries_are_refused_without_echoing_secrets() {
        for spec in [
            "s3cret",
            "s3cret=",
            "=a",
            "s3 cret=a",
            "s3cret=a;s3cret=b",
            "",
        ] {
            let e = Auth::parse(spec).unwrap_err();
            assert!(
                !e.contains("s3cret") && !e.contains("s3 cret"),
                "{spec:?}: {e}"
            );
        }
        let file = "# team tokens\nalpha-secret=a\n\nroot=*\n";
        assert!(Auth::parse(file).unwrap().is_enabled());
    }
}

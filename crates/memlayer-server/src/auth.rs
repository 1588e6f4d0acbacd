//! Who may touch which namespaces: bearer tokens, kept only as SHA-256 digests and compared in
//! constant time (`docs/security.md`).

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::ApiError;

/// One configured token: the digest of its secret and the namespaces it may touch.
#[derive(Clone)]
struct Token {
    digest: [u8; 32],
    /// `None` for every namespace (`*`).
    namespaces: Option<Vec<String>>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The digest stays out of logs too: it is as good as the token against this server.
        f.debug_struct("Token")
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
}

/// A configured bearer token (its secret is never kept, only its digest).
#[derive(Clone, Debug)]
pub struct TokenEntry(Token);

fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Equality whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

impl Auth {
    /// Parses `token=ns1,ns2;token2=*` (entries may also be separated by new lines, so a
    /// tokens file holds one per line; `#` starts a comment line).
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
                .any(|t| constant_time_eq(&t.0.digest, &digest))
            {
                return Err(format!(
                    "token entry {position} repeats an earlier token; give each token once"
                ));
            }
            let all = namespaces.iter().any(|n| n == "*");
            tokens.push(TokenEntry(Token {
                digest,
                namespaces: (!all).then_some(namespaces),
            }));
        }
        if tokens.is_empty() {
            return Err("no tokens given".into());
        }
        Ok(Auth::Tokens(tokens))
    }

    /// Whether requests must carry a token.
    pub fn is_enabled(&self) -> bool {
        matches!(self, Auth::Tokens(_))
    }

    /// The namespaces the request's token may touch (`None` = all).
    ///
    /// # Errors
    /// 401 when tokens are configured and the request carries none or an unknown one.
    pub(crate) fn scope_of(&self, headers: &HeaderMap) -> Result<Option<Vec<String>>, ApiError> {
        match self {
            Auth::Disabled => Ok(None),
            Auth::Tokens(tokens) => {
                let presented = digest(bearer(headers).ok_or_else(ApiError::unauthorized)?);
                // Every entry is compared, so the time taken says nothing of which matched.
                let mut found: Option<&Token> = None;
                for t in tokens {
                    if constant_time_eq(&t.0.digest, &presented) {
                        found = Some(&t.0);
                    }
                }
                Ok(found.ok_or_else(ApiError::unauthorized)?.namespaces.clone())
            }
        }
    }

    /// Whether the request's token may touch every namespace (the admin scope, which
    /// `/metrics` needs when tokens are configured).
    ///
    /// # Errors
    /// 401 for a missing or unknown token, 403 for a token limited to some namespaces.
    pub(crate) fn check_admin(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match self.scope_of(headers)? {
            None => Ok(()),
            Some(_) => Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "forbidden",
                "this needs a token for every namespace (`*`)",
            )),
        }
    }

    /// Checks the request may touch `namespace`.
    ///
    /// # Errors
    /// 401 as [`Auth::scope_of`], 403 outside the token's namespaces.
    pub(crate) fn check(&self, headers: &HeaderMap, namespace: &str) -> Result<(), ApiError> {
        match self.scope_of(headers)? {
            None => Ok(()),
            Some(allowed) if allowed.iter().any(|n| n == namespace) => Ok(()),
            Some(_) => Err(ApiError::forbidden(namespace)),
        }
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

    #[test]
    fn scheme_is_case_insensitive_and_scopes_hold() {
        let auth = Auth::parse("alpha-secret=a,b;root=*").unwrap();
        for value in [
            "Bearer alpha-secret",
            "bearer alpha-secret",
            "BEARER  alpha-secret",
        ] {
            assert_eq!(
                auth.scope_of(&headers(value)).unwrap(),
                Some(vec!["a".to_owned(), "b".to_owned()]),
                "{value}"
            );
        }
        assert_eq!(auth.scope_of(&headers("Bearer root")).unwrap(), None);
        assert!(auth.scope_of(&headers("Basic alpha-secret")).is_err());
        assert!(auth.scope_of(&headers("Bearer alpha")).is_err());
        assert!(auth.scope_of(&HeaderMap::new()).is_err());
        assert!(auth.check(&headers("Bearer alpha-secret"), "c").is_err());
        assert!(auth.check_admin(&headers("Bearer alpha-secret")).is_err());
        assert!(auth.check_admin(&headers("Bearer root")).is_ok());
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

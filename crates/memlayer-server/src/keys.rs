//! API keys with a lifecycle, kept in the store beside the memories so that every server over
//! one engine sees the same keys (`docs/security.md`, "API keys").
//!
//! A key is one item in the reserved namespace [`KEYS_NAMESPACE`], its id the key's public id.
//! The secret itself is never stored: the item keeps SHA-256 digests (a 256-bit random secret
//! needs no slow hash), the current one and, after a rotation, the previous one until its
//! grace period ends. A token reads `mlk_<id>_<secret>`, so checking one is a read by id.

use std::time::Duration;

use memlayer::{
    DynStore, Error, ErrorKind, Filter, Kind, ListRequest, MemoryItem, Tier, Timestamp,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The namespace that holds the keys. Namespaces starting with [`RESERVED_PREFIX`] are refused
/// on every data route, so no tenant can read or write it through the API.
pub const KEYS_NAMESPACE: &str = "_memlayer.keys";

/// The prefix of namespaces memlayer keeps for itself.
pub const RESERVED_PREFIX: &str = "_memlayer.";

/// The kind of a key's item.
const KEY_KIND: &str = "api_key";

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyScope {
    /// Search and get, nothing else.
    Read,
    /// Read, and write memories.
    Write,
    /// Everything, in every namespace, and manage keys.
    Admin,
}

impl KeyScope {
    /// Parses `read`, `write` or `admin`.
    ///
    /// # Errors
    /// `InvalidInput` naming `scope`.
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "read" => Ok(KeyScope::Read),
            "write" => Ok(KeyScope::Write),
            "admin" => Ok(KeyScope::Admin),
            other => Err(Error::invalid(
                "scope",
                format!("scope {other:?} is not one of read, write, admin"),
            )),
        }
    }

    /// The scope's name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyScope::Read => "read",
            KeyScope::Write => "write",
            KeyScope::Admin => "admin",
        }
    }
}

/// One secret of a key: its digest, and the end of its validity once a rotation replaced it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Secret {
    digest: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<Timestamp>,
}

/// A key as stored (the item's `extra`).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Record {
    name: String,
    scope: KeyScope,
    /// Empty for an admin key (every namespace).
    namespaces: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<Timestamp>,
    secrets: Vec<Secret>,
}

/// What `keys list` shows of a key: never the secret, nor its digest.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeyInfo {
    /// The public id (the middle of the token).
    pub id: String,
    /// The name, for people and metrics.
    pub name: String,
    /// What it may do.
    pub scope: KeyScope,
    /// The namespaces it may touch; empty for an admin key, which may touch every one.
    pub namespaces: Vec<String>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When a server last accepted it (updated at most once a minute per server).
    pub last_used_at: Option<Timestamp>,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked.
    pub revoked_at: Option<Timestamp>,
    /// When the secret a rotation replaced stops working, while it still does.
    pub previous_valid_until: Option<Timestamp>,
}

/// A new key's settings.
#[derive(Clone, Debug)]
pub struct NewKey {
    /// A name, unique among the keys not revoked.
    pub name: String,
    /// What it may do.
    pub scope: KeyScope,
    /// The namespaces it may touch (ignored for an admin key).
    pub namespaces: Vec<String>,
    /// How long it lives; `None` for ever.
    pub expires_in: Option<Duration>,
}

/// What a presented token is granted: the namespaces, the scope and the key's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// `None` for every namespace.
    pub namespaces: Option<Vec<String>>,
    /// What it may do.
    pub scope: KeyScope,
    /// The key's name, for metrics (never its secret).
    pub key: Option<String>,
}

impl Grant {
    /// Everything, everywhere: a server without authentication.
    pub fn everything() -> Self {
        Grant {
            namespaces: None,
            scope: KeyScope::Admin,
            key: None,
        }
    }

    /// Whether this grant may touch `namespace`. No grant reaches a reserved namespace.
    pub fn admits(&self, namespace: &str) -> bool {
        !namespace.starts_with(RESERVED_PREFIX)
            && self
                .namespaces
                .as_ref()
                .is_none_or(|names| names.iter().any(|n| n == namespace))
    }
}

/// A key's parts as presented in a token.
fn split_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("mlk_")?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit());
    (id_ok && !secret.is_empty()).then_some((id, secret))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest_hex(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// Equality whose time does not depend on where the inputs differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_hex(bytes: usize) -> Result<String, Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| {
        Error::new(
            ErrorKind::Unexpected,
            format!("the system's random source failed: {e}"),
        )
    })?;
    Ok(hex(&buf))
}

/// Parses a span such as `90s`, `15m`, `12h`, `30d` or `2w`.
///
/// # Errors
/// `InvalidInput` naming `field`.
pub fn parse_span(field: &'static str, text: &str) -> Result<Duration, Error> {
    let text = text.trim();
    let bad = || {
        Error::invalid(
            field,
            format!("{field} {text:?} is not a span like 90s, 15m, 12h, 30d or 2w"),
        )
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    n.checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(bad)
}

/// The keys of one store: create, list, rotate, revoke, and check a presented token.
#[derive(Clone)]
pub struct Keys {
    store: DynStore,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys").finish_non_exhaustive()
    }
}

fn record_of(item: &MemoryItem) -> Result<Record, Error> {
    serde_json::from_value(Value::Object(item.metadata.extra.clone())).map_err(|e| {
        Error::new(
            ErrorKind::Unexpected,
            format!("key {} is not a key record: {e}", item.id),
        )
    })
}

fn info_of(item: &MemoryItem, record: &Record, now: Timestamp) -> KeyInfo {
    KeyInfo {
        id: item.id.clone(),
        name: record.name.clone(),
        scope: record.scope,
        namespaces: record.namespaces.clone(),
        created_at: item.created_at,
        last_used_at: item.last_accessed_at,
        expires_at: record.expires_at,
        revoked_at: record.revoked_at,
        previous_valid_until: record
            .secrets
            .iter()
            .filter_map(|s| s.until)
            .filter(|u| *u > now)
            .max(),
    }
}

fn check_namespaces(scope: KeyScope, namespaces: &[String]) -> Result<Vec<String>, Error> {
    if scope == KeyScope::Admin {
        return Ok(Vec::new());
    }
    let names: Vec<String> = namespaces
        .iter()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        return Err(Error::invalid(
            "namespace",
            "a read or write key needs at least one namespace",
        ));
    }
    for n in &names {
        if n == "*" {
            return Err(Error::invalid(
                "namespace",
                "`*` (every namespace) needs the admin scope",
            ));
        }
        if n.starts_with(RESERVED_PREFIX) {
            return Err(Error::invalid(
                "namespace",
                format!("namespaces starting with {RESERVED_PREFIX:?} are memlayer's own"),
            ));
        }
        memlayer::limits::check_namespace(n)?;
    }
    Ok(names)
}

impl Keys {
    /// The keys kept in `store`.
    pub fn new(store: DynStore) -> Self {
        Keys { store }
    }

    async fn item(&self, id_or_name: &str) -> Result<MemoryItem, Error> {
        match self.store.get(KEYS_NAMESPACE, id_or_name).await {
            Ok(item) => return Ok(item),
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            Err(_) => {}
        }
        let mut live = Vec::new();
        for item in self.items().await? {
            let record = record_of(&item)?;
            if record.name == id_or_name && record.revoked_at.is_none() {
                live.push(item);
            }
        }
        match live.len() {
            0 => Err(Error::new(
                ErrorKind::NotFound,
                format!("no key has the id or name {id_or_name:?}"),
            )),
            1 => Ok(live.remove(0)),
            _ => Err(Error::new(
                ErrorKind::Conflict,
                format!("several keys are named {id_or_name:?}; give the id"),
            )),
        }
    }

    async fn items(&self) -> Result<Vec<MemoryItem>, Error> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            // Only key items, selected by the backend rather than after the fetch.
            let mut request = ListRequest::new()
                .with_filter(Filter::new().kind(Kind::Custom(KEY_KIND.into())))
                .with_limit(500);
            if let Some(c) = cursor.take() {
                request = request.with_cursor(c);
            }
            let page = self.store.list(KEYS_NAMESPACE, &request).await?;
            out.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(out),
            }
        }
    }

    /// Writes `record` over `item` and checks nobody else wrote the key meanwhile: a
    /// concurrent change is a `Conflict` the caller sees, never a silently lost update.
    async fn replace(&self, item: MemoryItem, record: &Record) -> Result<MemoryItem, Error> {
        let expected = item.version + 1;
        let mut next = item;
        next.metadata.extra = match serde_json::to_value(record) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(Error::new(
                    ErrorKind::Unexpected,
                    "a key record did not serialise",
                ));
            }
        };
        let written = self.store.upsert(next).await?;
        if written.version != expected {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "key {} changed while this change was written; list the keys and try again",
                    written.id
                ),
            ));
        }
        Ok(written)
    }

    /// Makes a key; returns it and its token, which is shown this once and never stored.
    ///
    /// # Errors
    /// `InvalidInput` naming `name`, `namespace` or `expires`; `Conflict` for a name a live
    /// key has; the store's errors.
    pub async fn create(&self, new: NewKey) -> Result<(KeyInfo, String), Error> {
        let name = new.name.trim().to_owned();
        if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
            return Err(Error::invalid(
                "name",
                "a key name is 1 to 64 characters, without control characters",
            ));
        }
        let namespaces = check_namespaces(new.scope, &new.namespaces)?;
        for item in self.items().await? {
            let record = record_of(&item)?;
            if record.name == name && record.revoked_at.is_none() {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("key {} is already named {name:?}", item.id),
                )
                .with_context("field", "name"));
            }
        }
        let now = Timestamp::now();
        let id = random_hex(6)?;
        let secret = random_hex(32)?;
        let record = Record {
            name: name.clone(),
            scope: new.scope,
            namespaces,
            expires_at: new.expires_in.map(|d| now.saturating_add(d)),
            revoked_at: None,
            secrets: vec![Secret {
                digest: digest_hex(&secret),
                until: None,
            }],
        };
        let mut item = MemoryItem::new(
            KEYS_NAMESPACE,
            Kind::Custom(KEY_KIND.into()),
            format!("API key {name}"),
        )
        .with_id(&id);
        item.tier = Tier::Semantic;
        item.expires_at = None;
        item.metadata.extra = match serde_json::to_value(&record) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(Error::new(
                    ErrorKind::Unexpected,
                    "a key record did not serialise",
                ));
            }
        };
        let written = self.store.upsert(item).await?;
        Ok((
            info_of(&written, &record, now),
            format!("mlk_{id}_{secret}"),
        ))
    }

    /// Every key, newest first, revoked ones included.
    ///
    /// # Errors
    /// The store's errors; `Unexpected` for an item that is not a key record.
    pub async fn list(&self) -> Result<Vec<KeyInfo>, Error> {
        let now = Timestamp::now();
        self.items()
            .await?
            .iter()
            .map(|item| Ok(info_of(item, &record_of(item)?, now)))
            .collect()
    }

    /// Gives a key a new secret; the old one keeps working for `grace` (zero ends it now).
    ///
    /// # Errors
    /// `NotFound`; `InvalidInput` naming `key` for a revoked key; `Conflict` when the key
    /// changed meanwhile; the store's errors.
    pub async fn rotate(
        &self,
        id_or_name: &str,
        grace: Duration,
    ) -> Result<(KeyInfo, String), Error> {
        let item = self.item(id_or_name).await?;
        let mut record = record_of(&item)?;
        if record.revoked_at.is_some() {
            return Err(Error::invalid("key", format!("key {} is revoked", item.id)));
        }
        let now = Timestamp::now();
        let until = now.saturating_add(grace);
        // Only the newest secret gets the grace period; older ones end now at the latest.
        record.secrets.retain(|s| s.until.is_none_or(|u| u > now));
        for s in &mut record.secrets {
            s.until = Some(s.until.map_or(until, |u| u.min(until)));
        }
        let secret = random_hex(32)?;
        record.secrets.push(Secret {
            digest: digest_hex(&secret),
            until: None,
        });
        let id = item.id.clone();
        let written = self.replace(item, &record).await?;
        Ok((
            info_of(&written, &record, now),
            format!("mlk_{id}_{secret}"),
        ))
    }

    /// Revokes a key: every server refuses it within the cache time of its key ring.
    ///
    /// # Errors
    /// `NotFound`; `Conflict` when the key changed meanwhile; the store's errors.
    pub async fn revoke(&self, id_or_name: &str) -> Result<KeyInfo, Error> {
        let item = self.item(id_or_name).await?;
        let mut record = record_of(&item)?;
        let now = Timestamp::now();
        if record.revoked_at.is_none() {
            record.revoked_at = Some(now);
            let written = self.replace(item, &record).await?;
            return Ok(info_of(&written, &record, now));
        }
        Ok(info_of(&item, &record, now))
    }

    /// What `token` is granted now, reading the store; `None` for an unknown, revoked,
    /// expired or wrong token.
    ///
    /// # Errors
    /// The store's errors (a missing key is `None`, not an error).
    pub async fn grant(&self, token: &str) -> Result<Option<Grant>, Error> {
        let Some((id, _)) = split_token(token) else {
            return Ok(None);
        };
        Ok(self
            .item_by_id(id)
            .await?
            .and_then(|item| granted(&item, token, Timestamp::now())))
    }

    /// The key item `id`, if there is one.
    ///
    /// # Errors
    /// The store's errors (a missing key is `None`).
    pub(crate) async fn item_by_id(&self, id: &str) -> Result<Option<MemoryItem>, Error> {
        match self.store.get(KEYS_NAMESPACE, id).await {
            Ok(item) => Ok(Some(item)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Notes that key `id` was used at `at` (its `last_used_at`).
    ///
    /// # Errors
    /// The store's errors.
    pub(crate) async fn touch(&self, id: &str, at: Timestamp) -> Result<(), Error> {
        self.store
            .reinforce(KEYS_NAMESPACE, &[id.to_owned()], at)
            .await
            .map(|_| ())
    }
}

/// What `token` is granted by the key `item` at `now`.
pub(crate) fn granted(item: &MemoryItem, token: &str, now: Timestamp) -> Option<Grant> {
    let (_, secret) = split_token(token)?;
    let record = record_of(item).ok()?;
    if record.revoked_at.is_some() || record.expires_at.is_some_and(|e| e <= now) {
        return None;
    }
    let presented = digest_hex(secret);
    // Every secret is compared, so the time taken says nothing of which matched.
    let mut ok = false;
    for s in &record.secrets {
        let live = s.until.is_none_or(|u| u > now);
        ok |= constant_time_eq(s.digest.as_bytes(), presented.as_bytes()) && live;
    }
    ok.then(|| Grant {
        namespaces: (record.scope != KeyScope::Admin).then(|| record.namespaces.clone()),
        scope: record.scope,
        key: Some(record.name.clone()),
    })
}

/// The key id a token names, if it is shaped as a key.
pub(crate) fn token_id(token: &str) -> Option<&str> {
    split_token(token).map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse_and_bad_ones_name_the_field() {
        assert_eq!(parse_span("expires", "30d").unwrap().as_secs(), 30 * 86_400);
        assert_eq!(parse_span("grace", "90s").unwrap().as_secs(), 90);
        for bad in ["", "d", "30", "30y", "-1d", "1.5h"] {
            let e = parse_span("expires", bad).unwrap_err();
            assert!(e.to_string().contains("expires"), "{bad}: {e}");
        }
    }

    #[test]
    fn tokens_split_only_when_shaped_as_keys() {
        assert_eq!(
            split_token("mlk_0123456789ab_s3cret"),
            Some(("0123456789ab", "s3cret"))
        );
        for bad in [
            "mlk_0123_s",
            "mlk_0123456789ab_",
            "xyz",
            "mlk_zzzzzzzzzzzz_s",
        ] {
            assert_eq!(split_token(bad), None, "{bad}");
        }
    }

    #[test]
    fn reserved_namespaces_are_never_admitted() {
        assert!(!Grant::everything().admits(KEYS_NAMESPACE));
        assert!(Grant::everything().admits("a"));
    }
}

//! The write rules of the contract, as pure functions, so that every backend that can read the
//! old row inside its write transaction applies exactly the same rules.

use memlayer_types::{MemoryItem, Timestamp};

use crate::{Error, ErrorKind, Result};

/// Builds the row to store for `incoming`, given the row stored under the same id (if any).
///
/// - `existing` is the row of the same namespace and id: an item's identity is the pair, so
///   another namespace's row under the same id is a different item (decisions/0007).
/// - A live row may change status only along the legal moves; a soft-deleted row is revived
///   with whatever status the caller sends.
/// - Version is 1 on insert and +1 otherwise; `created_at` and access bookkeeping of an
///   existing row are kept; `updated_at` strictly advances.
/// - A missing `expires_at` is the tier's default time to live from now.
///
/// # Errors
/// `InvalidInput` as above; `Unexpected` when `existing` is another namespace's row.
pub fn merge_upsert(
    existing: Option<&MemoryItem>,
    mut incoming: MemoryItem,
    now: Timestamp,
) -> Result<MemoryItem> {
    if incoming.expires_at.is_none() {
        incoming.expires_at = incoming
            .tier
            .default_ttl()
            .map(|ttl| now.saturating_add(ttl));
    }
    incoming.deleted = false;
    match existing {
        None => {
            incoming.version = 1;
            incoming.updated_at = now.max(incoming.created_at);
            Ok(incoming)
        }
        Some(old) => {
            if old.namespace != incoming.namespace {
                // Identity is (namespace, id): a backend that hands over another namespace's
                // row has a bug, and writing over it would break the tenant wall.
                return Err(Error::new(
                    ErrorKind::Unexpected,
                    "the stored row under this id belongs to another namespace",
                )
                .with_context("namespace", &incoming.namespace));
            }
            if !old.deleted && !old.status.can_become(incoming.status) {
                return Err(Error::invalid(
                    "status",
                    format!(
                        "cannot move from {} to {}; legal moves are draft->accepted, \
                         draft->discard, accepted->discard",
                        old.status.as_str(),
                        incoming.status.as_str()
                    ),
                ));
            }
            incoming.version = old.version.saturating_add(1);
            incoming.created_at = old.created_at;
            incoming.access_count = old.access_count;
            incoming.last_accessed_at = old.last_accessed_at;
            incoming.updated_at = now.max(Timestamp::from_millis(
                old.updated_at.as_millis().saturating_add(1),
            ));
            Ok(incoming)
        }
    }
}

/// The error of a `reassign` whose target namespace already holds one of the moved ids: the
/// caller owns both namespaces, so naming the id reveals nothing of another tenant.
pub fn reassign_conflict(id: &str, to: &str) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!("namespace {to:?} already holds id {id:?}; nothing was moved"),
    )
    .with_context("id", id)
    .with_context("namespace", to)
}

/// Stamps a write that is not an upsert (soft delete, supersede, restore): `updated_at`
/// strictly advances, to `now` or one millisecond past the previous write.
pub fn touch(item: &mut MemoryItem, now: Timestamp) {
    item.updated_at = now.max(Timestamp::from_millis(
        item.updated_at.as_millis().saturating_add(1),
    ));
}

/// One score after a decay: multiplied by `factor` but not below `floor`, unless it was at or
/// below the floor already.
pub fn decayed(score: f32, factor: f32, floor: f32) -> f32 {
    if score <= floor {
        score
    } else {
        (score * factor).max(floor)
    }
}

/// Whether `item` is idle since before `idle_before`: last accessed (or, never accessed,
/// created) earlier.
pub fn is_idle(item: &MemoryItem, idle_before: Timestamp) -> bool {
    item.last_accessed_at.unwrap_or(item.created_at) < idle_before
}

/// Decays an item's scores in place (see `MemoryStore::decay`); returns whether they changed.
pub fn decay_item(item: &mut MemoryItem, factor: f32, floor: f32) -> bool {
    let importance = decayed(item.importance, factor, floor);
    let confidence = decayed(item.confidence, factor, floor);
    let changed = importance != item.importance || confidence != item.confidence;
    item.importance = importance;
    item.confidence = confidence;
    changed
}

/// Applies one reinforcement at `at` to `item`.
///
/// The expiry of an item that expires slides to `at` plus the tier's time to live (or, for a
/// tier without one, the item's original lifetime), and never moves backwards.
pub fn reinforce_item(item: &mut MemoryItem, at: Timestamp) {
    item.access_count = item.access_count.saturating_add(1);
    item.last_accessed_at = Some(at);
    if let Some(expires) = item.expires_at {
        let ttl = item
            .tier
            .default_ttl()
            .unwrap_or_else(|| expires.duration_since(item.created_at));
        item.expires_at = Some(expires.max(at.saturating_add(ttl)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memlayer_types::{Kind, Status, Tier};

    fn item(ns: &str) -> MemoryItem {
        MemoryItem::new(ns, Kind::Fact, "x").with_id("a")
    }

    #[test]
    fn insert_sets_version_and_tier_ttl() {
        let now = Timestamp::from_millis(1_000_000);
        let stored = merge_upsert(None, item("n").with_created_at(now), now).unwrap();
        assert_eq!(stored.version, 1);
        let ttl = Tier::Working.default_ttl().unwrap();
        assert_eq!(stored.expires_at, Some(now.saturating_add(ttl)));
        let semantic = merge_upsert(None, item("n").with_tier(Tier::Semantic), now).unwrap();
        assert_eq!(semantic.expires_at, None);
    }

    #[test]
    fn update_keeps_created_at_and_advances() {
        let t0 = Timestamp::from_millis(1_000);
        let first = merge_upsert(None, item("n").with_created_at(t0), t0).unwrap();
        let again = item("n").with_created_at(Timestamp::from_millis(5));
        let second = merge_upsert(Some(&first), again, t0).unwrap();
        assert_eq!(second.version, 2);
        assert_eq!(second.created_at, t0);
        assert!(second.updated_at > first.updated_at);
    }

    #[test]
    fn another_namespace_row_and_illegal_status_are_refused() {
        let now = Timestamp::now();
        let first = merge_upsert(None, item("a"), now).unwrap();
        let e = merge_upsert(Some(&first), item("b"), now).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unexpected);
        let e = merge_upsert(Some(&first), item("a").with_status(Status::Draft), now).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn reinforce_slides_only_expiring_items() {
        let t0 = Timestamp::from_millis(0);
        let mut working = merge_upsert(None, item("n").with_created_at(t0), t0).unwrap();
        let at = Timestamp::from_millis(10_000);
        reinforce_item(&mut working, at);
        assert_eq!(working.access_count, 1);
        assert_eq!(working.last_accessed_at, Some(at));
        let ttl = Tier::Working.default_ttl().unwrap();
        assert_eq!(working.expires_at, Some(at.saturating_add(ttl)));
        let mut forever = item("n").with_tier(Tier::Semantic);
        reinforce_item(&mut forever, at);
        assert_eq!(forever.expires_at, None);
    }
}

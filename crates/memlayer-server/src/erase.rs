//! Erasure of a user: hard-deletes everything of a user, in the namespaces given, with exact
//! counts (`memlayer forget --user`, the MCP `forget` tool, `docs/security.md`).

use std::collections::BTreeMap;

use memlayer::{DynStore, ErrorKind, Filter, Kind, MemoryStoreExt, Result};

/// What was deleted in one namespace.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Forgotten {
    /// Items hard-deleted.
    pub items: u64,
    /// Of which carried an embedding (their vectors went with them).
    pub vectors: u64,
    /// Of which were conversation messages.
    pub messages: u64,
    /// Of which were summaries.
    pub summaries: u64,
    /// Of which were long-term facts and other kinds.
    pub other: u64,
    /// The ids deleted.
    pub ids: Vec<String>,
}

/// What a `forget_user` did: exact counts of what it deleted, and the error that stopped it,
/// if one did.
#[derive(Debug, Default)]
pub struct Forgetting {
    /// What was deleted, per namespace (only namespaces where something was).
    pub report: BTreeMap<String, Forgotten>,
    /// The error that stopped the erasure: what `report` counts stays deleted, the rest is
    /// still there, and a rerun finishes.
    pub failure: Option<memlayer::Error>,
}

impl Forgetting {
    /// Items deleted in every namespace.
    pub fn items(&self) -> u64 {
        self.report.values().map(|f| f.items).sum()
    }
}

/// Hard-deletes every item whose user is `user` (live, soft-deleted, expired and superseded
/// alike, vectors with them) in `namespaces`, and returns exact counts per namespace, also when
/// an error stops it part way.
pub async fn forget_user(store: &DynStore, user: &str, namespaces: &[String]) -> Forgetting {
    let mut done = Forgetting::default();
    for ns in namespaces {
        let mut f = Forgotten::default();
        let failure = forget_in(store, user, ns, &mut f).await.err();
        if f.items > 0 {
            done.report.insert(ns.clone(), f);
        }
        if failure.is_some() {
            done.failure = failure;
            break;
        }
    }
    done
}

/// Deletes the user's items of one namespace, counting each as it goes.
async fn forget_in(store: &DynStore, user: &str, ns: &str, f: &mut Forgotten) -> Result<()> {
    let filter = Filter::new()
        .user(user)
        .include_deleted(true)
        .include_expired(true)
        .include_superseded(true);
    let items = store.list_all(ns, filter).await?;
    for item in items {
        match store.delete(ns, &item.id).await {
            Ok(()) => {}
            // Deleted by someone else meanwhile: not ours to count.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
        f.items += 1;
        f.ids.push(item.id.clone());
        if item.embedding.is_some() {
            f.vectors += 1;
        }
        if item.kind.is_message() {
            f.messages += 1;
        } else if item.kind == Kind::Summary {
            f.summaries += 1;
        } else {
            f.other += 1;
        }
    }
    Ok(())
}

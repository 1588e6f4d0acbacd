//! JSONL export and import, and re-embedding into a store pinned to another model.
//!
//! The export format, one JSON value per line:
//! - a header, `{"memlayer_export": 1, "embedding": {"model", "dim"} | null}`;
//! - blobs, `{"$blob": "sha256:<hex>", "value": ...}`: a content or tool-call payload of at
//!   least [`BLOB_MIN_BYTES`] is written once, before the first item that uses it, and items
//!   refer to it as `{"$blob": "sha256:<hex>"}`;
//! - items, the item JSON (embedding and model id included) without `version` and
//!   `updated_at`, which are the receiving store's write bookkeeping (an import is a write).
//!
//! Items are written namespace by namespace (sorted), oldest first, ties by id, so the same
//! store always exports the same bytes, and an export imported into any backend exports the
//! same bytes again. Soft-deleted items are not exported; expired and superseded ones are.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};

use indicatif::ProgressBar;
use memlayer::{DynStore, EmbeddingPin, Error, ErrorKind, Filter, ListRequest, MemoryItem, Result};
use serde_json::{Value, json};
use sha2::Digest;

/// Payloads at least this large (serialised) are written once per export, as blobs.
pub const BLOB_MIN_BYTES: usize = 1024;
/// The format version written in the header.
pub const FORMAT: u64 = 1;
const PAGE: usize = 500;

fn io(e: std::io::Error) -> Error {
    Error::new(ErrorKind::Unavailable, format!("writing the export: {e}"))
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidInput, message)
}

/// Every exported item of a namespace is what this filter selects.
fn exported() -> Filter {
    Filter::new().include_expired(true).include_superseded(true)
}

/// The exported items of a namespace, a page at a time, in export order.
pub struct Pager<'a> {
    store: &'a DynStore,
    namespace: &'a str,
    request: ListRequest,
    done: bool,
}

impl std::fmt::Debug for Pager<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pager")
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl<'a> Pager<'a> {
    /// Pages of `namespace`.
    pub fn new(store: &'a DynStore, namespace: &'a str) -> Self {
        let mut request = ListRequest::new().with_filter(exported());
        request.limit = Some(PAGE);
        request.order = memlayer::Order::Asc;
        Pager {
            store,
            namespace,
            request,
            done: false,
        }
    }

    /// The next page, `None` after the last.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn next(&mut self) -> Result<Option<Vec<MemoryItem>>> {
        if self.done {
            return Ok(None);
        }
        let page = self.store.list(self.namespace, &self.request).await?;
        match page.next_cursor {
            Some(c) => self.request.cursor = Some(c),
            None => self.done = true,
        }
        Ok(Some(page.items))
    }
}

/// About how many items an export of `namespaces` writes, for progress: the stores' own counts
/// (soft-deleted items included, which the export skips), so nothing is read twice.
///
/// # Errors
/// The store's errors.
pub async fn count_exported(store: &DynStore, namespaces: &[String]) -> Result<u64> {
    let mut n = 0u64;
    for ns in namespaces {
        n += store.count(ns, memlayer::CountOptions::all()).await?;
    }
    Ok(n)
}

/// What an export or import did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Transfer {
    /// Items written or read.
    pub items: u64,
    /// Distinct blobs written or read.
    pub blobs: u64,
    /// Items carrying an embedding.
    pub vectors: u64,
}

fn digest(bytes: &[u8]) -> String {
    let d = sha2::Sha256::digest(bytes);
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Writes `namespaces` of `store` to `out` in the export format.
///
/// # Errors
/// The store's errors, or `Unavailable` when `out` fails.
pub async fn export(
    store: &DynStore,
    namespaces: &[String],
    out: &mut dyn Write,
    progress: &ProgressBar,
) -> Result<Transfer> {
    let pin = store.embedding_pin().await?;
    let header = json!({
        "memlayer_export": FORMAT,
        "embedding": pin.map(|p| json!({"model": p.model, "dim": p.dim})),
    });
    writeln!(out, "{header}").map_err(io)?;
    let mut done = Transfer::default();
    let mut written: HashSet<String> = HashSet::new();
    let mut ns_sorted = namespaces.to_vec();
    ns_sorted.sort();
    ns_sorted.dedup();
    for ns in &ns_sorted {
        // List order (created, then id in byte order) is the same on every backend.
        let mut pager = Pager::new(store, ns);
        while let Some(page) = pager.next().await? {
            for item in page {
                if item.deleted {
                    continue;
                }
                let mut v = serde_json::to_value(&item)
                    .map_err(|e| invalid(format!("item {}: {e}", item.id)))?;
                if let Some(obj) = v.as_object_mut() {
                    obj.remove("version");
                    obj.remove("updated_at");
                    for field in ["content", "tool_calls"] {
                        let Some(value) = obj.get(field) else {
                            continue;
                        };
                        let bytes = value.to_string();
                        if bytes.len() < BLOB_MIN_BYTES {
                            continue;
                        }
                        let hash = digest(bytes.as_bytes());
                        if written.insert(hash.clone()) {
                            writeln!(out, "{}", json!({"$blob": hash, "value": value}))
                                .map_err(io)?;
                            done.blobs += 1;
                        }
                        obj.insert(field.into(), json!({ "$blob": hash }));
                    }
                }
                writeln!(out, "{v}").map_err(io)?;
                done.items += 1;
                if item.embedding.is_some() {
                    done.vectors += 1;
                }
                progress.inc(1);
            }
        }
    }
    out.flush().map_err(io)?;
    Ok(done)
}

/// Reads an export from `input` into `store`, in batches the store accepts. Every line is
/// checked as it is read; a bad line stops the import with an error naming the line, after the
/// batches before it were written. An item whose id exists is replaced (an import is an
/// upsert). `progress` advances by the bytes read.
///
/// # Errors
/// `InvalidInput` naming the line for malformed input, an unknown blob or a blob whose bytes
/// do not match its hash; the store's errors otherwise.
pub async fn import(
    store: &DynStore,
    input: &mut dyn BufRead,
    progress: &ProgressBar,
) -> Result<Transfer> {
    let step = store.capabilities().max_batch.clamp(1, PAGE);
    let mut blobs: HashMap<String, Value> = HashMap::new();
    let mut batch: Vec<MemoryItem> = Vec::with_capacity(step);
    let mut done = Transfer::default();
    let mut line = String::new();
    let mut n = 0usize;
    loop {
        line.clear();
        let read = input
            .read_line(&mut line)
            .map_err(|e| invalid(format!("line {}: {e}", n + 1)))?;
        if read == 0 {
            break;
        }
        n += 1;
        progress.inc(read as u64);
        if line.trim().is_empty() {
            continue;
        }
        let mut v: Value =
            serde_json::from_str(&line).map_err(|e| invalid(format!("line {n}: {e}")))?;
        let Some(obj) = v.as_object_mut() else {
            return Err(invalid(format!("line {n}: expected a JSON object")));
        };
        if let Some(format) = obj.get("memlayer_export") {
            if format.as_u64() != Some(FORMAT) {
                return Err(invalid(format!(
                    "line {n}: export format {format} is not {FORMAT}"
                )));
            }
            check_pin(store, obj.get("embedding"), n).await?;
            continue;
        }
        if let Some(hash) = obj.get("$blob").and_then(Value::as_str).map(str::to_owned) {
            let value = obj.remove("value").unwrap_or(Value::Null);
            if digest(value.to_string().as_bytes()) != hash {
                return Err(invalid(format!(
                    "line {n}: blob {hash} does not match its value"
                )));
            }
            blobs.insert(hash, value);
            done.blobs += 1;
            continue;
        }
        for field in ["content", "tool_calls"] {
            let reference = obj
                .get(field)
                .and_then(|f| f.get("$blob"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            if let Some(hash) = reference {
                let value = blobs.get(&hash).cloned().ok_or_else(|| {
                    invalid(format!(
                        "line {n}: {field} refers to blob {hash}, not defined before it"
                    ))
                })?;
                obj.insert(field.into(), value);
            }
        }
        let item: MemoryItem =
            serde_json::from_value(v).map_err(|e| invalid(format!("line {n}: {e}")))?;
        memlayer::limits::check_item(&item).map_err(|e| invalid(format!("line {n}: {e}")))?;
        if item.embedding.is_some() {
            done.vectors += 1;
        }
        batch.push(item);
        if batch.len() >= step {
            done.items += store.upsert_many(std::mem::take(&mut batch)).await?.len() as u64;
        }
    }
    if !batch.is_empty() {
        done.items += store.upsert_many(batch).await?.len() as u64;
    }
    Ok(done)
}

/// An export of vectors of one model goes only into a store pinned to it, or unpinned.
async fn check_pin(store: &DynStore, embedding: Option<&Value>, n: usize) -> Result<()> {
    let Some(e) = embedding.filter(|e| !e.is_null()) else {
        return Ok(());
    };
    let want = EmbeddingPin {
        model: e
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        dim: e
            .get("dim")
            .and_then(Value::as_u64)
            .and_then(|d| usize::try_from(d).ok())
            .unwrap_or(0),
    };
    match store.embedding_pin().await? {
        Some(have) if have != want => Err(invalid(format!(
            "line {n}: the export's vectors are {:?} ({} dimensions) but the store is pinned to {:?} ({} dimensions); import into a new store, or re-embed",
            want.model, want.dim, have.model, have.dim
        ))),
        _ => Ok(()),
    }
}

/// What a re-embedding did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reembed {
    /// Items embedded with the new model and written to the target.
    pub embedded: u64,
    /// Items the target already had with the new model (from an interrupted run).
    pub skipped: u64,
    /// Items written without a vector (no content to embed).
    pub vectorless: u64,
}

/// Copies every exported item of `namespaces` from `source` into `target`, embedded with
/// `target`'s embedder (the target is an `EmbeddingStore`, pinned to the new model). Resumable:
/// an item the target already holds with the new model is skipped, so a run interrupted at any
/// point finishes by running again. With `max_items`, stops after embedding that many.
///
/// # Errors
/// The stores' and the embedder's errors.
pub async fn reembed(
    source: &DynStore,
    target: &memlayer::embed::EmbeddingStore,
    namespaces: &[String],
    max_items: Option<u64>,
    progress: &ProgressBar,
) -> Result<Reembed> {
    use memlayer::MemoryStore;
    let model = target.embedder().model_id().to_owned();
    let mut done = Reembed::default();
    for ns in namespaces {
        let mut pager = Pager::new(source, ns);
        while let Some(page) = pager.next().await? {
            let mut todo = Vec::with_capacity(page.len());
            let mut stop = false;
            for mut item in page {
                if item.deleted {
                    continue;
                }
                match target.get(ns, &item.id).await {
                    Ok(have)
                        if have.embedding.as_ref().is_some_and(|e| e.model == model)
                            || (have.content.trim().is_empty() && have.embedding.is_none()) =>
                    {
                        done.skipped += 1;
                        progress.inc(1);
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                if max_items.is_some_and(|m| done.embedded + done.vectorless >= m) {
                    stop = true;
                    break;
                }
                item.embedding = None;
                if item.content.trim().is_empty() {
                    done.vectorless += 1;
                } else {
                    done.embedded += 1;
                }
                todo.push(item);
            }
            let n = todo.len() as u64;
            if !todo.is_empty() {
                target.upsert_many(todo).await?;
            }
            progress.inc(n);
            if stop {
                return Ok(done);
            }
        }
    }
    Ok(done)
}

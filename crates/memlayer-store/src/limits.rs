//! Input limits and validation shared by every backend, so that bad input gets the same clear
//! error (naming the field and the limit) everywhere, before anything is written.

use memlayer_types::MemoryItem;
use serde_json::Value;

use crate::{
    EmbeddingPin, Error, Filter, ListRequest, MAX_LIMIT, MAX_OFFSET, MetaOp, Result, SearchMode,
    SearchRequest,
};

/// Largest id or namespace, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// Largest content, in bytes (1 MiB).
pub const MAX_CONTENT_BYTES: usize = 1 << 20;
/// Most tags on one item.
pub const MAX_TAGS: usize = 64;
/// Largest tag or metadata key, in bytes.
pub const MAX_TAG_BYTES: usize = 256;
/// Largest serialised caller metadata plus tool calls, in bytes (256 KiB).
pub const MAX_METADATA_BYTES: usize = 256 << 10;
/// Largest embedding dimension.
pub const MAX_DIMENSION: usize = 8192;
/// Largest `upsert_many` batch.
pub const MAX_BATCH: usize = 10_000;
/// Most distinct terms taken from a keyword query; the rest are ignored, never an error.
pub const MAX_QUERY_TERMS: usize = 64;
/// Most entries in each list of a filter (kinds, statuses, tags, metadata conditions): a
/// filter is pushed down into the backend's query, whose size every engine bounds.
pub const MAX_FILTER_LIST: usize = 64;
/// Most ids in one list of ids (a filter's `exclude_ids`, a `reinforce` or `reassign`).
pub const MAX_ID_LIST: usize = 1_000;

fn check_list_len(field: &'static str, len: usize, limit: usize) -> Result<()> {
    if len > limit {
        return Err(Error::invalid(
            field,
            format!("holds {len} entries, the limit is {limit}"),
        ));
    }
    Ok(())
}

/// Validates a list of ids given to one call (`reinforce`, `reassign`).
///
/// # Errors
/// `InvalidInput` naming `field` above [`MAX_ID_LIST`] ids, or `id` for a bad one.
pub fn check_ids(field: &'static str, ids: &[String]) -> Result<()> {
    check_list_len(field, ids.len(), MAX_ID_LIST)?;
    ids.iter().try_for_each(|id| check_id(id))
}

fn check_key(field: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if value.len() > MAX_KEY_BYTES {
        return Err(Error::invalid(
            field,
            format!("is {} bytes, the limit is {MAX_KEY_BYTES}", value.len()),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Validates a namespace name.
///
/// # Errors
/// `InvalidInput` naming `namespace` when empty, over [`MAX_KEY_BYTES`], or with control characters.
pub fn check_namespace(namespace: &str) -> Result<()> {
    check_key("namespace", namespace)
}

/// Validates an item id.
///
/// # Errors
/// `InvalidInput` naming `id` when empty, over [`MAX_KEY_BYTES`], or with control characters.
pub fn check_id(id: &str) -> Result<()> {
    check_key("id", id)
}

fn check_unit(field: &'static str, v: f32) -> Result<()> {
    if !v.is_finite() || !(0.0..=1.0).contains(&v) {
        return Err(Error::invalid(
            field,
            format!("must be within 0..=1, got {v}"),
        ));
    }
    Ok(())
}

/// Validates a vector's components.
///
/// # Errors
/// `InvalidInput` naming `field` for an empty vector, one over [`MAX_DIMENSION`], or a NaN or
/// infinite component.
pub fn check_vector(field: &'static str, v: &[f32]) -> Result<()> {
    if v.is_empty() {
        return Err(Error::invalid(field, "must not be empty"));
    }
    if v.len() > MAX_DIMENSION {
        return Err(Error::invalid(
            field,
            format!("has dimension {}, the limit is {MAX_DIMENSION}", v.len()),
        ));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::invalid(
            field,
            format!("component {i} is {}, components must be finite", v[i]),
        ));
    }
    Ok(())
}

/// Validates an item before any write, independent of stored state.
///
/// # Errors
/// `InvalidInput` naming the first offending field and its limit.
pub fn check_item(item: &MemoryItem) -> Result<()> {
    check_id(&item.id)?;
    check_namespace(&item.namespace)?;
    if item.kind.as_str().is_empty() || item.kind.as_str().len() > MAX_TAG_BYTES {
        return Err(Error::invalid(
            "kind",
            format!("must be 1..={MAX_TAG_BYTES} bytes"),
        ));
    }
    if item.content.trim().is_empty() {
        return Err(Error::invalid("content", "must not be empty"));
    }
    if item.content.len() > MAX_CONTENT_BYTES {
        return Err(Error::invalid(
            "content",
            format!(
                "is {} bytes, the limit is {MAX_CONTENT_BYTES}",
                item.content.len()
            ),
        ));
    }
    if item.tags.len() > MAX_TAGS {
        return Err(Error::invalid(
            "tags",
            format!("has {} tags, the limit is {MAX_TAGS}", item.tags.len()),
        ));
    }
    for tag in &item.tags {
        if tag.is_empty() || tag.len() > MAX_TAG_BYTES {
            return Err(Error::invalid(
                "tags",
                format!("each tag must be 1..={MAX_TAG_BYTES} bytes"),
            ));
        }
    }
    for (field, value) in [
        ("metadata.user_id", &item.metadata.user_id),
        ("metadata.session_id", &item.metadata.session_id),
        ("metadata.task_id", &item.metadata.task_id),
        ("metadata.agent_id", &item.metadata.agent_id),
        ("tool_call_id", &item.tool_call_id),
        ("tool_name", &item.tool_name),
    ] {
        if let Some(v) = value {
            check_key(field, v)?;
        }
    }
    for key in item.metadata.extra.keys() {
        if key.is_empty() || key.len() > MAX_TAG_BYTES {
            return Err(Error::invalid(
                "metadata.extra",
                format!("each key must be 1..={MAX_TAG_BYTES} bytes"),
            ));
        }
    }
    let meta_bytes = serde_json::to_string(&item.metadata.extra).map_or(0, |s| s.len())
        + serde_json::to_string(&item.tool_calls).map_or(0, |s| s.len());
    if meta_bytes > MAX_METADATA_BYTES {
        return Err(Error::invalid(
            "metadata.extra",
            format!("with tool_calls is {meta_bytes} bytes, the limit is {MAX_METADATA_BYTES}"),
        ));
    }
    check_unit("importance", item.importance)?;
    check_unit("confidence", item.confidence)?;
    if let (Some(from), Some(to)) = (item.valid_from, item.valid_to)
        && to < from
    {
        return Err(Error::invalid("valid_to", "must not be before valid_from"));
    }
    if let Some(e) = &item.embedding {
        if e.model.is_empty() || e.model.len() > MAX_KEY_BYTES {
            return Err(Error::invalid(
                "embedding.model",
                format!("must be 1..={MAX_KEY_BYTES} bytes"),
            ));
        }
        check_vector("embedding.vector", &e.vector)?;
    }
    Ok(())
}

/// Checks a query vector against the store's pinned dimension.
///
/// # Errors
/// `InvalidInput` on field `vector` when the dimensions differ.
pub fn check_query_dim(pin: &EmbeddingPin, vector: &[f32]) -> Result<()> {
    if pin.dim != vector.len() {
        return Err(Error::invalid(
            "vector",
            format!(
                "has dimension {}, but this store is pinned to dimension {}",
                vector.len(),
                pin.dim
            ),
        ));
    }
    Ok(())
}

/// Checks an embedding against the store's pin.
///
/// # Errors
/// `InvalidInput` naming both dimensions, or both model ids.
pub fn check_pin(pin: &EmbeddingPin, model: &str, dim: usize) -> Result<()> {
    if pin.dim != dim {
        return Err(Error::invalid(
            "embedding.vector",
            format!(
                "has dimension {dim}, but this store is pinned to dimension {} (model {:?})",
                pin.dim, pin.model
            ),
        ));
    }
    if pin.model != model {
        return Err(Error::invalid(
            "embedding.model",
            format!(
                "is {model:?}, but this store is pinned to model {:?} (dimension {})",
                pin.model, pin.dim
            ),
        ));
    }
    Ok(())
}

/// Validates a filter.
///
/// # Errors
/// `InvalidInput` naming the list above its limit ([`MAX_FILTER_LIST`], [`MAX_ID_LIST`]), or
/// `filter.metadata` for a condition whose value is not a scalar, or an ordering on a boolean.
pub fn check_filter(filter: &Filter) -> Result<()> {
    check_list_len("filter.kinds", filter.kinds.len(), MAX_FILTER_LIST)?;
    check_list_len("filter.statuses", filter.statuses.len(), MAX_FILTER_LIST)?;
    check_list_len("filter.tags", filter.tags.len(), MAX_FILTER_LIST)?;
    check_list_len("filter.metadata", filter.metadata.len(), MAX_FILTER_LIST)?;
    check_list_len("filter.exclude_ids", filter.exclude_ids.len(), MAX_ID_LIST)?;
    if filter.tags.iter().any(|t| t.len() > MAX_TAG_BYTES) {
        return Err(Error::invalid(
            "filter.tags",
            format!("each tag must be at most {MAX_TAG_BYTES} bytes"),
        ));
    }
    if filter.exclude_ids.iter().any(|id| id.len() > MAX_KEY_BYTES) {
        return Err(Error::invalid(
            "filter.exclude_ids",
            format!("each id must be at most {MAX_KEY_BYTES} bytes"),
        ));
    }
    for cond in &filter.metadata {
        if cond.key.is_empty() || cond.key.len() > MAX_TAG_BYTES {
            return Err(Error::invalid(
                "filter.metadata",
                format!("each key must be 1..={MAX_TAG_BYTES} bytes"),
            ));
        }
        match (&cond.value, cond.op) {
            (Value::String(_) | Value::Number(_), _) => {}
            (Value::Bool(_), MetaOp::Eq | MetaOp::Ne) => {}
            (Value::Bool(_), _) => {
                return Err(Error::invalid(
                    "filter.metadata",
                    format!("key {:?}: booleans compare only with eq and ne", cond.key),
                ));
            }
            _ => {
                return Err(Error::invalid(
                    "filter.metadata",
                    format!(
                        "key {:?}: the value must be a string, number or boolean",
                        cond.key
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_limit(limit: usize) -> Result<()> {
    if limit == 0 || limit > MAX_LIMIT {
        return Err(Error::invalid(
            "limit",
            format!("must be within 1..={MAX_LIMIT}, got {limit}"),
        ));
    }
    Ok(())
}

/// Validates a search request (the vector's dimension is checked by the backend).
///
/// # Errors
/// `InvalidInput` naming the field.
pub fn check_search(request: &SearchRequest) -> Result<()> {
    check_limit(request.effective_limit())?;
    if request.offset > MAX_OFFSET {
        return Err(Error::invalid(
            "offset",
            format!("must be at most {MAX_OFFSET}, got {}", request.offset),
        ));
    }
    check_filter(&request.filter)?;
    if let Some(v) = &request.vector {
        check_vector("vector", v)?;
    }
    if request.mode == SearchMode::Vector && request.vector.is_none() {
        return Err(Error::invalid("vector", "vector mode needs a query vector"));
    }
    if request.cursor.is_some() && request.mode != SearchMode::Recent {
        return Err(Error::invalid(
            "cursor",
            "cursors page `recent` searches; ranked modes page with offset",
        ));
    }
    match request.hybrid.fusion {
        crate::Fusion::Convex { keyword_weight } => {
            check_unit("hybrid.keyword_weight", keyword_weight)?
        }
        crate::Fusion::Rrf { k } => {
            if !k.is_finite() || k < 0.0 {
                return Err(Error::invalid(
                    "hybrid.k",
                    format!("must be finite and >= 0, got {k}"),
                ));
            }
        }
    }
    check_unit("hybrid.context_weight", request.hybrid.context_weight)?;
    if let Some(min) = request.min_score
        && !min.is_finite()
    {
        return Err(Error::invalid(
            "min_score",
            format!("must be a finite number, got {min}"),
        ));
    }
    if request.hybrid.pool_depth == 0 || request.hybrid.pool_depth > MAX_LIMIT {
        return Err(Error::invalid(
            "hybrid.pool_depth",
            format!(
                "must be within 1..={MAX_LIMIT}, got {}",
                request.hybrid.pool_depth
            ),
        ));
    }
    Ok(())
}

/// Validates a batch before any write: its size and every item.
///
/// # Errors
/// `InvalidInput` naming `items` above [`MAX_BATCH`], or the first bad item's field.
pub fn check_batch(items: &[MemoryItem]) -> Result<()> {
    if items.len() > MAX_BATCH {
        return Err(Error::invalid(
            "items",
            format!("batch of {} items, the limit is {MAX_BATCH}", items.len()),
        ));
    }
    items.iter().try_for_each(check_item)
}

/// Validates a `clear`: a filter that selects everything needs the explicit `all` flag.
///
/// # Errors
/// `InvalidInput` naming `filter` (or the namespace, or a bad metadata condition).
pub fn check_clear(namespace: &str, request: &crate::ClearRequest) -> Result<()> {
    check_namespace(namespace)?;
    check_filter(&request.filter)?;
    if !request.all && !request.filter.selects_subset() {
        return Err(Error::invalid(
            "filter",
            "selects every item; set `all` to clear the whole namespace",
        ));
    }
    Ok(())
}

/// Validates a list request.
///
/// # Errors
/// `InvalidInput` naming the field.
pub fn check_list(request: &ListRequest) -> Result<()> {
    check_limit(request.effective_limit())?;
    check_filter(&request.filter)
}

/// Validates the arguments of a decay.
///
/// # Errors
/// `InvalidInput` naming `factor` or `floor` when not a finite number in 0..=1.
pub fn check_decay(factor: f32, floor: f32) -> Result<()> {
    for (field, v) in [("factor", factor), ("floor", floor)] {
        if !v.is_finite() || !(0.0..=1.0).contains(&v) {
            return Err(Error::invalid(
                field,
                format!("is {v}, must be within 0..=1"),
            ));
        }
    }
    Ok(())
}

/// Validates a supersession before anything is read.
///
/// # Errors
/// `InvalidInput` naming `by` when an item would supersede itself.
pub fn check_supersede(id: &str, by: &str) -> Result<()> {
    if id == by {
        return Err(Error::invalid("by", "an item cannot supersede itself"));
    }
    Ok(())
}

#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod backend;
mod capabilities;
mod error;
pub mod files;
mod filter;
pub mod layer;
pub mod limits;
pub mod ranking;
mod redact;
mod request;
mod store;

pub use capabilities::Capabilities;
pub use error::{Error, ErrorKind, Result};
pub use filter::{FieldMatch, Filter, MetaCondition, MetaOp, TimeRange};
pub use layer::Layer;
pub use memlayer_types as types;
pub use redact::redact_url;
pub use request::{
    ClearRequest, CountOptions, Cursor, DEFAULT_CONTEXT_WEIGHT, DEFAULT_KEYWORD_WEIGHT,
    DEFAULT_LIMIT, DEFAULT_POOL_DEPTH, ExpiredItem, Fusion, HybridOptions, ListRequest, MAX_LIMIT,
    MAX_OFFSET, Order, Page, RankedBy, SearchHit, SearchMode, SearchRequest, SearchResults,
    SortKey, SortValue,
};
pub use store::{DynStore, EmbeddingPin, MemoryStore, MemoryStoreExt};

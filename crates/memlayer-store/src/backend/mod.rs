//! What a backend author needs and a store's user does not: the search driver, the lifecycle
//! rules, filter matching outside SQL, and the SQL the Postgres and SQLite backends share.
//!
//! The size limits stay at the crate root ([`crate::limits`]) because callers check their
//! input against them too.

pub mod lifecycle;
pub mod matching;
pub mod search;
pub mod sql;

#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod client;
mod config;
mod error;
mod legs;
mod maintenance;
mod schema;
mod sql;
mod store;
mod upsert;

pub use client::PostgresStore;
pub use config::{KeywordRanking, PostgresConfig, ef_search_at};

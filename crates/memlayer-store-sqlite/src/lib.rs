#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod client;
mod config;
mod db;
mod error;
mod index;
mod legs;
mod rows;
mod schema;
mod sql;
mod store;
mod vec_ext;
mod vectors;

pub use client::SqliteStore;
pub use config::SqliteConfig;
pub use db::Synchronous;
pub use memlayer_ann::{AnnConfig, Origin, Quantization, ScanSharing};

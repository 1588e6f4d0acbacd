#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod client;
mod codec;
mod config;
mod error;
mod filter;
mod keyword;
mod legs;
mod listing;
mod scripts;
mod store;

pub use client::RedisStore;
pub use config::RedisConfig;

#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod client;
mod config;
mod error;
mod layout;
mod legs;
mod records;
mod store;
mod writes;

pub use client::ChromaStore;
pub use config::ChromaConfig;

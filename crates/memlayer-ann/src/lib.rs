#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod config;
mod graph;
mod loader;
mod saved;
mod scan;
mod set;
pub mod synthetic;

pub use config::{AnnConfig, Quantization, ScanSharing};
pub use loader::{Loader, remove_saved_graph};
pub use saved::Origin;
pub use set::{Found, VectorSet};

#[cfg(test)]
mod tests;

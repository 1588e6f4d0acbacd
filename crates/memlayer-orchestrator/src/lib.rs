#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod short_term;
pub mod window;

pub use short_term::{Scope, ShortTermMemory};
pub use window::{CharsPerFour, TokenCounter, Window, WindowConfig};

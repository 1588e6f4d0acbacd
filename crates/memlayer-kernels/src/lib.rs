#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod sketch;
pub mod vector;

//! Helpers for memlayer's cross-crate tests; the tests live in `tests/tests/`.

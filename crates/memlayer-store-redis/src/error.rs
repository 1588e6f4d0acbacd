//! The one place where fred errors become memlayer errors.

use memlayer_store::{Error, ErrorKind};

use crate::client::BACKEND;

/// Maps a fred error: IO, timeouts, cancellations and backpressure are temporary
/// (`Unavailable`/`Timeout`); a bad URL or configuration is `ConfigInvalid`; a server error
/// reply is `Unexpected` unless it names a known condition.
pub(crate) fn map_redis(e: fred::error::Error) -> Error {
    use fred::error::ErrorKind as K;
    let (kind, temporary) = match e.kind() {
        K::IO | K::Canceled | K::Backpressure | K::Routing => (ErrorKind::Unavailable, true),
        K::Timeout => (ErrorKind::Timeout, true),
        K::Config | K::Url | K::Auth => (ErrorKind::ConfigInvalid, false),
        _ => {
            let d = e.details();
            if d.contains("LOADING") || d.contains("connection") || d.contains("Connection") {
                (ErrorKind::Unavailable, true)
            } else {
                (ErrorKind::Unexpected, false)
            }
        }
    };
    Error::new(kind, format!("redis: {}", e.details()))
        .with_backend(BACKEND)
        .set_temporary(temporary)
        .with_source(e)
}

/// A stored value that does not parse.
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Unexpected,
        format!("stored {what} does not parse: {detail}"),
    )
    .with_backend(BACKEND)
}

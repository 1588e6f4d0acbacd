//! The one place where chromadb-crate errors become memlayer errors.
//!
//! The crate reports failures as `anyhow` errors: an HTTP error status is rendered as
//! `"<code> <reason>: <body>"`, anything else is a transport or decoding failure.

use memlayer_store::{Error, ErrorKind};

use crate::client::BACKEND;

/// The HTTP status at the start of a chromadb error message, if any.
fn status_of(message: &str) -> Option<u16> {
    let code = message.get(..3)?;
    if message.as_bytes().get(3) != Some(&b' ') {
        return None;
    }
    code.parse().ok()
}

/// Maps a chromadb error: connection failures and 5xx answers are temporary `Unavailable`,
/// 429 is temporary `Unavailable`, other 4xx are `Unexpected` (memlayer validates everything
/// before sending, so the server refusing a request is a bug or a limit worth reporting),
/// undecodable answers are `Unexpected`.
pub(crate) fn map_chroma(e: anyhow::Error) -> Error {
    let message = format!("{e:#}");
    let (kind, temporary) = match status_of(&message) {
        Some(s) if s >= 500 || s == 429 => (ErrorKind::Unavailable, true),
        Some(_) => (ErrorKind::Unexpected, false),
        None if message.contains("decoding") || message.contains("expected") => {
            (ErrorKind::Unexpected, false)
        }
        None => (ErrorKind::Unavailable, true),
    };
    Error::new(kind, format!("chroma: {message}"))
        .with_backend(BACKEND)
        .set_temporary(temporary)
}

/// A request that did not answer within the configured timeout.
pub(crate) fn timed_out(what: &str, after: std::time::Duration) -> Error {
    Error::new(
        ErrorKind::Timeout,
        format!("chroma: {what} did not answer within {after:?}"),
    )
    .with_backend(BACKEND)
    .set_temporary(true)
}

/// A stored value that does not parse.
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Unexpected,
        format!("stored {what} does not parse: {detail}"),
    )
    .with_backend(BACKEND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        let e = map_chroma(anyhow::anyhow!("503 Service Unavailable: busy"));
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_temporary());
        let e = map_chroma(anyhow::anyhow!("400 Bad Request: nope"));
        assert_eq!(e.kind(), ErrorKind::Unexpected);
        let e = map_chroma(anyhow::anyhow!("error sending request: connection refused"));
        assert_eq!(e.kind(), ErrorKind::Unavailable);
    }
}

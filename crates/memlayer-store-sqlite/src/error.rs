//! The one place where SQLite errors become memlayer errors.

use memlayer_store::{Error, ErrorKind};
use rusqlite::ErrorCode;

use crate::client::BACKEND;

/// Maps a rusqlite error: busy or locked databases are temporary `Unavailable`, constraint
/// violations are `Conflict`, a full disk or read-only file is `Unavailable`, the rest
/// `Unexpected`.
pub(crate) fn map_sqlite(e: rusqlite::Error) -> Error {
    let kind = match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => ErrorKind::Unavailable,
            ErrorCode::ConstraintViolation => ErrorKind::Conflict,
            ErrorCode::DiskFull
            | ErrorCode::ReadOnly
            | ErrorCode::CannotOpen
            | ErrorCode::PermissionDenied
            | ErrorCode::SystemIoFailure => ErrorKind::Unavailable,
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => ErrorKind::ConfigInvalid,
            _ => ErrorKind::Unexpected,
        },
        _ => ErrorKind::Unexpected,
    };
    let temporary = matches!(
        &e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    );
    Error::new(kind, "sqlite error")
        .with_backend(BACKEND)
        .set_temporary(temporary)
        .with_source(e)
}

/// A stored value that does not parse: the file was written by something else.
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Unexpected,
        format!("stored {what} does not parse: {detail}"),
    )
    .with_backend(BACKEND)
}

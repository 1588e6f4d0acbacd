//! The one place where driver and pool errors become memlayer errors.

use deadpool_postgres::PoolError;
use memlayer_store::{Error, ErrorKind};
use tokio_postgres::error::SqlState;

use crate::client::BACKEND;

/// Maps a tokio-postgres error.
///
/// A dropped or refused connection, a shutting-down server or a lack of resources is a
/// temporary `Unavailable`; serialization failures and deadlocks are a temporary `Conflict`
/// (retry the call); unique violations are `Conflict`; data exceptions `InvalidInput`; an
/// unknown schema or a missing extension `ConfigInvalid`.
pub(crate) fn map_pg(e: tokio_postgres::Error) -> Error {
    if e.is_closed() {
        return Error::new(
            ErrorKind::Unavailable,
            "the connection to Postgres was closed",
        )
        .with_backend(BACKEND)
        .set_temporary(true)
        .with_source(e);
    }
    let Some(code) = e.code().cloned() else {
        // No SQLSTATE: an IO or protocol failure on the connection.
        return Error::new(ErrorKind::Unavailable, "Postgres connection failure")
            .with_backend(BACKEND)
            .set_temporary(true)
            .with_source(e);
    };
    let class = &code.code()[..2];
    let (kind, temporary) = if code == SqlState::UNIQUE_VIOLATION {
        (ErrorKind::Conflict, false)
    } else if code == SqlState::T_R_SERIALIZATION_FAILURE || code == SqlState::T_R_DEADLOCK_DETECTED
    {
        (ErrorKind::Conflict, true)
    } else if code == SqlState::QUERY_CANCELED {
        (ErrorKind::Timeout, true)
    } else if code == SqlState::INVALID_SCHEMA_NAME
        || code == SqlState::UNDEFINED_OBJECT
        || code == SqlState::UNDEFINED_FILE
    {
        (ErrorKind::ConfigInvalid, false)
    } else {
        match class {
            "08" | "53" | "57" | "58" => (ErrorKind::Unavailable, true),
            "22" => (ErrorKind::InvalidInput, false),
            _ => (ErrorKind::Unexpected, false),
        }
    };
    let message = e
        .as_db_error()
        .map(|d| format!("postgres {}: {}", code.code(), d.message()))
        .unwrap_or_else(|| format!("postgres {}", code.code()));
    Error::new(kind, message)
        .with_backend(BACKEND)
        .set_temporary(temporary)
        .with_source(e)
}

/// Maps a pool error: a timeout waiting for a connection is `Timeout`, a failure to connect
/// is a temporary `Unavailable`, a closed pool a permanent one.
pub(crate) fn map_pool(e: PoolError) -> Error {
    match e {
        PoolError::Timeout(_) => Error::new(
            ErrorKind::Timeout,
            "timed out waiting for a Postgres connection",
        )
        .with_backend(BACKEND),
        PoolError::Backend(e) => map_pg(e),
        PoolError::Closed => Error::new(ErrorKind::Unavailable, "the store is closed")
            .with_backend(BACKEND)
            .set_temporary(false),
        other => Error::new(
            ErrorKind::Unavailable,
            format!("cannot get a Postgres connection: {other}"),
        )
        .with_backend(BACKEND)
        .set_temporary(true),
    }
}

/// A stored value that does not parse.
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Unexpected,
        format!("stored {what} does not parse: {detail}"),
    )
    .with_backend(BACKEND)
}

//! Loading the statically linked sqlite-vec extension into a connection.
#![allow(unsafe_code)]

use std::os::raw::{c_char, c_int};

use memlayer_store::{Error, ErrorKind, Result};
use rusqlite::Connection;
use rusqlite::ffi;

type InitFn = unsafe extern "C" fn(
    *mut ffi::sqlite3,
    *mut *mut c_char,
    *const ffi::sqlite3_api_routines,
) -> c_int;

/// Registers sqlite-vec's functions and the `vec0` module on this connection only.
pub(crate) fn register(conn: &Connection) -> Result<()> {
    // SAFETY: sqlite-vec is compiled with SQLITE_CORE against the SQLite that rusqlite bundles,
    // and its entry point has the standard extension signature; the crate only declares it
    // without arguments. The handle is valid for the lifetime of `conn`, and the API-routines
    // pointer is unused under SQLITE_CORE.
    let rc = unsafe {
        let init: InitFn = std::mem::transmute(sqlite_vec::sqlite3_vec_init as *const ());
        init(conn.handle(), std::ptr::null_mut(), std::ptr::null())
    };
    if rc != ffi::SQLITE_OK {
        return Err(Error::new(
            ErrorKind::Unexpected,
            format!("sqlite-vec failed to initialise (code {rc})"),
        ));
    }
    Ok(())
}

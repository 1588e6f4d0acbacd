//! Connections: one writer thread that owns the only write connection, a pool of reader
//! connections used from `spawn_blocking`, and for a file a checkpoint thread with a
//! connection of its own. Nothing blocks the async runtime.
//!
//! Checkpoints (copying the write-ahead log back into the database file) run on their own
//! thread, so the writer spends its time on writes: SQLite would otherwise run them inside
//! the commit that grows the log past 1,000 pages, about a fifth of a batched ingest's writer
//! time. Should that thread fall behind, the writer checkpoints itself past 16,000 pages.

use std::os::raw::c_int;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use memlayer_store::{Error, ErrorKind, Result};
use rusqlite::config::DbConfig;
use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::client::BACKEND;
use crate::error::map_sqlite;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// How hard SQLite syncs to disk.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Synchronous {
    /// fsync at every commit: no acknowledged write is lost even on power failure.
    #[default]
    Full,
    /// fsync at checkpoints: survives process crashes, may lose the last commits on power loss.
    Normal,
}

/// What every connection to the file needs, the checkpoint thread's too: how long to wait for
/// a lock, and how hard to sync.
fn set_durability(conn: &Connection, busy_timeout: Duration, sync: Synchronous) -> Result<()> {
    conn.busy_timeout(busy_timeout).map_err(map_sqlite)?;
    let sync = match sync {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.execute_batch(&format!("PRAGMA synchronous = {sync};"))
        .map_err(map_sqlite)
}

/// Creates the database file owner-only before SQLite opens it (SQLite gives its WAL and
/// shared-memory files the database's permissions); an existing file is left as it is.
fn private_file(path: &str) -> Result<()> {
    let file = std::path::Path::new(path);
    if file.exists() || path.starts_with("file:") {
        return Ok(());
    }
    memlayer_store::files::create_private(file)
        .map(drop)
        .map_err(|e| {
            memlayer_store::Error::new(
                memlayer_store::ErrorKind::Unavailable,
                format!("cannot create the database file {path}: {e}"),
            )
            .with_backend(crate::client::BACKEND)
        })
}

/// Registers sqlite-vec and memlayer's SQL functions on a connection that reads or writes
/// items, and sets its pragmas.
pub(crate) fn prepare(conn: &Connection, busy_timeout: Duration, sync: Synchronous) -> Result<()> {
    crate::vec_ext::register(conn)?;
    set_durability(conn, busy_timeout, sync)?;
    // Pages are read through a memory map of the file (shared with the other connections
    // through the OS page cache) rather than copied by a read call each: a search reads its
    // candidates' rows at random. Deleted content is overwritten with zeros as it is freed, so
    // a forgotten memory leaves no copy in the file (docs/security.md).
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA mmap_size = {MMAP_BYTES}; \
         PRAGMA secure_delete = ON;"
    ))
    .map_err(map_sqlite)?;
    // A search's statements differ by filter and by how many ids they name.
    conn.set_prepared_statement_cache_capacity(64);
    // One plan per statement whatever its parameters: otherwise a cached statement whose
    // parameter meets a partial index's condition is prepared again at each new value (every
    // search binds a new `now`), about a sixth of a keyword search's time.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(map_sqlite)?;
    Ok(())
}

/// How much of the file a connection maps into memory.
const MMAP_BYTES: u64 = 1 << 30;

/// Log size, in pages, at which the checkpoint thread is woken (SQLite's own default).
const CHECKPOINT_PAGES: c_int = 1000;
/// Log size at which the writer checkpoints itself: the checkpoint thread fell behind.
const WRITER_CHECKPOINT_PAGES: c_int = 16_000;

/// Starts the checkpoint thread of the file at `path` and hooks the writer's commits to it.
/// The thread ends when the hook is removed (its wake-up channel closes); join it then.
fn start_checkpoints(
    writer: &mut Connection,
    path: &str,
    busy_timeout: Duration,
    sync: Synchronous,
) -> Result<JoinHandle<()>> {
    // This connection only checkpoints: no SQL functions, statement cache or memory map.
    let conn = Connection::open(path).map_err(map_sqlite)?;
    set_durability(&conn, busy_timeout, sync)?;
    let (wake, woken) = mpsc::sync_channel::<()>(1);
    let thread = std::thread::Builder::new()
        .name("memlayer-sqlite-checkpoint".into())
        .spawn(move || {
            while woken.recv().is_ok() {
                // PASSIVE never waits for readers or the writer; what it cannot copy now is
                // copied by a later wake-up. A failure leaves the log to the next one.
                let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
            let _ = conn.close();
        })
        .map_err(|e| {
            Error::new(ErrorKind::Unexpected, "cannot start the checkpoint thread").with_source(e)
        })?;
    writer
        .wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
            // The commit has happened whatever this returns, so it never reports an error.
            if pages >= WRITER_CHECKPOINT_PAGES {
                let _ = wal.checkpoint_v2(CheckpointMode::PASSIVE);
            } else if pages >= CHECKPOINT_PAGES {
                // A full channel means a wake-up is already pending.
                let _ = wake.try_send(());
            }
            Ok(())
        }))
        .map_err(map_sqlite)?;
    Ok(thread)
}

/// Unhooks the writer from the checkpoint thread and waits for that thread to close its
/// connection, so the writer's own close is the last one and folds the log into the file.
fn stop_checkpoints(writer: &mut Connection, thread: JoinHandle<()>) {
    let _ = writer.wal_hook(None::<fn(&mut Wal, c_int) -> rusqlite::Result<()>>);
    let _ = thread.join();
}

struct ReaderPool {
    conns: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    /// How many connections the pool has (and permits, when no read runs).
    size: u32,
}

/// The connections of one store.
pub(crate) struct Db {
    writer: Mutex<Option<mpsc::SyncSender<Job>>>,
    /// Writes queued for the writer thread and not yet started.
    backlog: Arc<std::sync::atomic::AtomicUsize>,
    thread: Mutex<Option<JoinHandle<()>>>,
    readers: Option<Arc<ReaderPool>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field(
                "readers",
                &self.readers.as_ref().map(|r| r.permits.available_permits()),
            )
            .finish()
    }
}

/// Writes that may wait for the writer thread at once; the next is refused with a temporary
/// `Unavailable` (a server answers 503), so a burst cannot queue without bound in memory.
pub(crate) const WRITE_QUEUE: usize = 1024;

fn queue_full() -> Error {
    Error::new(
        ErrorKind::Unavailable,
        format!("{WRITE_QUEUE} writes are already waiting for the database; retry shortly"),
    )
    .with_backend(BACKEND)
    .set_temporary(true)
}

fn closed() -> Error {
    Error::new(ErrorKind::Unavailable, "the store is closed")
        .with_backend(BACKEND)
        .set_temporary(false)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Jobs never panic while a guard is held, so a poisoned mutex holds consistent data.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Db {
    /// Opens the writer (running `init` on it first) and `readers` reader connections.
    /// `path` is `None` for a private in-memory database, which has no readers.
    pub(crate) async fn open(
        path: Option<String>,
        readers: usize,
        busy_timeout: Duration,
        sync: Synchronous,
        init: impl FnOnce(&mut Connection) -> Result<()> + Send + 'static,
    ) -> Result<Db> {
        let (tx, rx) = mpsc::sync_channel::<Job>(WRITE_QUEUE);
        let (ready_tx, ready_rx) = oneshot::channel::<Result<()>>();
        let writer_path = path.clone();
        let thread = std::thread::Builder::new()
            .name("memlayer-sqlite-writer".into())
            .spawn(move || {
                let opened = match &writer_path {
                    Some(p) => {
                        private_file(p).and_then(|()| Connection::open(p).map_err(map_sqlite))
                    }
                    None => Connection::open_in_memory().map_err(map_sqlite),
                };
                let mut conn = match opened {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let setup = (|| {
                    if writer_path.is_some() {
                        conn.pragma_update(None, "journal_mode", "WAL")
                            .map_err(map_sqlite)?;
                    }
                    prepare(&conn, busy_timeout, sync)?;
                    init(&mut conn)?;
                    writer_path
                        .as_deref()
                        .map(|p| start_checkpoints(&mut conn, p, busy_timeout, sync))
                        .transpose()
                })();
                let checkpoints = match setup {
                    Ok(thread) => {
                        let _ = ready_tx.send(Ok(()));
                        thread
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
                if let Some(thread) = checkpoints {
                    stop_checkpoints(&mut conn, thread);
                }
            })
            .map_err(|e| {
                Error::new(ErrorKind::Unexpected, "cannot start the writer thread").with_source(e)
            })?;
        ready_rx.await.map_err(|_| {
            Error::new(
                ErrorKind::Unexpected,
                "the writer thread died while opening",
            )
        })??;
        let readers = match path {
            Some(p) if readers > 0 => {
                let conns = tokio::task::spawn_blocking(move || {
                    (0..readers)
                        .map(|_| {
                            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
                                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                                | OpenFlags::SQLITE_OPEN_URI;
                            let c = Connection::open_with_flags(&p, flags).map_err(map_sqlite)?;
                            prepare(&c, busy_timeout, sync)?;
                            Ok(c)
                        })
                        .collect::<Result<Vec<_>>>()
                })
                .await
                .map_err(|e| {
                    Error::new(ErrorKind::Unexpected, "reader setup panicked").with_source(e)
                })??;
                Some(Arc::new(ReaderPool {
                    permits: Arc::new(Semaphore::new(conns.len())),
                    size: u32::try_from(conns.len()).unwrap_or(u32::MAX),
                    conns: Mutex::new(conns),
                }))
            }
            _ => None,
        };
        Ok(Db {
            writer: Mutex::new(Some(tx)),
            backlog: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            thread: Mutex::new(Some(thread)),
            readers,
        })
    }

    /// Runs `f` on the writer thread (refused at once when [`WRITE_QUEUE`] writes already
    /// wait). The job runs to completion even if the caller goes away,
    /// so a transaction is either committed or rolled back, never left half-done.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        let backlog = self.backlog.clone();
        let job: Job = Box::new(move |conn| {
            backlog.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            let _ = tx.send(f(conn));
        });
        {
            let guard = lock(&self.writer);
            let sender = guard.as_ref().ok_or_else(closed)?;
            self.backlog
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            let sent = sender.try_send(job);
            if sent.is_err() {
                self.backlog
                    .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
            }
            match sent {
                Ok(()) => {}
                Err(mpsc::TrySendError::Full(_)) => return Err(queue_full()),
                Err(mpsc::TrySendError::Disconnected(_)) => return Err(closed()),
            }
        }
        rx.await.map_err(|_| closed())?
    }

    /// Writes waiting for the writer thread.
    #[cfg(test)]
    pub(crate) fn writer_backlog(&self) -> usize {
        self.backlog.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Runs `f` on a reader connection (or on the writer when there are none).
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if lock(&self.writer).is_none() {
            return Err(closed());
        }
        let Some(pool) = &self.readers else {
            return self.write(move |c| f(c)).await;
        };
        let permit: OwnedSemaphorePermit = pool
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| closed())?;
        let pool = pool.clone();
        // The connection and the permit travel with the blocking job and come back to the pool
        // inside it, so a caller that gives up early cannot leak either.
        tokio::task::spawn_blocking(move || {
            let conn = lock(&pool.conns).pop();
            let Some(conn) = conn else {
                return Err(Error::new(ErrorKind::Unexpected, "reader pool is empty"));
            };
            let out = f(&conn);
            lock(&pool.conns).push(conn);
            drop(permit);
            out
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Unexpected, "a read panicked").with_source(e))?
    }

    /// Waits for the reads in flight, drops the readers, then stops the writer after the
    /// queued jobs. The writer's connection closes last, so SQLite folds the log into the
    /// file and removes it: a reader still open then would leave the log behind (read-only
    /// connections cannot checkpoint).
    pub(crate) async fn close(&self) -> Result<()> {
        if let Some(pool) = &self.readers {
            // Every permit back means every connection back in the pool. (A second close
            // finds the semaphore closed and nothing left to wait for.)
            let all = pool.permits.acquire_many(pool.size).await;
            pool.permits.close();
            lock(&pool.conns).clear();
            drop(all);
        }
        drop(lock(&self.writer).take());
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|e| Error::new(ErrorKind::Unexpected, "close panicked").with_source(e))?
                .map_err(|_| Error::new(ErrorKind::Unexpected, "the writer thread panicked"))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With the writer busy and [`WRITE_QUEUE`] writes waiting, the next write is refused at
    /// once with a temporary `Unavailable`, and the waiting ones all run.
    #[tokio::test]
    async fn a_full_write_queue_refuses_the_next_write() {
        let db = Arc::new(
            Db::open(None, 0, Duration::from_secs(1), Synchronous::Normal, |_| {
                Ok(())
            })
            .await
            .unwrap(),
        );
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started, running) = std::sync::mpsc::channel::<()>();
        let busy = {
            let db = db.clone();
            tokio::spawn(async move {
                db.write(move |_| {
                    let _ = started.send(());
                    let _ = hold.recv();
                    Ok(())
                })
                .await
            })
        };
        // The blocking job runs on the writer thread, so the queue behind it starts empty.
        tokio::task::spawn_blocking(move || running.recv())
            .await
            .unwrap()
            .unwrap();
        let mut waiting = Vec::new();
        for _ in 0..WRITE_QUEUE {
            let db = db.clone();
            waiting.push(tokio::spawn(async move { db.write(|_| Ok(1u32)).await }));
        }
        // Each spawned write enqueues on its first poll; wait until every one has.
        while db.writer_backlog() < WRITE_QUEUE {
            tokio::task::yield_now().await;
        }
        let refused = db.write(|_| Ok(0u32)).await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Unavailable);
        assert!(refused.is_temporary());
        assert!(refused.to_string().contains("1024"), "{refused}");
        release.send(()).unwrap();
        busy.await.unwrap().unwrap();
        let mut done = 0;
        for w in waiting {
            done += w.await.unwrap().unwrap();
        }
        assert_eq!(done as usize, WRITE_QUEUE);
    }
}

//! The background sweeper: hard-deletes expired items, race-safely, on a schedule.
//!
//! Each pass lists the items expired at the pass's instant and deletes each with
//! `delete_if_expired_before(cutoff = that instant)`: an item whose expiry a writer slid
//! forward in between (a reinforce, a re-upsert) is no longer expired at the cutoff and
//! survives; the pass counts it as a race.

use std::time::Duration;

use memlayer_store::types::Timestamp;
use memlayer_store::{DynStore, ErrorKind, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What one or more passes did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Passes run.
    pub passes: u64,
    /// Expired items listed.
    pub found: u64,
    /// Items hard-deleted.
    pub deleted: u64,
    /// Items no longer expired (or gone) when their turn came.
    pub raced: u64,
}

impl SweepReport {
    fn add(&mut self, other: SweepReport) {
        self.passes += other.passes;
        self.found += other.found;
        self.deleted += other.deleted;
        self.raced += other.raced;
    }
}

/// Sweeps expired items out of a store.
#[derive(Clone, Debug)]
pub struct Sweeper {
    store: DynStore,
    interval: Duration,
    batch: usize,
}

impl Sweeper {
    /// A sweeper over `store` (wrap it in a `MemoryEventEmitter` to get `Expired` events),
    /// every minute, 500 items per listing.
    pub fn new(store: DynStore) -> Self {
        Sweeper {
            store,
            interval: Duration::from_secs(60),
            batch: 500,
        }
    }

    /// Sets the pause between passes.
    pub fn every(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets how many expired items one listing reads.
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// One pass at `now`: deletes everything expired at `now`.
    ///
    /// # Errors
    /// The store's errors (a racing item is counted, not an error).
    pub async fn sweep_once(&self, now: Timestamp) -> Result<SweepReport> {
        let mut report = SweepReport {
            passes: 1,
            ..SweepReport::default()
        };
        loop {
            let expired = self.store.list_expired(now, self.batch).await?;
            let listed = expired.len();
            report.found += listed as u64;
            let mut progress = false;
            for e in expired {
                match self
                    .store
                    .delete_if_expired_before(&e.namespace, &e.id, now)
                    .await
                {
                    Ok(()) => {
                        report.deleted += 1;
                        progress = true;
                    }
                    Err(err) if err.kind() == ErrorKind::NotFound => report.raced += 1,
                    Err(err) => return Err(err),
                }
            }
            // A full listing may hide more; a listing that deleted nothing would repeat itself.
            if listed < self.batch || !progress {
                return Ok(report);
            }
        }
    }

    /// Runs passes in the background until [`SweeperHandle::stop`].
    pub fn spawn(self) -> SweeperHandle {
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let (report_tx, report_rx) = watch::channel(SweepReport::default());
        let task = tokio::spawn(async move {
            let mut total = SweepReport::default();
            let mut errors = 0u64;
            loop {
                match self.sweep_once(Timestamp::now()).await {
                    Ok(r) => {
                        total.add(r);
                        let _ = report_tx.send(total);
                    }
                    // A failing pass (the store restarting, say) is retried next time.
                    Err(_) => errors += 1,
                }
                tokio::select! {
                    _ = stop_rx.changed() => break,
                    _ = tokio::time::sleep(self.interval) => {}
                }
            }
            (total, errors)
        });
        SweeperHandle {
            stop: stop_tx,
            reports: report_rx,
            task,
        }
    }
}

/// A running sweeper.
#[derive(Debug)]
pub struct SweeperHandle {
    stop: watch::Sender<bool>,
    reports: watch::Receiver<SweepReport>,
    task: JoinHandle<(SweepReport, u64)>,
}

impl SweeperHandle {
    /// The totals so far; `changed()` on it waits for the next pass.
    pub fn reports(&self) -> watch::Receiver<SweepReport> {
        self.reports.clone()
    }

    /// Stops after the pass in progress (never in the middle of one) and returns the totals
    /// and how many passes failed.
    pub async fn stop(self) -> (SweepReport, u64) {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or((*self.reports.borrow(), 0))
    }
}

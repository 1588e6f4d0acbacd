//! The background sweeper: hard-deletes expired items, race-safely, and decays the scores of
//! idle items, on a schedule.
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
    /// Items whose importance or confidence decayed.
    pub decayed: u64,
}

impl SweepReport {
    fn add(&mut self, other: SweepReport) {
        self.passes += other.passes;
        self.found += other.found;
        self.deleted += other.deleted;
        self.raced += other.raced;
        self.decayed += other.decayed;
    }
}

/// How idle items lose weight: importance and confidence halve every `half_life` of the
/// sweeper's schedule, for items idle (not accessed, or never accessed since creation) for at
/// least `idle_after`, never below `floor`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DecayPolicy {
    /// The time over which scores halve.
    pub half_life: Duration,
    /// How long an item must have been idle to decay.
    pub idle_after: Duration,
    /// The lowest score decay leads to.
    pub floor: f32,
}

impl DecayPolicy {
    /// The factor of one pass `interval` apart: `0.5^(interval / half_life)`.
    pub fn factor(&self, interval: Duration) -> f32 {
        if self.half_life.is_zero() {
            return 0.0;
        }
        0.5f64.powf(interval.as_secs_f64() / self.half_life.as_secs_f64()) as f32
    }
}

/// Sweeps expired items out of a store, and decays idle ones.
#[derive(Clone, Debug)]
pub struct Sweeper {
    store: DynStore,
    interval: Duration,
    batch: usize,
    decay: Option<DecayPolicy>,
}

impl Sweeper {
    /// A sweeper over `store` (wrap it in a `EventStore` to get `Expired` events),
    /// every minute, 500 items per listing.
    pub fn new(store: DynStore) -> Self {
        Sweeper {
            store,
            interval: Duration::from_secs(60),
            batch: 500,
            decay: None,
        }
    }

    /// Sets the pause between passes.
    pub fn every(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Also decays idle items on every pass.
    pub fn decay(mut self, policy: DecayPolicy) -> Self {
        self.decay = Some(policy);
        self
    }

    /// Sets how many expired items one listing reads.
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// One pass at `now`: deletes everything expired at `now`, then (with a decay policy)
    /// decays every namespace's idle items by one interval's factor.
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
                break;
            }
        }
        if let Some(policy) = self.decay {
            let factor = policy.factor(self.interval);
            let idle_before =
                Timestamp::from_millis(now.as_millis().saturating_sub(
                    i64::try_from(policy.idle_after.as_millis()).unwrap_or(i64::MAX),
                ));
            for ns in self.store.list_namespaces().await? {
                report.decayed += self
                    .store
                    .decay(&ns, idle_before, factor, policy.floor)
                    .await?;
            }
        }
        Ok(report)
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

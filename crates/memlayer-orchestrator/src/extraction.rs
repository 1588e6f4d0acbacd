//! The extraction orchestrator: conversation batches in, long-term memories out, with bounded
//! concurrency, retries with backoff, task states, a dead-letter list and idempotency.
//!
//! Every batch has an idempotency key (a digest of the owner and the batch's message ids and
//! versions). A completed batch leaves a task record in the store, so replaying it (even after
//! a restart) stores nothing; and the memories themselves have content-derived ids, so even a
//! batch re-run from scratch cannot add a row twice. A batch that keeps failing is recorded as
//! a dead letter, in the store and in memory; nothing is dropped silently.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use memlayer_store::types::{Kind, MemoryItem, Tier};
use memlayer_store::{Error, ErrorKind, Result};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::long_term::{AddOutcome, LongTermMemory, NewMemory};
use crate::short_term::Scope;

/// Turns conversation messages into memories.
#[async_trait]
pub trait Extractor: Send + Sync + std::fmt::Debug {
    /// A short name, recorded on task and dead-letter records.
    fn name(&self) -> &str;

    /// The memories a batch of messages holds.
    ///
    /// # Errors
    /// Any; the orchestrator retries, then dead-letters the batch.
    async fn extract(&self, messages: &[MemoryItem]) -> Result<Vec<NewMemory>>;
}

/// How the orchestrator works through batches.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct OrchestratorConfig {
    /// Messages per batch.
    pub batch_size: usize,
    /// Batches extracted at once.
    pub max_concurrent: usize,
    /// Attempts per batch before it is dead-lettered.
    pub max_attempts: u32,
    /// Pause before the second attempt; doubled for each later one.
    pub backoff: Duration,
}

impl Default for OrchestratorConfig {
    fn default() -> Self {
        OrchestratorConfig {
            batch_size: 10,
            max_concurrent: 4,
            max_attempts: 3,
            backoff: Duration::from_millis(200),
        }
    }
}

impl OrchestratorConfig {
    /// Sets the batch size.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Sets the concurrency.
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n.max(1);
        self
    }

    /// Sets the attempts per batch.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Sets the first backoff.
    pub fn backoff(mut self, d: Duration) -> Self {
        self.backoff = d;
        self
    }
}

/// Where a batch is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Waiting for a slot.
    Pending,
    /// Being extracted (the attempt number, from 1).
    Running(u32),
    /// Done: how many memories it added, merged, confirmed or superseded.
    Completed(usize),
    /// Given up on: the last error. The batch is in the dead-letter list.
    Failed(String),
}

/// What happened to one batch.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskReport {
    /// The idempotency key.
    pub key: String,
    /// The final state.
    pub state: TaskState,
    /// Attempts made (0 when the batch had already completed before).
    pub attempts: u32,
    /// What each memory did.
    pub outcomes: Vec<AddOutcome>,
}

/// A batch that kept failing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    /// The idempotency key.
    pub key: String,
    /// The batch's message ids.
    pub message_ids: Vec<String>,
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub error: String,
}

const TASK_KIND: &str = "extraction_task";

/// What the extraction phase of a batch produced.
#[derive(Clone, Debug)]
enum Extracted {
    /// A task record says the batch completed before.
    AlreadyDone,
    /// The memories, and the attempts it took.
    Memories(Vec<NewMemory>, u32),
    /// The last error, and the attempts made.
    Failed(String, u32),
}
const DEAD_KIND: &str = "extraction_dead_letter";

/// Runs an [`Extractor`] over conversations into a [`LongTermMemory`].
#[derive(Clone, Debug)]
pub struct MemoryOrchestrator {
    extractor: Arc<dyn Extractor>,
    memory: LongTermMemory,
    config: OrchestratorConfig,
    slots: Arc<Semaphore>,
    states: Arc<Mutex<HashMap<String, TaskState>>>,
    dead: Arc<Mutex<Vec<DeadLetter>>>,
}

impl MemoryOrchestrator {
    /// An orchestrator storing into `memory`.
    pub fn new(
        extractor: Arc<dyn Extractor>,
        memory: LongTermMemory,
        config: OrchestratorConfig,
    ) -> Self {
        let slots = Arc::new(Semaphore::new(config.max_concurrent.max(1)));
        MemoryOrchestrator {
            extractor,
            memory,
            config,
            slots,
            states: Arc::new(Mutex::new(HashMap::new())),
            dead: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The idempotency key of a batch: its owner and its messages' ids and versions.
    pub fn key_of(scope: &Scope, batch: &[MemoryItem]) -> String {
        let mut h = Sha256::new();
        h.update(scope.key().as_bytes());
        for m in batch {
            h.update([0x1f]);
            h.update(m.id.as_bytes());
            h.update(m.version.to_le_bytes());
        }
        h.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The state of a batch this orchestrator has seen.
    pub fn state(&self, key: &str) -> Option<TaskState> {
        self.states.lock().ok()?.get(key).cloned()
    }

    /// The batches that kept failing, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead.lock().map(|d| d.clone()).unwrap_or_default()
    }

    fn set(&self, key: &str, state: TaskState) {
        if let Ok(mut s) = self.states.lock() {
            s.insert(key.to_owned(), state);
        }
    }

    /// Extracts `messages` in batches of `batch_size`, at most `max_concurrent` at once, and
    /// waits for all; one report per batch, in order.
    ///
    /// Extraction runs concurrently, but the memories are stored batch by batch in
    /// conversation order, so a later statement always supersedes an earlier one.
    pub async fn process(&self, scope: &Scope, messages: &[MemoryItem]) -> Vec<TaskReport> {
        let batches: Vec<Vec<MemoryItem>> = messages
            .chunks(self.config.batch_size.max(1))
            .map(<[MemoryItem]>::to_vec)
            .collect();
        let mut set = tokio::task::JoinSet::new();
        for (i, batch) in batches.iter().enumerate() {
            let key = Self::key_of(scope, batch);
            self.set(&key, TaskState::Pending);
            let this = self.clone();
            let batch = batch.clone();
            set.spawn(async move {
                let extracted = this.extract_with_retries(&key, &batch).await;
                (i, key, extracted)
            });
        }
        let mut extracted: Vec<Option<(String, Extracted)>> = vec![None; batches.len()];
        while let Some(done) = set.join_next().await {
            if let Ok((i, key, e)) = done
                && let Some(slot) = extracted.get_mut(i)
            {
                *slot = Some((key, e));
            }
        }
        let mut reports = Vec::with_capacity(batches.len());
        for (batch, e) in batches.iter().zip(extracted) {
            let report = match e {
                Some((key, Extracted::AlreadyDone)) => {
                    self.set(&key, TaskState::Completed(0));
                    TaskReport {
                        key,
                        state: TaskState::Completed(0),
                        attempts: 0,
                        outcomes: Vec::new(),
                    }
                }
                Some((key, Extracted::Memories(memories, attempts))) => {
                    self.store_with_retries(scope, key, batch, memories, attempts)
                        .await
                }
                Some((key, Extracted::Failed(error, attempts))) => {
                    self.fail(scope, &key, batch, attempts, error).await
                }
                None => {
                    let key = Self::key_of(scope, batch);
                    self.fail(scope, &key, batch, 0, "the extraction task died".into())
                        .await
                }
            };
            reports.push(report);
        }
        reports
    }

    fn task_id(key: &str) -> String {
        format!("task-{key}")
    }

    async fn already_done(&self, key: &str) -> Result<bool> {
        match self
            .memory
            .store()
            .get(self.memory.namespace(), &Self::task_id(key))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn extract_with_retries(&self, key: &str, batch: &[MemoryItem]) -> Extracted {
        let Ok(_slot) = self.slots.acquire().await else {
            return Extracted::Failed("the orchestrator was shut down".into(), 0);
        };
        match self.already_done(key).await {
            Ok(true) => return Extracted::AlreadyDone,
            Ok(false) => {}
            Err(e) => return Extracted::Failed(e.to_string(), 0),
        }
        let mut pause = self.config.backoff;
        let mut last = String::new();
        let attempts = self.config.max_attempts.max(1);
        for attempt in 1..=attempts {
            self.set(key, TaskState::Running(attempt));
            match self.extractor.extract(batch).await {
                Ok(memories) => return Extracted::Memories(memories, attempt),
                Err(e) => last = e.to_string(),
            }
            if attempt < attempts {
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
            }
        }
        Extracted::Failed(last, attempts)
    }

    async fn store_with_retries(
        &self,
        scope: &Scope,
        key: String,
        batch: &[MemoryItem],
        memories: Vec<NewMemory>,
        attempts: u32,
    ) -> TaskReport {
        let mut pause = self.config.backoff;
        let mut last = String::new();
        let tries = self.config.max_attempts.max(1);
        for t in 1..=tries {
            match self.store(scope, &key, batch, &memories).await {
                Ok(outcomes) => {
                    let state = TaskState::Completed(outcomes.len());
                    self.set(&key, state.clone());
                    return TaskReport {
                        key,
                        state,
                        attempts,
                        outcomes,
                    };
                }
                Err(e) => last = e.to_string(),
            }
            if t < tries {
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
            }
        }
        self.fail(scope, &key, batch, attempts, last).await
    }

    async fn store(
        &self,
        scope: &Scope,
        key: &str,
        batch: &[MemoryItem],
        memories: &[NewMemory],
    ) -> Result<Vec<AddOutcome>> {
        let mut outcomes = Vec::with_capacity(memories.len());
        for m in memories {
            // Adding is idempotent (content-derived ids), so a retry after a partial store
            // merges instead of duplicating.
            outcomes.push(self.memory.add(scope, m.clone()).await?);
        }
        // The task record makes a replay a no-op.
        let mut record = MemoryItem::new(
            self.memory.namespace(),
            Kind::Custom(TASK_KIND.into()),
            format!(
                "extracted {} memories from {} messages with {}",
                outcomes.len(),
                batch.len(),
                self.extractor.name()
            ),
        )
        .with_id(Self::task_id(key))
        .with_tier(Tier::Episodic)
        .with_extra("task", key);
        scope.stamp(&mut record);
        self.memory.store().upsert(record).await?;
        Ok(outcomes)
    }

    async fn fail(
        &self,
        scope: &Scope,
        key: &str,
        batch: &[MemoryItem],
        attempts: u32,
        error: String,
    ) -> TaskReport {
        let letter = DeadLetter {
            key: key.to_owned(),
            message_ids: batch.iter().map(|m| m.id.clone()).collect(),
            attempts,
            error: error.clone(),
        };
        // Kept in the store too, so a restart still knows (best effort: the in-memory list
        // always has it).
        // Stamped with the scope like the task records, so that forgetting the user also
        // erases the letter (it names the user's messages).
        let mut record = MemoryItem::new(
            self.memory.namespace(),
            Kind::Custom(DEAD_KIND.into()),
            format!("extraction failed after {attempts} attempts: {error}"),
        )
        .with_id(format!("dead-{key}"))
        .with_tier(Tier::Semantic)
        .with_extra("task", key)
        .with_extra("messages", letter.message_ids.join(","))
        .with_extra("attempts", attempts);
        scope.stamp(&mut record);
        let _ = self.memory.store().upsert(record).await;
        if let Ok(mut d) = self.dead.lock() {
            d.push(letter);
        }
        let state = TaskState::Failed(error);
        self.set(key, state.clone());
        TaskReport {
            key: key.to_owned(),
            state,
            attempts,
            outcomes: Vec::new(),
        }
    }
}

/// An error for extractor output that breaks its contract.
pub fn malformed(what: impl Into<String>) -> Error {
    Error::invalid("extraction", what.into())
}
